"""`hvl export onnx`: the exported graphs give torch's embeddings (max |diff| <= 1e-4 on unit-norm embeddings, at
batch sizes and lengths the export never saw) for hvl's own encoders and for CLIP / SigLIP backbones; the folder
works without the model it came from (tokenizer beside it); zero-shot on it predicts what torch predicts; a folder
that is not an export is never replaced; a changed graph or a manifest naming paths of its own is refused; a
missing extra is one error naming it."""
from __future__ import annotations

import json
import re
import shutil
import sys
from pathlib import Path

import pytest
from hvl.core.cli import main
from hvl.core.errors import HVLInputError
from hvl.core.extras import MissingExtraError

TOL = 1e-4
TEXTS = ["grasper retracts the gallbladder", "clipping", "the surgeon cuts the cystic duct between two clips",
         "irrigation and suction of the operating field after the dissection"]


def _tiny_checkpoint(work: Path, temporal: str = "transformer") -> Path:
    """An untrained 3-level hvl model at 32 px: small CNN frames, a temporal transformer, a 2-layer BERT text tower."""
    import torch
    from hvl.core.models.module import HierarchicalVLM
    from pretrained_helpers import make_bert

    text = make_bert(work / "bert")
    torch.manual_seed(0)
    m = HierarchicalVLM(text_encoder={"path": str(text)}, embed_dim=32,
                        video_encoder={"frame_encoder": {"name": "small_cnn", "widths": [8, 16]}, "temporal": temporal,
                                       "temporal_heads": 2})
    with torch.no_grad():  # the transformer's output layer starts at zero: make it count
        for p in m.video.parameters():
            p.add_(0.05 * torch.randn_like(p))
    ckpt = work / "tiny.ckpt"
    torch.save({"state_dict": m.state_dict(), "hyper_parameters": dict(m.hparams),
                "hvl": {"class_path": "hvl.core.models.module.HierarchicalVLM", "image_size": 32}}, ckpt)
    return ckpt


def _max_diffs(torch_model, onnx_model, hw: tuple[int, int]) -> dict[str, float]:
    """max |onnx - torch| per call and level, on inputs of sizes the export never saw (batch 1, 5; 6 frames)."""
    import torch

    g = torch.Generator().manual_seed(1)
    frames = torch.randn(5, 3, *hw, generator=g)
    clips = torch.randn(2, 3, 3, *hw, generator=g)
    feats = torch.randn(4, 6, torch_model.video.dim, generator=g)
    out: dict[str, float] = {}
    with torch.no_grad():
        for lv in torch_model.levels:
            pairs = {"frames": (torch_model.embed_frames(frames, lv), onnx_model.embed_frames(frames, lv)),
                     "one_frame": (torch_model.embed_frames(frames[:1], lv), onnx_model.embed_frames(frames[:1], lv)),
                     "video": (torch_model.embed_video(clips, lv), onnx_model.embed_video(clips, lv)),
                     "window": (torch_model.embed_video(feats, lv), onnx_model.embed_video(feats, lv)),
                     "text": (torch_model.embed_text(TEXTS, lv), onnx_model.embed_text(TEXTS, lv)),
                     "one_text": (torch_model.embed_text(TEXTS[:1], lv), onnx_model.embed_text(TEXTS[:1], lv))}
            for what, (ref, got) in pairs.items():
                assert got.shape == ref.shape, (what, lv)
                assert torch.allclose(got.norm(dim=-1), torch.ones(len(got)), atol=1e-5), (what, lv)
                out[f"{what}/{lv}"] = float((got - ref.float()).abs().max())
    return out


@pytest.fixture(scope="module")
def tiny_export(tmp_path_factory):
    """(work dir, checkpoint, export folder) of the tiny hvl model, exported by the command line."""
    work = tmp_path_factory.mktemp("onnx")
    ckpt = _tiny_checkpoint(work)
    assert main(["export", "onnx", "--ckpt", str(ckpt), "--out", str(work / "export"), "--no-progress"]) == 0
    return work, ckpt, work / "export"


@pytest.mark.slow
def test_an_hvl_model_exported_gives_torchs_embeddings_without_its_checkpoint(tiny_export, capsys):
    from hvl.core.evaluation.adapt.heads import space_fingerprint
    from hvl.core.inference.onnx import OnnxModel
    from hvl.core.models.checkpoint import load_model

    work, ckpt, out = tiny_export
    reference, _ = load_model(ckpt)
    manifest = json.loads((out / "hvl_onnx.json").read_text())
    assert set(manifest["files"]) == {"frame_tower.onnx", "video_heads.onnx", "text_tower.onnx", "text_heads.onnx"}
    assert manifest["files"]["frame_tower.onnx"]["inputs"][0]["shape"] == ["batch", 3, 32, 32]
    assert manifest["files"]["video_heads.onnx"]["inputs"][0]["shape"][:2] == ["batch", "frames"]
    assert manifest["model"]["sha256"] and manifest["preprocess"]["size"] == 32 and manifest["opset"] == 18
    # the folder alone: the checkpoint and its text model directory are gone
    shutil.move(str(ckpt), work / "moved.ckpt")
    shutil.move(str(work / "bert"), work / "moved_bert")
    try:
        exported = OnnxModel(out)
        diffs = _max_diffs(reference, exported, (32, 32))
    finally:
        shutil.move(str(work / "moved.ckpt"), ckpt)
        shutil.move(str(work / "moved_bert"), work / "bert")
    with capsys.disabled():
        print(f"\nhvl model: max |onnxruntime - torch| = {max(diffs.values()):.2e}")
    assert max(diffs.values()) <= TOL, diffs
    # a head `hvl adapt` trained on the torch model accepts the export's spaces, and only the same level's
    for lv in reference.levels:
        assert space_fingerprint(exported, lv) == space_fingerprint(reference, lv)
    assert space_fingerprint(exported, "clip") != space_fingerprint(exported, "phase")


@pytest.mark.slow
@pytest.mark.parametrize("family", ["clip", "siglip"])
def test_a_clip_or_siglip_backbone_exported_gives_torchs_embeddings(family, tmp_path, capsys):
    from hvl.core.inference.onnx import OnnxModel
    from hvl.core.models.checkpoint import load_pretrained
    from pretrained_helpers import IMAGE, make_clip, make_siglip

    model_dir = (make_clip if family == "clip" else make_siglip)(tmp_path / family)
    assert main(["export", "onnx", "--model", str(model_dir), "--out", str(tmp_path / "export"),
                 "--no-progress"]) == 0
    reference, _ = load_pretrained(str(model_dir))
    manifest = json.loads((tmp_path / "export/hvl_onnx.json").read_text())
    assert manifest["model"]["backbone"] == family and manifest["model"]["kind"] == "pretrained"
    assert manifest["tokenizer"]["padding"] == ("max_length" if family == "siglip" else "longest")
    diffs = _max_diffs(reference, OnnxModel(tmp_path / "export"), (IMAGE, IMAGE))
    with capsys.disabled():
        print(f"\n{family}: max |onnxruntime - torch| = {max(diffs.values()):.2e}")
    assert max(diffs.values()) <= TOL, diffs


@pytest.mark.slow
def test_zero_shot_on_the_export_predicts_what_torch_predicts(tiny_export, tmp_path):
    import torch
    from hvl.core.data.records import manifest_videos
    from hvl.core.data.schema import load_prompt_file
    from hvl.core.evaluation.zeroshot.classify import predict
    from hvl.core.inference.onnx import load_onnx
    from hvl.core.models.checkpoint import load_model, preprocess_of
    from hvl.core.registry import resolve_prompt_file
    from hvl.domains.surgical.demo import generate

    _, ckpt, out = tiny_export
    generate(tmp_path / "demo", n_train=0, n_val=0, n_test=2, size=32, progress=False)
    videos = manifest_videos(tmp_path / "demo/test.jsonl")
    prompts = load_prompt_file(resolve_prompt_file("surgical:demo"))
    results = []
    for model, meta in (load_model(ckpt), load_onnx(out)):
        kw = dict(fps=1.0, image_size=32, num_workers=0, progress=False, preprocess=preprocess_of(meta))
        results.append((predict(model, videos, prompts, "phase", **kw),
                        predict(model, videos, prompts, "phase", window=3.0, **kw)))
    (torch_single, torch_window), (onnx_single, onnx_window) = results
    for ref, got in ((torch_single, onnx_single), (torch_window, onnx_window)):
        assert sum(len(p) for p in got[0]) > 10
        for a, b in zip(ref[0], got[0]):
            assert torch.equal(a, b)
        for a, b in zip(ref[2], got[2]):
            assert float((a - b).abs().max()) < 1e-4


# ---- the folder -----------------------------------------------------------------------------------------------------

def _fake_export(folder: Path, **manifest) -> Path:
    folder.mkdir(parents=True)
    base = {"format": "hvl-onnx", "version": 1, "levels": ["phase"], "embed_dim": 4,
            "files": {n: {"sha256": "0" * 64} for n in ("frame_tower.onnx", "video_heads.onnx", "text_tower.onnx",
                                                         "text_heads.onnx")},
            "tokenizer": {"padding": "longest", "max_length": 8, "files": ["tokenizer.json"],
                          "sha256": {"tokenizer.json": "0" * 64}}}
    (folder / "hvl_onnx.json").write_text(json.dumps(base | manifest))
    return folder


def test_a_folder_that_is_not_an_export_is_refused_and_kept(tmp_path, capsys):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    assert main(["export", "onnx", "--ckpt", str(tmp_path / "any.ckpt"), "--out", str(mine), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert str(mine) in err and "not an hvl ONNX export" in err and "new or empty folder" in err
    assert (mine / "notes.txt").read_text() == "keep me" and [p.name for p in mine.iterdir()] == ["notes.txt"]
    # an export with a file of someone else's added is no longer only an export
    export = _fake_export(tmp_path / "export")
    (export / "results.csv").write_text("1,2\n")
    assert main(["export", "onnx", "--ckpt", str(tmp_path / "any.ckpt"), "--out", str(export), "--no-progress"]) == 2
    assert (export / "results.csv").exists()
    (tmp_path / "file").write_text("x")
    assert main(["export", "onnx", "--ckpt", str(tmp_path / "any.ckpt"), "--out", str(tmp_path / "file")]) == 2
    assert "is a file" in capsys.readouterr().err


def test_an_earlier_export_may_be_replaced(tmp_path):
    from hvl.core.inference.onnx_export import is_export_folder

    export = _fake_export(tmp_path / "export")
    (export / "tokenizer").mkdir()
    assert is_export_folder(export)
    (export / "hvl_onnx.json").write_text(json.dumps({"format": "something-else"}))
    assert not is_export_folder(export)


@pytest.mark.parametrize("change, field", [
    ({"tokenizer": {"padding": "longest", "max_length": 8, "files": ["../../.bashrc"]}}, "tokenizer_files"),
    ({"files": {"../model.onnx": {}}}, "files"),
    ({"format": "other"}, "format"),
    ({"version": 99}, "version"),
    ({"levels": []}, "levels"),
    ({"tokenizer": {"padding": "longest", "max_length": 8, "files": ["vocab.txt"]}}, "tokenizer.sha256"),
])
def test_a_manifest_naming_other_files_or_settings_is_refused(tmp_path, change, field):
    from hvl.core.inference.onnx import read_manifest

    export = _fake_export(tmp_path / "export", **change)
    with pytest.raises(HVLInputError, match=field) as e:
        read_manifest(export)
    assert "hvl_onnx.json" in str(e.value)


@pytest.mark.slow
def test_a_graph_changed_after_the_export_is_refused(tiny_export, tmp_path):
    from hvl.core.inference.onnx import OnnxModel

    copy = shutil.copytree(tiny_export[2], tmp_path / "copy")
    with open(copy / "video_heads.onnx", "ab") as f:
        f.write(b"\0")
    with pytest.raises(HVLInputError, match=r"files\.video_heads\.onnx\.sha256.*changed after the export"):
        OnnxModel(copy)
    (copy / "video_heads.onnx").unlink()
    (copy / "video_heads.onnx").symlink_to(tiny_export[2] / "video_heads.onnx")
    with pytest.raises(HVLInputError, match="not a regular file"):
        OnnxModel(copy)


@pytest.mark.slow
def test_a_tokenizer_file_changed_added_or_linked_after_the_export_is_refused(tiny_export, tmp_path):
    """The tokenizer decides what the text tower sees: its files are held to the export's sha256 as the graphs are,
    and a file planted beside them (a vocab.txt, a config: files a tokenizer reads) is refused by name."""
    from hvl.core.inference.onnx import OnnxModel

    files = json.loads((tiny_export[2] / "hvl_onnx.json").read_text())["tokenizer"]["files"]
    name = "tokenizer.json" if "tokenizer.json" in files else files[0]
    plant = next(n for n in ("vocab.txt", "special_tokens_map.json", "tokenizer.json") if n not in files)
    edited = shutil.copytree(tiny_export[2], tmp_path / "edited")
    with open(edited / "tokenizer" / name, "a") as f:
        f.write("\n")
    with pytest.raises(HVLInputError, match=rf"tokenizer\.sha256\.{re.escape(name)}.*changed after the export"):
        OnnxModel(edited)
    planted = shutil.copytree(tiny_export[2], tmp_path / "planted")
    (planted / "tokenizer" / plant).write_text("[PAD]\n")
    with pytest.raises(HVLInputError, match=rf"'{re.escape(plant)}', which the export did not write"):
        OnnxModel(planted)
    linked = shutil.copytree(tiny_export[2], tmp_path / "linked")
    (linked / "tokenizer" / name).unlink()
    (linked / "tokenizer" / name).symlink_to(tiny_export[2] / "tokenizer" / name)
    with pytest.raises(HVLInputError, match="not a regular file"):
        OnnxModel(linked)
    OnnxModel(shutil.copytree(tiny_export[2], tmp_path / "untouched"))  # a copy as written loads


def test_a_windowed_temporal_model_is_refused_with_the_reason(tmp_path, capsys):
    ckpt = _tiny_checkpoint(tmp_path, temporal="windowed")
    assert main(["export", "onnx", "--ckpt", str(ckpt), "--out", str(tmp_path / "export"), "--no-progress"]) == 2
    assert "temporal: windowed" in capsys.readouterr().err and not (tmp_path / "export").exists()


def test_without_the_onnx_extra_export_and_loading_name_it(tmp_path, monkeypatch, capsys):
    from hvl.core.inference.onnx import OnnxModel

    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    assert main(["export", "onnx", "--ckpt", str(tmp_path / "any.ckpt"), "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert "pip install 'hvl[onnx]'" in err and "onnxruntime" in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(MissingExtraError, match=r"pip install 'hvl\[onnx\]'"):
        OnnxModel(_fake_export(tmp_path / "export"))


@pytest.mark.slow
def test_hvl_predict_on_the_export_labels_a_demo_video_as_torch_does(tiny_export, tmp_path):
    """`hvl predict --onnx DIR` gives the timeline `hvl predict --ckpt` gives: every frame's class, the smoothed
    classes and the segments' labels and times."""
    from hvl.core.inference.write import read_timeline
    from hvl.domains.surgical.demo import generate

    _, ckpt, export = tiny_export
    generate(tmp_path / "demo", n_train=0, n_val=0, n_test=1, size=32, progress=False)
    (video,) = sorted((tmp_path / "demo/videos").glob("*.mp4"))
    timelines = []
    for name, model in (("torch", ["--ckpt", str(ckpt)]), ("onnx", ["--onnx", str(export)])):
        assert main(["predict", str(video), *model, "--prompts", "surgical:demo", "--level", "phase", "--out",
                     str(tmp_path / name), "--no-progress", "--num-workers", "0"]) == 0
        (path,) = sorted((tmp_path / name).glob("*/timeline.json"))
        timelines.append(read_timeline(path))
    ref, got = timelines
    assert len(got.pred) > 10 and got.pred == ref.pred and got.smoothed == ref.smoothed
    assert [(s.label, s.start, s.end) for s in got.segments] == [(s.label, s.start, s.end) for s in ref.segments]
    assert max(abs(a - b) for pa, pb in zip(got.probs, ref.probs) for a, b in zip(pa, pb)) < 1e-4
    assert got.settings["model"] == str(export)


def test_hvl_predict_takes_one_model(tmp_path, capsys):
    assert main(["predict", str(tmp_path / "v.mp4"), "--ckpt", "a.ckpt", "--onnx", str(tmp_path), "--prompts",
                 "surgical:demo", "--out", str(tmp_path / "out")]) == 2
    assert "exactly one of --ckpt, --model or --onnx" in capsys.readouterr().err
    assert main(["predict", str(tmp_path / "v.mp4"), "--prompts", "surgical:demo", "--out", str(tmp_path / "o")]) == 2
    assert "exactly one of --ckpt, --model or --onnx" in capsys.readouterr().err
