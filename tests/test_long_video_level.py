"""The video level sees a whole hour-long recording on a CPU: a frozen frame encoder's features come from the
feature cache, so a step reads ``[B, T, D]`` features, never ``T`` decoded frames (issue 38, item 2)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from pretrained_helpers import make_clip

HOUR_AT_1FPS = 3600
VIDEO_FRAMES = 1024


def _hour_long_video(path: Path, shade: int) -> Path:
    """3,600 frames at 16x16, 1 fps: one flat shade with a counter in the left half (cheap to write)."""
    from hvl.core.data.video import write_video

    frames = np.full((HOUR_AT_1FPS, 16, 16, 3), shade, np.uint8)
    frames[:, :, :8, 1] = (np.arange(HOUR_AT_1FPS) % 251)[:, None, None]
    return write_video(path, frames, 1.0, keyframe_every=60)


@pytest.fixture(scope="module")
def hour_long(tmp_path_factory):
    root = tmp_path_factory.mktemp("hour")
    rows = []
    for k, shade in enumerate((40, 200)):
        _hour_long_video(root / f"op{k}.mp4", shade)
        rows.append({"video_id": f"op{k}", "path": f"op{k}.mp4", "duration": float(HOUR_AT_1FPS),
                     "texts": [f"procedure number {k} from start to end"],
                     "clips": [{"start": 60.0 * m, "end": 60.0 * m + 4, "texts": [f"minute {m} of {k}"]}
                               for m in (1, 30, 59)]})
    (root / "m.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return root, make_clip(root / "clip")


@pytest.mark.slow
def test_an_hour_long_video_trains_and_evaluates_from_the_feature_cache_at_1024_frames(hour_long):
    import pytorch_lightning as pl
    from hvl.core.data.datamodule import HVLDataModule
    from hvl.core.data.schema import load_manifest
    from hvl.core.evaluation.retrieval import evaluate_retrieval
    from hvl.core.models.module import HierarchicalVLM

    root, clip = hour_long
    torch.manual_seed(0)
    model = HierarchicalVLM(backbone={"path": str(clip), "image_unlocked": 0, "text_unlocked": 0},
                            levels=["clip", "video"], video_encoder={"temporal": "windowed"},
                            loss_weights={"clip": 1.0, "video": 1.0, "temporal": 0.5})
    manifest = str(root / "m.jsonl")
    dm = HVLDataModule(train=manifest, val=manifest, augment=False, num_workers=0, feature_cache=str(root / "cache"),
                       schedule={"clip": {"frames": 2, "batch_size": 2, "every": 1},
                                 "video": {"frames": VIDEO_FRAMES, "batch_size": 2, "every": 1}})
    seen: list[tuple[int, ...]] = []

    class Shapes(pl.Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            seen.append(tuple(batch["video"]["frames"].shape))

    trainer = pl.Trainer(accelerator="cpu", max_steps=3, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, use_distributed_sampler=False,
                         num_sanity_val_steps=0, callbacks=[Shapes()])
    before = [p.detach().clone() for p in model.video.temporal.parameters()]
    trainer.fit(model, datamodule=dm)
    # every step read features [B, 1024, D] of the frozen encoder, not [B, 1024, 3, H, W] pixels
    assert seen and all(s == (2, VIDEO_FRAMES, model.embed_dim) for s in seen), seen
    assert any(not torch.equal(a, b) for a, b in zip(before, model.video.temporal.parameters()))
    assert np.isfinite(float(trainer.callback_metrics["val/loss"]))
    assert np.isfinite(float(trainer.callback_metrics["train/loss_temporal_step"]))
    # the cache holds the frames the schedule reads: spread over the whole hour, not its first minutes
    idx = sorted(dm.train_split[0].features.dir.glob("*.idx.npy"))
    assert len(idx) == 2
    for f in idx:
        frames = np.load(f)
        assert len(frames) >= VIDEO_FRAMES and frames.min() < 4 and frames.max() > HOUR_AT_1FPS - 4
    # and the whole videos are ranked by their paragraphs at the same 1,024 frames
    m = load_manifest(manifest)
    res = evaluate_retrieval(model, [(r, m.resolve(r)) for r in m.videos], level="video", frames=VIDEO_FRAMES,
                             batch_size=1, num_workers=0, progress=False, preprocess=model.preprocess)
    assert res["n_videos"] == 2 and res["frames"] == VIDEO_FRAMES and 0 <= res["t2v_r1"] <= 100


def test_the_full_attention_transformer_names_its_frame_limit_and_the_fix():
    from hvl.core.errors import HVLInputError
    from hvl.core.models.encoders import VideoEncoder

    enc = VideoEncoder({"name": "small_cnn", "widths": [8]}, temporal="transformer")
    assert enc(torch.zeros(1, 128, enc.dim)).shape == (1, enc.dim)
    with pytest.raises(HVLInputError, match="128 frames, got 256.*temporal: windowed"):
        enc(torch.zeros(1, 256, enc.dim))
    windowed = VideoEncoder({"name": "small_cnn", "widths": [8]}, temporal="windowed", temporal_heads=2)
    assert windowed(torch.zeros(1, 256, windowed.dim)).shape == (1, windowed.dim)
