"""From a raw folder (the surgical demo written as .srt / .vtt / chapters / abstracts) to two training steps."""
from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
from hvl.core.cli import main
from hvl.core.data.schema import load_manifest
from hvl.domains.surgical import demo

RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "surgical" / "demo_pretrain.yaml"


@pytest.mark.slow
def test_demo_raw_layout_then_prepare_then_fit(tmp_path, monkeypatch, capsys):
    raw = tmp_path / "raw"
    demo.generate(raw, seed=0, n_train=3, n_val=2, n_test=1, size=64, fps=4.0, progress=False, raw_layout=True)
    assert not list(raw.glob("*.jsonl"))  # texts as files, not manifests
    assert sorted(p.suffix for p in (raw / "chapters").iterdir()) == [".txt"] * 2 + [".vtt"] * 4  # both formats
    out = tmp_path / "prepared"
    assert main(["prepare", str(raw), "--out", str(out), "--no-progress"]) == 0
    table = capsys.readouterr().out
    assert "levels: clip, phase, video" in table
    train = load_manifest(out / "train.jsonl").videos
    assert [r.video_id for r in train] == [f"demo_train_{i:03d}" for i in range(3)]  # splits.csv followed
    assert [r.video_id for r in load_manifest(out / "val.jsonl").videos] == ["demo_val_000", "demo_val_001"]
    r = train[0]
    assert r.meta["sources"] == ["asr", "clean"] and len(r.phases) == 7 and r.texts
    assert all(len(c.texts) == 3 for c in r.clips)  # ASR anchor + 2 clean positives (k = 2)
    # --json PATH writes the report beside the table; --json - prints it alone (the old bare --json, deprecated)
    assert main(["prepare", str(raw), "--out", str(out), "--no-progress", "--json", str(tmp_path / "r.json")]) == 0
    assert capsys.readouterr().out.startswith(table.split("\n")[0]) and (tmp_path / "r.json").is_file()
    assert main(["prepare", str(raw), "--out", str(out), "--no-progress", "--json"]) == 0
    piped = capsys.readouterr()
    assert json.loads(piped.out) == json.loads((tmp_path / "r.json").read_text())
    assert "--json without a value is deprecated" in piped.err

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert main(["fit", "--config", str(RECIPE), "--data.init_args.train", str(out / "train.jsonl"),
                 "--data.init_args.val", str(out / "val.jsonl"), "--data.init_args.num_workers", "0",
                 "--trainer.max_steps", "2", "--trainer.limit_val_batches", "1",
                 "--trainer.enable_progress_bar", "false"]) == 0
    import torch

    ckpt = torch.load(tmp_path / "checkpoints" / "surgical_demo" / "last.ckpt", weights_only=False,
                      map_location="cpu")
    assert ckpt["global_step"] == 2


@pytest.mark.parametrize("fmt", ["srt", "vtt"])
def test_demo_subtitles_read_back_as_the_demo_texts(tmp_path, fmt):
    """The raw layout is lossless for the clip texts: each cue is the demo's narration of that clip."""
    from hvl.core.data.prepare.subtitles import read_transcript

    _, rec = demo.render_video("v", __import__("numpy").random.SeedSequence([0, 0, 0]), size=32, fps=2.0)
    demo.write_raw_layout(tmp_path, {"train": [rec]})
    source, k = ("asr", 0) if fmt == "srt" else ("clean", 1)
    cues = read_transcript(tmp_path / "transcripts" / f"v.{source}.{fmt}")
    assert [c.text for c in cues] == [c.texts[k] for c in rec.clips]
    assert [c.start for c in cues] == [c.start for c in rec.clips]
    assert all(a.end <= b.start for a, b in itertools.pairwise(cues))  # no overlapping cues
