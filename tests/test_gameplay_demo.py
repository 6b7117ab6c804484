"""The gameplay demo: real physics (bugs visibly happen), GamePhysics layout, seeded, and a query set
whose wording never leaks into training text."""
import json

import numpy as np
import pytest
import yaml
from hvl.core.data.schema import load_manifest, load_prompt_file
from hvl.core.data.video import read_frames
from hvl.core.errors import HVLInputError
from hvl.core.registry import get_domain, resolve_prompt_file
from hvl.domains.gameplay import demo, read_gamephysics


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    out = tmp_path_factory.mktemp("gp") / "demo"
    summary = demo.generate(out, seed=3, n_train=6, n_val=1, n_test=12, size=32, progress=False)
    return out, summary


def test_layout_manifests_and_reader(small):
    out, summary = small
    assert summary["videos"] == {"train": 6, "val": 1, "test": 12}
    recs = read_gamephysics(out / "videos")
    assert len(recs) == 12 and {r.meta["game"] for r, _ in recs} <= set(demo.GAMES)
    assert all(r.meta["title"].startswith("lol") for r, _ in recs)  # metadata.csv rows matched by post id
    train = load_manifest(out / "train.jsonl")
    assert all(r.path.startswith("train_videos/") and len(r.clips) == 2 and len(r.texts) == 2 for r in train.videos)
    frames = read_frames(out / train.videos[0].path, fps=10)
    assert frames.shape == (60, 32, 32, 3)
    test = load_manifest(out / "test.jsonl")
    for r in test.videos:  # zero-shot labels cover the clip and are classes of the shipped prompt file
        assert r.phases[0].start == 0 and r.phases[-1].end == r.duration
        bug = r.meta["bug"]
        labels = {p.label for p in r.phases}
        assert labels == ({"no_bug"} if bug is None else {bug["type"]} | ({"no_bug"} & labels))
    prompts = load_prompt_file(resolve_prompt_file("gameplay:bug_types"))
    assert set(prompts.names) == set(demo.BUGS) | {"no_bug"} and prompts.level == "clip"
    assert get_domain("gameplay").readers["gamephysics"] is read_gamephysics


def test_queries_have_correct_ground_truth_and_never_leak(small):
    out, _ = small
    queries = yaml.safe_load((out / "queries.yaml").read_text())["queries"]
    assert {q["type"] for q in queries} == {"simple", "compound", "bug"}
    test = {r.video_id: r.meta for r in load_manifest(out / "test.jsonl").videos}
    for q in queries:
        assert q["relevant"], q
        for vid in q["relevant"]:
            objs, bug = test[vid]["objects"], test[vid]["bug"]
            names = {f"a {o['colour']} {o['kind']}" for o in objs}
            if q["type"] == "simple":
                assert q["text"] in names
            elif q["type"] == "compound":
                a, b = q["text"].split(" next to ")
                assert {a, b} <= names
            else:
                assert bug["type"] == q["bug"] and f" {objs[bug['victim']]['kind']} " in f" {q['text']} "
        if q["type"] == "bug":  # and every clip with that bug on that kind is listed
            kind = next(k for k in demo.KINDS if f" {k} " in f" {q['text']} ")
            want = {v for v, m in test.items() if m["bug"] and m["bug"]["type"] == q["bug"]
                    and m["objects"][m["bug"]["victim"]]["kind"] == kind}
            assert set(q["relevant"]) == want
    training = []
    for split in ("train", "val"):
        for r in load_manifest(out / f"{split}.jsonl").videos:
            training += r.texts + [t for c in r.clips for t in c.texts]
    blob = "\n".join(training).lower()
    prompts = load_prompt_file(resolve_prompt_file("gameplay:bug_types"))
    for text in [q["text"] for q in queries if q["type"] == "bug"] + [t for c in prompts.classes for t in prompts.texts_for(c)]:
        assert text.lower() not in blob, text
    for phrase in ("falling through the floor", "flying in the air", "stuck inside another object", "jittering"):
        assert phrase not in blob


def test_same_seed_same_dataset(small, tmp_path):
    out, _ = small
    again = tmp_path / "again"
    demo.generate(again, seed=3, n_train=6, n_val=1, n_test=12, size=32, progress=False)
    for f in ("train.jsonl", "val.jsonl", "test.jsonl", "queries.yaml", "videos/metadata.csv"):
        assert (out / f).read_text() == (again / f).read_text(), f
    rec = load_manifest(out / "test.jsonl").videos[0]
    assert np.array_equal(read_frames(out / rec.path, fps=10).numpy(), read_frames(again / rec.path, fps=10).numpy())


def _clip_with(bug_type: str, kinds: tuple[str, ...] = demo.KINDS) -> tuple[np.ndarray, dict]:
    for i in range(200):
        frames, plan = demo.render_clip(np.random.SeedSequence([7, i]), size=64)
        b = plan["bug"]
        if b and b["type"] == bug_type and plan["objects"][b["victim"]]["kind"] in kinds:
            return frames, plan
    raise AssertionError(f"no {bug_type} clip in 200 seeds")


def _victim_pixels(frames: np.ndarray, plan: dict) -> np.ndarray:
    """Per frame: pixel rows showing the victim's colour (no other object shares it)."""
    rgb = np.array(demo.COLOURS[plan["objects"][plan["bug"]["victim"]]["colour"]], np.int16)
    return (np.abs(frames.astype(np.int16) - rgb).sum(-1) < 40)


def test_injected_bugs_really_happen_in_the_simulation():
    fps = 10
    rows = np.arange(64)[None, :, None]
    top = lambda m: (rows * m).sum((1, 2)) / np.maximum(m.sum((1, 2)), 1)  # noqa: E731 (mean pixel row)
    frames, plan = _clip_with("falling_through_floor", ("box", "ball", "car"))
    mask = _victim_pixels(frames, plan)
    s = int(plan["bug"]["start"] * fps)
    y = top(mask)
    # sinks > 10 px into the terrain, then stays there, still in view (drawn over the ground)
    assert y[-1] - y[:s].mean() > 10 and np.ptp(y[-5:]) < 1, y
    assert mask[-1].sum() > 0.5 * mask[:s].sum((1, 2)).mean()

    frames, plan = _clip_with("floating_flying")
    mask = _victim_pixels(frames, plan)
    s = int(plan["bug"]["start"] * fps)
    assert top(mask[s - 2:s]).mean() - top(mask[-3:]).mean() > 15  # rose by > 15 px (y grows downward)

    frames, plan = _clip_with("stretched_jittering")
    mask = _victim_pixels(frames, plan)
    width = lambda m: np.ptp(np.nonzero(m.any(0))[0]) if m.any() else 0  # noqa: E731
    s, e = int(plan["bug"]["start"] * fps), int(plan["bug"]["end"] * fps)
    assert np.mean([width(m) for m in mask[s + 1:e]]) > 1.3 * np.mean([width(m) for m in mask[:s]])

    frames, plan = _clip_with("stuck_in_object")
    tail = frames[int(plan["bug"]["start"] * fps) + 2:].astype(np.int16)
    moving = np.abs(np.diff(tail, axis=0)).sum(-1) > 60
    v = _victim_pixels(frames, plan)[int(plan["bug"]["start"] * fps) + 3:]
    assert (moving & v).sum() <= 0.02 * v.sum() + 5  # frozen in place


def test_bad_demo_arguments():
    with pytest.raises(HVLInputError, match=r"size in \(32, 64, 96, 128\)"):
        demo.generate("/tmp/never", size=48)
    with pytest.raises(HVLInputError, match="n_train >= 2"):
        demo.generate("/tmp/never", n_train=0)


def test_summary_is_json(small):
    _, summary = small
    json.dumps(summary)
    assert summary["queries"]["bug"] >= 1 and summary["frames"] == 19 * 60
