"""`hvl demo kitchen --out DIR`: seeded videos of three cooking steps, and their manifests."""
from pathlib import Path

import numpy as np
from hvl.core.data.schema import ClipSegment, PhaseSegment, VideoRecord, write_manifest
from hvl.core.data.video import write_video
from hvl.core.errors import HVLInputError

STEPS = {  # step -> (colour of the worktop, what the cook says, the step's summary)
    "chop": ((200, 60, 40), "now I chop the onions finely", "the vegetables are chopped on the board"),
    "stir": ((60, 120, 200), "keep stirring the sauce in the pan", "the sauce is stirred while it simmers"),
    "plate": ((60, 170, 80), "put it on the plate and serve", "the dish is plated and served"),
}
FPS, SECONDS_PER_STEP, SIZE = 4, 6, 64


def _frame(rng: np.random.Generator, colour: tuple[int, int, int]) -> np.ndarray:
    """The worktop in the step's colour (each video's light varies it), a utensil somewhere on it."""
    frame = np.full((SIZE, SIZE, 3), colour, np.int16) + rng.integers(-20, 21, 3)
    x, y = rng.integers(0, SIZE - 16, 2)
    frame[y:y + 16, x:x + 16] = 240
    return np.clip(frame, 0, 255).astype(np.uint8)


def _video(rng: np.random.Generator, path: Path, video_id: str) -> VideoRecord:
    frames, phases, clips = [], [], []
    for k, (step, (colour, said, summary)) in enumerate(STEPS.items()):
        start = k * SECONDS_PER_STEP
        frames += [_frame(rng, colour) for _ in range(SECONDS_PER_STEP * FPS)]
        phases.append(PhaseSegment(start=start, end=start + SECONDS_PER_STEP, text=summary, label=step))
        clips += [ClipSegment(start=start + s, end=start + s + 2, texts=[said]) for s in (0, 2, 4)]
    write_video(path, np.stack(frames), FPS)
    return VideoRecord(video_id=video_id, path=f"videos/{path.name}", duration=len(frames) / FPS,
                       texts=["a cook chops, stirs and plates a dish"], phases=phases, clips=clips)


def generate(out: str, seed: int = 0, train_videos: int = 6, n_val: int = 2, n_test: int = 2) -> dict:
    if train_videos < 1:
        raise HVLInputError(f"--train-videos {train_videos}: training needs at least 1 video; give 1 or more")
    out = Path(out)
    (out / "videos").mkdir(parents=True, exist_ok=True)
    for split, n in (("train", train_videos), ("val", n_val), ("test", n_test)):
        rng = np.random.default_rng([seed, len(split), n])
        records = [_video(rng, out / "videos" / f"{split}{i}.mp4", f"{split}{i}") for i in range(n)]
        write_manifest(out / f"{split}.jsonl", records)
    return {"out": str(out), "videos": train_videos + n_val + n_test}
