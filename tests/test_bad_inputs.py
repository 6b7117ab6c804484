"""Bad-input matrix at the command line: each case exits 2 with one clear message naming the
file and what is wrong — never a traceback — and unusable training videos follow the policy."""
import json
import wave

import numpy as np
import pytest
import yaml
from helpers import write_index_folder, write_index_video
from hvl.core.cli import main
from hvl.core.data.datamodule import HVLDataModule
from hvl.core.data.video import write_video
from hvl.core.errors import HVLInputError


def _record(vid="v1", path="videos/v1.mp4", **kw):
    rec = {"video_id": vid, "path": path, "texts": ["abstract"],
           "phases": [{"start": 0, "end": 2, "text": "first", "label": "A"},
                      {"start": 2, "end": 4.9, "text": "second", "label": "B"}],
           "clips": [{"start": 0, "end": 2, "texts": ["x"]}, {"start": 2, "end": 4, "texts": ["y"]}]}
    rec.update(kw)
    return rec


@pytest.fixture
def ds(tmp_path):
    """A valid tiny dataset + prompt file + zero-shot config; cases break one thing each."""
    (tmp_path / "videos").mkdir()
    for v in ("v1", "v2"):
        write_index_video(tmp_path / "videos" / f"{v}.mp4", n=50, fps=10)
    rows = [_record("v1"), _record("v2", "videos/v2.mp4")]
    (tmp_path / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "prompts.yaml").write_text(yaml.safe_dump(
        {"classes": [{"name": "A", "prompts": ["a thing"]}, {"name": "B", "prompts": ["b thing"]}]}))
    cfg = {"dataset": {"reader": "manifest", "path": str(tmp_path / "test.jsonl")},
           "prompts": str(tmp_path / "prompts.yaml"), "level": "phase"}
    (tmp_path / "zs.yaml").write_text(yaml.safe_dump(cfg))
    return tmp_path


def _rows(ds, *rows):
    (ds / "test.jsonl").write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))


def _cfg(ds, **changes):
    cfg = yaml.safe_load((ds / "zs.yaml").read_text())
    for k, v in changes.items():
        cfg[k] = v
    (ds / "zs.yaml").write_text(yaml.safe_dump(cfg))


def _prompts(ds, text):
    (ds / "prompts.yaml").write_text(text)


def _video_bytes(ds, data: bytes):
    (ds / "videos" / "v2.mp4").write_bytes(data)


def _truncate(ds):
    p = ds / "videos" / "v2.mp4"
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])


def _audio_only(ds):
    p = ds / "videos" / "v2.wav"
    with wave.open(str(p), "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(8000)
        w.writeframes(np.zeros(8000, np.int16).tobytes())
    _rows(ds, _record("v1"), _record("v2", "videos/v2.wav"))


def _cholec(ds, header="Frame\tPhase", phase="Preparation", frames=50, rows=50, skip_row=None, annotation=True):
    root = ds / "cholec"
    (root / "videos").mkdir(parents=True)
    (root / "phase_annotations").mkdir()
    write_video(root / "videos" / "video49.mp4", np.zeros((frames, 32, 32, 3), np.uint8), 25)
    if annotation:
        body = "".join(f"{i}\t{phase}\n" for i in range(rows) if i != skip_row)
        (root / "phase_annotations" / "video49-phase.txt").write_text(header + "\n" + body)
    _cfg(ds, domain="surgical", dataset={"reader": "cholec80", "path": str(root), "options": {"video_ids": [49]}},
         prompts="surgical:cholec80")


H2S_HEADER = "VIDEO_ID\tVIDEO_NAME\tSENTENCE_ID\tSENTENCE_NAME\tSTART_REALIGNED\tEND_REALIGNED\tSENTENCE"


def _how2sign(ds, mode="clips", clip=True, table=True):
    """A one-sentence How2Sign test split; what is left out is the case."""
    root = ds / "how2sign"
    (root / "test_rgb_front_clips" / "raw_videos").mkdir(parents=True)
    (root / "test_raw_videos" / "raw_videos").mkdir(parents=True)
    if clip:
        write_video(root / "test_rgb_front_clips" / "raw_videos" / "abc_0-1-rgb_front.mp4",
                    np.zeros((10, 32, 32, 3), np.uint8), 10)
    if table:
        (root / "how2sign_realigned_test.csv").write_text(
            H2S_HEADER + "\nabc\tabc-1-rgb_front\tabc_0\tabc_0-1-rgb_front\t0.5\t1.5\tHello there.\n")
    _cfg(ds, domain="sign", dataset={"reader": "how2sign", "path": str(root), "options": {"mode": mode}})


def _phoenix(ds, folder=True, frames=True):
    root = ds / "phoenix"
    (root / "annotations" / "manual").mkdir(parents=True)
    (root / "annotations" / "manual" / "PHOENIX-2014-T.test.corpus.csv").write_text(
        "name|video|start|end|speaker|orth|translation\nday-1|day-1/1/*.png|-1|-1|Signer01|REGEN|es regnet\n")
    if folder:
        (root / "features" / "fullFrame-210x260px" / "test" / "day-1").mkdir(parents=True)
    if frames:
        write_index_folder(root / "features" / "fullFrame-210x260px" / "test" / "day-1", 3)
    _cfg(ds, domain="sign", dataset={"reader": "phoenix", "path": str(root)})


def _gamephysics(ds, csv, videos=True):
    root = ds / "gp"
    (root / "g1").mkdir(parents=True)
    if videos:
        write_index_video(root / "g1" / "v1.mp4", n=20)
    if csv is not None:
        (root / "metadata.csv").write_text(csv)
    _cfg(ds, domain="gameplay", dataset={"reader": "gamephysics", "path": str(root)})


CASES = {
    # manifests
    "manifest missing": (lambda d: _cfg(d, dataset={"path": str(d / "nope.jsonl")}), "nope.jsonl", "manifest not found"),
    "manifest bad json": (lambda d: _rows(d, _record(), "{oops"), "test.jsonl, line 2", "not valid JSON"),
    "manifest missing field": (lambda d: _rows(d, {k: v for k, v in _record().items() if k != "path"}),
                               "line 1", "field 'path'"),
    "manifest wrong type": (lambda d: _rows(d, _record(duration="long")), "line 1", "field 'duration'"),
    "manifest start>=end": (lambda d: _rows(d, _record(phases=[{"start": 3, "end": 1, "label": "A"}])),
                            "line 1", "must be before end"),
    "manifest beyond declared duration": (lambda d: _rows(d, _record(duration=3.0)), "line 1", "beyond the video's duration"),
    "manifest empty narration": (lambda d: _rows(d, _record(clips=[{"start": 0, "end": 1, "texts": [" "]}])),
                                 "field 'clips[0].texts'", "no empty strings"),
    "manifest unknown key": (lambda d: _rows(d, _record(colour="red")), "line 1", "field 'colour'"),
    "manifest duplicate id": (lambda d: _rows(d, _record(), _record()), "line 2", "repeats line 1"),
    "manifest path escape": (lambda d: _rows(d, _record(path="../../../etc/hostname")), "test.jsonl",
                             "outside the dataset root"),
    "manifest empty": (lambda d: _rows(d, ""), "test.jsonl", "no videos"),
    # videos
    "video missing": (lambda d: (d / "videos" / "v2.mp4").unlink(), "v2.mp4", "not found"),
    "video zero bytes": (lambda d: _video_bytes(d, b""), "v2.mp4", "empty (0 bytes)"),
    "video truncated": (_truncate, "v2.mp4", "cannot decode"),
    "video not a video": (lambda d: _video_bytes(d, b"hello, I am a text file\n" * 50), "v2.mp4", "cannot decode"),
    "video audio only": (_audio_only, "v2.wav", "cannot decode"),
    "video shorter than segments": (lambda d: write_index_video(d / "videos" / "v2.mp4", n=20), "v2.mp4",
                                    "the video lasts 2.00s"),
    "label not a prompt class": (lambda d: _rows(d, _record(phases=[{"start": 0, "end": 4, "label": "C"}])), "v1.mp4",
                                 "not classes of the prompt file"),
    # prompt files
    "prompts missing": (lambda d: (d / "prompts.yaml").unlink(), "prompts.yaml", "file not found"),
    "prompts unknown key": (lambda d: _prompts(d, "classes: [{name: A, prompts: [a]}]\ncolour: red"), "prompts.yaml",
                            "field 'colour'"),
    "prompts no classes": (lambda d: _prompts(d, "classes: []"), "prompts.yaml", "field 'classes'"),
    "prompts duplicate class": (lambda d: _prompts(d, "classes: [{name: A, prompts: [a]}, {name: A, prompts: [b]}]"),
                                "prompts.yaml", "duplicate classes"),
    "prompts template without slot": (lambda d: _prompts(d, "templates: ['a photo']\nclasses: [{name: A}]"),
                                      "prompts.yaml", "exactly one '{}' slot"),
    "prompts invalid yaml": (lambda d: _prompts(d, "classes: [unclosed"), "prompts.yaml", "not valid YAML"),
    "prompts not utf8": (lambda d: (d / "prompts.yaml").write_bytes(b"\xff\xfe\x00"), "prompts.yaml", "not UTF-8"),
    "prompts unknown domain file": (lambda d: _cfg(d, prompts="surgical:nope"), "nope.yaml", "file not found"),
    # Cholec80
    "cholec80 wrong header": (lambda d: _cholec(d, header="frame,phase"), "video49-phase.txt", "header must be"),
    "cholec80 unknown phase": (lambda d: _cholec(d, phase="Cleaning"), "video49-phase.txt", "unknown phase 'Cleaning'"),
    "cholec80 length mismatch": (lambda d: _cholec(d, rows=200), "video49-phase.txt", "annotates 200 frames"),
    "cholec80 gap in frames": (lambda d: _cholec(d, skip_row=7), "line 9", "expected frame 7"),
    "cholec80 annotation missing": (lambda d: _cholec(d, annotation=False), "video49-phase.txt", "not found"),
    "cholec80 video missing": (lambda d: (_cholec(d), (d / "cholec" / "videos" / "video49.mp4").unlink()),
                               "video49.mp4", "Cholec80 video missing"),
    # How2Sign / PHOENIX-2014T
    "how2sign clip missing": (lambda d: _how2sign(d, clip=False), "how2sign_realigned_test.csv, line 2",
                              "abc_0-1-rgb_front.mp4 not found"),
    "how2sign full video missing": (lambda d: _how2sign(d, mode="full"), "field 'VIDEO_NAME'",
                                    "abc-1-rgb_front.mp4 not found"),
    "how2sign table missing": (lambda d: _how2sign(d, table=False), "how2sign_realigned_test.csv",
                               "How2Sign table not found"),
    "phoenix frame folder missing": (lambda d: _phoenix(d, folder=False, frames=False),
                                     "PHOENIX-2014-T.test.corpus.csv, line 2", "frame folder"),
    "phoenix frame folder empty": (lambda d: _phoenix(d, frames=False), "corpus.csv, line 2", "has no PNG frames"),
    "phoenix annotation missing": (lambda d: (_phoenix(d), (d / "phoenix" / "annotations" / "manual" /
                                                            "PHOENIX-2014-T.test.corpus.csv").unlink()),
                                   "PHOENIX-2014-T.test.corpus.csv", "annotation not found"),
    # GamePhysics (gameplay domain)
    "gamephysics csv missing column": (lambda d: _gamephysics(d, "post_id\nv1\n"), "metadata.csv, line 1",
                                       "lacks column(s) ['title']"),
    "gamephysics duplicate post id": (lambda d: _gamephysics(d, "post_id,title\nv1,a\nv1,b\n"), "metadata.csv, line 3",
                                      "repeats line 2"),
    "gamephysics no videos": (lambda d: _gamephysics(d, None, videos=False), "gp", "no videos"),
    # configs and checkpoints
    "config unknown key": (lambda d: _cfg(d, colour="red"), "zs.yaml", "field 'colour'"),
    "config missing dataset": (lambda d: (d / "zs.yaml").write_text("prompts: x.yaml\n"), "zs.yaml", "field 'dataset'"),
    "config unknown domain": (lambda d: _cfg(d, domain="chess", dataset={"reader": "pgn", "path": "x"}), "chess",
                              "unknown domain"),
    "config unknown reader": (lambda d: _cfg(d, domain="surgical", dataset={"reader": "m2cai", "path": "x"}), "m2cai",
                              "has no reader"),
    "checkpoint missing": (lambda d: None, "missing.ckpt", "checkpoint not found"),
    "checkpoint corrupt": (lambda d: (d / "missing.ckpt").write_bytes(b"\x00" * 64), "missing.ckpt",
                           "not a loadable checkpoint"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_gives_one_clear_error(ds, case, capsys):
    breaker, where, what = CASES[case]
    breaker(ds)
    rc = main(["zeroshot", "--config", str(ds / "zs.yaml"), "--ckpt", str(ds / "missing.ckpt"),
               "--no-mlflow", "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert err.startswith("hvl: error: ") and "Traceback" not in err
    assert where in err and what in err, err


def test_the_matrix_is_large_enough():
    assert len(CASES) >= 30


def _datamodule(ds, policy):
    _video_bytes(ds, b"")
    return HVLDataModule(str(ds / "test.jsonl"), num_workers=0, on_bad_video=policy,
                         schedule={"clip": {"frames": 2, "batch_size": 2}})


def test_unreadable_training_video_stops_the_run_by_default(ds):
    dm = _datamodule(ds, "error")
    with pytest.raises(HVLInputError, match=r"(?s)video 'v2' .*v2.mp4.*empty \(0 bytes\).*on_bad_video: skip"):
        dm.setup("fit")


def test_skip_policy_lists_every_skipped_video(ds):
    dm = _datamodule(ds, "skip")
    with pytest.warns(UserWarning, match="skipping 1 unusable video"):
        dm.setup("fit")
    dataset, items = dm.train_split
    assert [v.video_id for v in dataset.manifest.videos] == ["v1"]
    assert {i.video for i in items["clip"]} == {0}
    assert dm.skipped == [{"manifest": str(ds / "test.jsonl"), "video_id": "v2",
                           "path": str((ds / "videos" / "v2.mp4").resolve()), "reason": dm.skipped[0]["reason"]}]
    assert "empty" in dm.skipped[0]["reason"]


@pytest.mark.slow
@pytest.mark.parametrize("override, what", [
    (["--model.init_args.loss", "softmax"], "model.loss: unknown 'softmax'; use 'infonce' (CLIP, HecVL) or 'sigmoid'"),
    (["--model.init_args.levels", "[clip,scene]"], "model.levels: unknown ['scene']"),
    (["--model.init_args.loss", "sigmoid", "--model.init_args.finegrained", "{video: {}}"],
     "does not combine with model.loss: sigmoid"),
])
def test_bad_model_config_in_hvl_fit_is_one_clear_error(override, what, tmp_path, monkeypatch, capsys):
    """A model's own config check raised inside LightningCLI reaches the user as hvl's one-line error, exit 2
    (not jsonargparse's type-union dump); it fails before any data is read, so nothing is written."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    rc = main(["fit", "--config", "surgical/demo_pretrain", *override])
    err = capsys.readouterr().err
    assert rc == 2 and "hvl: error: " in err and what in err and "Traceback" not in err, err
    assert not (tmp_path / "checkpoints").exists()
