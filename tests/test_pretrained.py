"""Pretrained image-text models as hvl backbones: at step 0 hvl *is* the pretrained model (embeddings and
zero-shot logits equal transformers' own), preprocessing follows the model's image processor, every evaluation
command takes ``--model``, fine-tuning resumes, and WiSE-FT at α = 0 gives back the zero-shot model."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from pretrained_helpers import IMAGE, make_clip, make_clip_towers, make_siglip

from hvl.core.cli import main
from hvl.core.data.transforms import FrameTransform, Preprocess
from hvl.core.errors import HVLInputError
from hvl.core.models.checkpoint import load_model, load_pretrained

TEXTS = ["a car flying in the air", "a wheel stuck inside a tree", "the gallbladder is dissected", "ok"]


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory):
    root = tmp_path_factory.mktemp("hf")
    vision, text = make_clip_towers(root / "towers")
    return {"clip": (make_clip(root / "clip"), None), "siglip": (make_siglip(root / "siglip"), None),
            "towers": (vision, text), "joint_of_towers": root / "towers" / "joint"}


def _reference(kind, tiny_models, px, texts):
    """transformers' own features and logits for the same pixels and texts."""
    from transformers import AutoModel, AutoTokenizer

    path = tiny_models["joint_of_towers"] if kind == "towers" else tiny_models[kind][0]
    ref = AutoModel.from_pretrained(path).eval()
    tok = AutoTokenizer.from_pretrained(path)
    if kind == "siglip":  # as SiglipProcessor: padded to the model's length, no attention mask
        batch = tok(texts, padding="max_length", max_length=ref.config.text_config.max_position_embeddings,
                    return_tensors="pt")
        batch.pop("attention_mask")
    else:
        batch = tok(texts, padding=True, return_tensors="pt")
    batch.pop("token_type_ids", None)
    with torch.no_grad():
        out = ref(pixel_values=px, **batch)
        img = ref.get_image_features(pixel_values=px)
        txt = ref.get_text_features(**batch)
    img = img if isinstance(img, torch.Tensor) else img.pooler_output  # transformers 5.x: BaseModelOutputWithPooling
    txt = txt if isinstance(txt, torch.Tensor) else txt.pooler_output
    return img, txt, out.logits_per_image


@pytest.mark.parametrize("kind", ["clip", "siglip", "towers"])
def test_step0_embeddings_and_logits_equal_transformers(kind, tiny_models):
    path, text = tiny_models[kind]
    model, meta = load_pretrained(str(path), str(text) if text else None)
    torch.manual_seed(1)
    px = torch.randn(5, 3, IMAGE, IMAGE)
    ref_img, ref_txt, ref_logits = _reference(kind, tiny_models, px, TEXTS)
    with torch.no_grad():
        for level in ("clip", "phase", "video"):
            img, txt = model.embed_frames(px, level), model.embed_text(TEXTS, level)
            assert (img - F.normalize(ref_img, dim=-1)).abs().max() < 1e-5, level
            assert (txt - F.normalize(ref_txt, dim=-1)).abs().max() < 1e-5, level
            logits = model.scales[level]() * img @ txt.T
            if kind == "siglip":
                logits = logits + model.backbone.init_logit_bias
            if kind == "towers":  # separate towers carry no logit scale: CLIP's trained value, 100
                ref_logits = 100.0 * F.normalize(ref_img, dim=-1) @ F.normalize(ref_txt, dim=-1).T
            assert (logits - ref_logits).abs().max() < 1e-5 * max(1.0, ref_logits.abs().max().item()), level
            # a video of one frame, through temporal pooling, is that frame
            vid = model.embed_video(px[:, None], level)
            assert (vid - img).abs().max() < 1e-6
    assert meta["preprocess"] == Preprocess.from_image_processor(
        json.loads((Path(path) / "preprocessor_config.json").read_text())).model_dump(mode="json")


@pytest.mark.parametrize("kind", ["clip", "siglip"])
def test_preprocessing_matches_the_image_processor(kind, tiny_models):
    """hvl resizes with torch (antialiased, batched, in DataLoader workers); the processor with PIL. Both round
    the resized image to 8 bits, so most pixels agree exactly; where the two resampling kernels round a value
    differently, they differ by one grey level = 1/255/std ≈ 0.016 in normalised units (std 0.26 / 0.5)."""
    from transformers import AutoImageProcessor

    path = tiny_models[kind][0]
    proc = AutoImageProcessor.from_pretrained(path, use_fast=False)
    pre = Preprocess.from_image_processor(proc)
    rng = np.random.default_rng(0)
    # a smooth picture of a real aspect (a 16:9 frame), as decoded: uint8 [T, H, W, 3]
    yy, xx = np.mgrid[0:90, 0:160]
    frame = np.stack([(128 + 100 * np.sin(xx / 9 + c) * np.cos(yy / 7)) for c in range(3)], -1)
    frames = np.clip(frame[None] + rng.normal(0, 3, (2, 90, 160, 3)), 0, 255).astype(np.uint8)
    ours = FrameTransform(train=False, preprocess=pre)(torch.from_numpy(frames))
    theirs = torch.as_tensor(np.asarray(proc(list(frames), return_tensors="np")["pixel_values"]))
    assert ours.shape == theirs.shape == (2, 3, IMAGE, IMAGE)
    diff = (ours - theirs).abs()
    one_level = 1 / 255 / min(pre.std)
    assert diff.max() <= 1.5 * one_level + 1e-6, diff.max()
    assert (diff < 1e-5).float().mean() > 0.6   # most pixels equal exactly


def test_processor_config_is_read_for_shortest_edge_and_fixed_sizes():
    clip = Preprocess.from_image_processor({"size": {"shortest_edge": 224}, "do_center_crop": True,
                                            "crop_size": {"height": 224, "width": 224}, "resample": 3,
                                            "image_mean": [0.48145466, 0.4578275, 0.40821073],
                                            "image_std": [0.26862954, 0.26130258, 0.27577711]})
    assert (clip.resize, clip.size, clip.crop, clip.resample) == ("shortest_edge", 224, 224, "bicubic")
    assert clip.resized_shape(480, 854) == (224, 398) and clip.output_size == (224, 224)
    sig = Preprocess.from_image_processor({"size": {"height": 384, "width": 384}, "resample": 2,
                                           "image_mean": [0.5] * 3, "image_std": [0.5] * 3})
    assert (sig.resize, sig.size, sig.crop, sig.resample) == ("fixed", (384, 384), None, "bilinear")
    assert sig.decode_size is None and Preprocess.square(64).decode_size == (64, 64)


def test_remote_code_is_never_switched_on_by_a_file(tiny_models, tmp_path):
    src = tiny_models["clip"][0]
    asks = tmp_path / "asks"
    shutil.copytree(src, asks)
    cfg = json.loads((asks / "config.json").read_text())
    cfg["auto_map"] = {"AutoModel": "modeling_evil.EvilModel"}
    (asks / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(HVLInputError, match="auto_map.*--trust-remote-code"):
        load_pretrained(str(asks))
    # a checkpoint whose hyperparameters ask for it is refused unless the caller says so
    ckpt = tmp_path / "asks.ckpt"
    torch.save({"state_dict": {}, "hyper_parameters": {"text_encoder": {"path": str(src), "trust_remote_code": True}},
                "hvl": {"class_path": "hvl.core.models.module.HierarchicalVLM"}}, ckpt)
    with pytest.raises(HVLInputError, match="text_encoder.trust_remote_code.*--trust-remote-code"):
        load_model(ckpt)


def test_unknown_or_missing_models_are_clear_errors(tmp_path, tiny_models):
    with pytest.raises(HVLInputError, match="does not exist"):
        load_pretrained(str(tmp_path / "nope"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(HVLInputError, match="no config.json"):
        load_pretrained(str(tmp_path / "empty"))
    with pytest.raises(HVLInputError, match="vision tower.*--text-model"):
        load_pretrained(str(tiny_models["towers"][0]))
    noproc = tmp_path / "noproc"
    shutil.copytree(tiny_models["clip"][0], noproc)
    (noproc / "preprocessor_config.json").unlink()
    with pytest.raises(HVLInputError, match="preprocessor_config.json"):
        load_pretrained(str(noproc))


# ------------------------------------------------------------------ every evaluation command with --model
@pytest.fixture(scope="session")
def demos(tmp_path_factory):
    from hvl.domains.gameplay.demo import generate as gameplay
    from hvl.domains.sign.demo import generate as sign
    from hvl.domains.surgical.demo import generate as surgical

    work = tmp_path_factory.mktemp("pretrained_demos")
    surgical(work / "data" / "demo_surgical", n_train=2, n_val=1, n_test=2, size=64, progress=False)
    sign(work / "data" / "demo_sign", per_sentence={"train": 1, "val": 1, "test": 1}, n_val=2, n_test=6,
         progress=False)
    gameplay(work / "data" / "demo_gameplay", n_train=2, n_val=0, n_test=8, seconds=5.0, size=32, progress=False)
    return work


ROOT = Path(__file__).resolve().parents[1]


def test_every_evaluation_command_takes_a_pretrained_model(demos, tiny_models, monkeypatch, capsys):
    clip = str(tiny_models["clip"][0])
    monkeypatch.chdir(demos)
    common = ["--no-mlflow", "--no-progress"]
    assert main(["zeroshot", "--config", str(ROOT / "recipes/surgical/demo_zeroshot.yaml"), "--model", clip,
                 "--json", "zs.json", *common]) == 0
    zs = json.loads(Path("zs.json").read_text())
    assert zs["pretrained"] is True and zs["preprocess"]["resize"] == "shortest_edge" and zs["n_videos"] == 2
    assert 0.0 <= zs["accuracy"] <= 1.0 and zs["n_frames"] > 0
    assert main(["retrieval", "--config", str(ROOT / "recipes/sign/demo_retrieval.yaml"), "--model", clip,
                 "--json", "r.json", *common]) == 0
    r = json.loads(Path("r.json").read_text())
    assert r["n_videos"] == 6 and r["similarity"] == "finegrained" and r["pretrained"] is True
    assert main(["index", "data/demo_gameplay/videos", "--model", clip, "--out", "idx", "--fps", "1",
                 "--no-progress"]) == 0
    header = json.loads(Path("idx/index.json").read_text())
    assert header["model"] == clip and header["checkpoint"] is None and header["dim"] == 24
    assert header["preprocess"]["crop"] == IMAGE
    capsys.readouterr()
    assert main(["search", "a car flying in the air", "--index", "idx", "--agg", "count", "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert len(res["results"]) == 8 and all(m["t"] >= 0 for v in res["results"] for m in v["moments"])
    assert main(["bugsearch-eval", "--config", str(ROOT / "recipes/gameplay/demo_eval.yaml"), "--model", clip,
                 "--json", "b.json", *common]) == 0
    assert json.loads(Path("b.json").read_text())["overall"]["n_queries"] > 0


def test_search_refuses_an_index_of_another_model(demos, tiny_models, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(demos)
    other = make_clip(tmp_path / "other", seed=5)
    if not Path("idx2/index.json").exists():
        assert main(["index", "data/demo_gameplay/videos", "--model", str(tiny_models["clip"][0]), "--out", "idx2",
                     "--fps", "1", "--no-progress"]) == 0
    assert main(["search", "a car", "--index", "idx2", "--model", str(other)]) == 2
    assert "not the model the index was built with" in capsys.readouterr().err
    assert main(["index", "data/demo_gameplay/videos", "--model", str(other), "--out", "idx2", "--no-progress"]) == 2
    assert "field 'checkpoint_sha256'" in capsys.readouterr().err
