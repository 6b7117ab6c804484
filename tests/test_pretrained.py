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
from hvl.core.cli import main
from hvl.core.data.transforms import FrameTransform, Preprocess
from hvl.core.errors import HVLInputError
from hvl.core.models.checkpoint import load_model, load_pretrained
from pretrained_helpers import IMAGE, make_clip, make_clip_towers, make_siglip

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


@pytest.mark.slow
def test_siglip_sigmoid_loss_starts_at_the_models_own_loss_and_trains(tiny_models):
    """``model.loss: sigmoid`` on a SigLIP backbone: each level's bias starts at the model's ``logit_bias``, the
    step-0 clip-level loss equals SiglipModel(return_loss=True) on the same pixels and texts, and training lowers it."""
    from hvl.core.models.module import HierarchicalVLM

    path = str(tiny_models["siglip"][0])
    model = HierarchicalVLM(backbone={"path": path, "text_unlocked": 0}, loss="sigmoid", levels=["clip", "phase"],
                            same_text_positives=False, lr=1e-2)
    assert {lv: b().item() for lv, b in model.biases.items()} == {"clip": -10.0, "phase": -10.0}
    torch.manual_seed(3)
    px = torch.randn(4, 3, IMAGE, IMAGE)
    batch = {"frames": px[:, None], "texts": [[t] for t in TEXTS], "text_mask": torch.ones(4, 1, dtype=torch.bool)}
    from transformers import AutoModel, AutoTokenizer

    ref = AutoModel.from_pretrained(path).eval()
    tok = AutoTokenizer.from_pretrained(path)
    ids = tok(TEXTS, padding="max_length", max_length=ref.config.text_config.max_position_embeddings,
              return_tensors="pt")["input_ids"]
    model.eval()
    with torch.no_grad():
        want = ref(input_ids=ids, pixel_values=px, return_loss=True).loss
        got = model.level_loss("clip", batch)
    assert got.item() == pytest.approx(want.item(), rel=1e-5)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=1e-2)
    for _ in range(20):
        loss = model.level_loss("clip", batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.5 * want.item() and model.biases["clip"]().item() != -10.0
    with pytest.raises(ValueError, match="model.loss: unknown 'softmax'"):
        HierarchicalVLM(backbone={"path": path}, loss="softmax")
    with pytest.raises(ValueError, match="finegrained.*sigmoid"):
        HierarchicalVLM(backbone={"path": path}, loss="sigmoid", finegrained={"video": {}})


def test_locked_blocks_stay_in_eval_mode_and_only_their_warning_is_silenced(tiny_models):
    """A locked tower keeps no dropout / batch-norm updates in training; Lightning's eval-mode warning is silenced
    for exactly those modules, and still fires for a module that trains while in eval mode."""
    import warnings

    from hvl.core.models.module import HierarchicalVLM

    model = HierarchicalVLM(backbone={"path": str(tiny_models["clip"][0]), "image_unlocked": 1, "text_unlocked": 0})
    model.train()
    bb = model.backbone
    assert not bb.text.training and not bb.vision.encoder.layers[0].training and not bb.vision.embeddings.training
    assert bb.vision.encoder.layers[1].training and bb.vision.post_layernorm.training and model.video_heads.training

    def silenced() -> bool:
        with warnings.catch_warnings():
            model.on_fit_start()
            return any("in eval mode" in str(f[1].pattern if f[1] else "") for f in warnings.filters)

    assert silenced()
    model.video_heads["clip"].eval()   # trains, but in eval mode: that is a mistake Lightning must report
    assert not silenced()
    # from_pretrained leaves models in eval mode; a tower that trains must fine-tune with its dropout
    trains = HierarchicalVLM(backbone={"path": str(tiny_models["clip"][0])})
    assert all(m.training for m in trains.modules())


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


@pytest.mark.slow
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


@pytest.mark.slow
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


# ------------------------------------------------------------------ fine-tuning: recipes, resume, WiSE-FT
def _recipe(name: str, out: Path, demos: Path, model_swap: dict, data: dict, schedule: dict) -> Path:
    """A shipped real-scale recipe with its model paths swapped for tiny models of the same family, its data for
    the demo's, and a CPU-sized trainer; everything else as shipped."""
    import yaml

    cfg = yaml.safe_load((ROOT / "recipes" / name).read_text())
    init = cfg["model"]["init_args"]
    for dotted, value in model_swap.items():
        node = init
        *parents, leaf = dotted.split(".")
        for p in parents:
            node = node[p]
        assert leaf in node, f"{name}: model.init_args.{dotted} is not in the recipe"
        node[leaf] = value
    cfg["data"]["init_args"].update(train=str(demos / data["train"]), val=str(demos / data["val"]), num_workers=0,
                                    schedule=schedule)
    cfg["trainer"].update(accelerator="cpu", devices=1, strategy="auto", precision="32-true", max_steps=2,
                          limit_val_batches=1, enable_progress_bar=False, log_every_n_steps=1)
    cfg["trainer"]["callbacks"][0]["init_args"]["dirpath"] = str(out / "ckpt")
    cfg["trainer"]["callbacks"][0]["init_args"].pop("every_n_train_steps", None)
    path = out / name.replace("/", "_")
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.fixture(scope="session")
def tiny_vit_bert(tmp_path_factory):
    from pretrained_helpers import make_bert, make_vit

    root = tmp_path_factory.mktemp("vitbert")
    return make_vit(root / "vit"), make_bert(root / "bert")


@pytest.mark.slow
@pytest.mark.parametrize("name", ["gameplay/gamephysics_clip.yaml", "sign/how2sign_clip.yaml",
                                  "surgical/svl_pretrain.yaml"])
def test_real_scale_recipes_train_two_steps_on_tiny_models(name, demos, tiny_models, tiny_vit_bert, tmp_path,
                                                           monkeypatch):
    clip = str(tiny_models["clip"][0])
    vit, bert = tiny_vit_bert
    swap, data, sched = {
        "gameplay/gamephysics_clip.yaml": ({"backbone.path": clip}, ("demo_gameplay", "train", "train"),
                                           {"clip": {"frames": 2, "batch_size": 4, "every": 1, "per_video": 2},
                                            "video": {"frames": 3, "batch_size": 2, "every": 2}}),
        "sign/how2sign_clip.yaml": ({"backbone.path": clip}, ("demo_sign", "train", "val"),
                                    {"video": {"frames": 3, "batch_size": 2, "every": 1}}),
        "surgical/svl_pretrain.yaml": ({"text_encoder.path": str(bert), "video_encoder.frame_encoder.path": str(vit),
                                        "embed_dim": 16}, ("demo_surgical", "train", "train"),
                                       {"clip": {"frames": 2, "batch_size": 4, "every": 1},
                                        "phase": {"frames": 3, "batch_size": 2, "every": 1},
                                        "video": {"frames": 4, "batch_size": 2, "every": 1}}),
    }[name]
    d, tr, va = data
    cfg = _recipe(name, tmp_path, demos, swap, {"train": f"data/{d}/{tr}.jsonl", "val": f"data/{d}/{va}.jsonl"},
                  sched)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert main(["fit", "--config", str(cfg)]) == 0
    ck = torch.load(tmp_path / "ckpt" / "last.ckpt", weights_only=True)
    assert ck["global_step"] == 2
    pre = ck["hvl"]["preprocess"]   # the pretrained model's own preprocessing trained the model and is stored
    assert pre["resize"] == ("shortest_edge" if "clip" in name else "fixed") and pre["mean"][0] != 0.485


@pytest.fixture(scope="session")
def finetuned(demos, tiny_models, tmp_path_factory):
    """A few steps of hierarchical fine-tuning from the tiny CLIP (last vision block unlocked, text frozen)."""
    out = tmp_path_factory.mktemp("finetune")
    clip = str(tiny_models["clip"][0])
    cfg = _recipe("gameplay/gamephysics_clip.yaml", out, demos,
                  {"backbone.path": clip, "backbone.image_unlocked": 1, "lr": 1e-2, "backbone_lr": 1e-3,
                   "warmup_steps": 1},
                  {"train": "data/demo_surgical/train.jsonl", "val": "data/demo_surgical/train.jsonl"},
                  {"clip": {"frames": 2, "batch_size": 4, "every": 1}, "video": {"frames": 3, "batch_size": 2,
                                                                                  "every": 1}})
    mp = pytest.MonkeyPatch()
    mp.chdir(out)
    mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{out / 'mlflow.db'}")
    assert main(["fit", "--config", str(cfg), "--trainer.max_steps", "3"]) == 0
    mp.undo()
    return out, cfg, out / "ckpt" / "last.ckpt"


@pytest.mark.slow
def test_finetuning_moves_the_heads_and_the_unlocked_blocks_only(finetuned, tiny_models):
    _, _, ckpt = finetuned
    model, _ = load_model(ckpt)
    zs, _ = load_pretrained(str(tiny_models["clip"][0]))
    sd, sd0 = model.state_dict(), zs.state_dict()
    assert model.video_heads["clip"].up.weight.abs().max() > 0     # heads left identity
    changed = {k for k in sd if k.startswith("backbone.") and not torch.equal(sd[k], sd0[k])}
    assert changed and all(k.startswith(("backbone.vision.encoder.layers.1.", "backbone.vision.post_layernorm",
                                         "backbone.vision_proj")) for k in changed), sorted(changed)[:5]


@pytest.mark.slow
def test_finetuned_checkpoint_rebuilds_without_the_model_directory_and_resumes(finetuned, tiny_models, tmp_path,
                                                                               monkeypatch):
    out, cfg, ckpt = finetuned
    model, meta = load_model(ckpt)
    src = Path(tiny_models["clip"][0])
    hidden = src.with_name("clip_moved")
    src.rename(hidden)  # the checkpoint carries config, tokenizer and preprocessing: the directory is not needed
    try:
        again, meta2 = load_model(ckpt)
        px = torch.randn(2, 3, IMAGE, IMAGE)
        with torch.no_grad():
            assert torch.equal(again.embed_frames(px, "clip"), model.embed_frames(px, "clip"))
            assert torch.equal(again.embed_text(TEXTS, "video"), model.embed_text(TEXTS, "video"))
        assert meta2["preprocess"] == meta["preprocess"]
    finally:
        hidden.rename(src)
    monkeypatch.chdir(out)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{out / 'mlflow.db'}")
    assert main(["fit", "--config", str(cfg), "--trainer.max_steps", "5", "--ckpt_path", str(ckpt)]) == 0
    assert torch.load(ckpt, weights_only=True)["global_step"] == 5


@pytest.mark.slow
def test_wise_ft_interpolates_between_zero_shot_and_finetuned(finetuned, tiny_models, tmp_path):
    _, _, ckpt = finetuned
    px = torch.randn(3, 3, IMAGE, IMAGE)
    ft, _ = load_model(ckpt)
    zs, _ = load_pretrained(str(tiny_models["clip"][0]))
    outs = {}
    for alpha in (0.0, 0.5, 1.0):
        assert main(["wise-ft", "--finetuned", str(ckpt), "--alpha", str(alpha), "--out", str(tmp_path / f"{alpha}.ckpt")]) == 0
        m, meta = load_model(tmp_path / f"{alpha}.ckpt")
        assert meta["wise_ft"]["alpha"] == alpha
        with torch.no_grad():
            outs[alpha] = (m.embed_frames(px, "clip"), m.embed_text(TEXTS, "clip"), m.scales["clip"]())
    with torch.no_grad():
        ref0 = (zs.embed_frames(px, "clip"), zs.embed_text(TEXTS, "clip"), zs.scales["clip"]())
        ref1 = (ft.embed_frames(px, "clip"), ft.embed_text(TEXTS, "clip"), ft.scales["clip"]())
    for got, want in ((outs[0.0], ref0), (outs[1.0], ref1)):
        for a, b in zip(got, want):
            assert (a - b).abs().max() < 1e-6
    assert (outs[0.5][0] - ref0[0]).abs().max() > 1e-4 and (outs[0.5][0] - ref1[0]).abs().max() > 1e-4
    with pytest.raises(HVLInputError, match="alpha"):
        from hvl.core.models.wiseft import wise_ft

        wise_ft(ckpt, 1.5, tmp_path / "x.ckpt")


@pytest.mark.slow
def test_clinical_review_takes_a_pretrained_model_and_agrees_with_zeroshot(demos, tiny_models, tmp_path,
                                                                            monkeypatch):
    from hvl.domains.surgical import clinical

    clip = str(tiny_models["clip"][0])
    monkeypatch.chdir(demos)
    assert main(["zeroshot", "--config", str(ROOT / "recipes/surgical/demo_zeroshot.yaml"), "--model", clip,
                 "--json", str(tmp_path / "zs.json"), "--no-mlflow", "--no-progress"]) == 0
    zs = json.loads((tmp_path / "zs.json").read_text())
    res = clinical.evaluate_clinical(clip, "data/demo_surgical/test.jsonl", "surgical:demo", mlflow=False,
                                     out_dir=tmp_path / "report", n_boot=50, gallery_size=2)
    got = res["a"]["zeroshot"]
    assert {k: got[k] for k in ("accuracy", "f1_macro", "jaccard")} == {k: zs[k] for k in ("accuracy", "f1_macro",
                                                                                            "jaccard")}
    assert (tmp_path / "report" / "report.html").is_file()


# ------------------------------------------------------------------ frozen-backbone feature cache
def _cache_fit(demos, clip, out, cache_dir, extra=()):
    cfg = _recipe("gameplay/gamephysics_clip.yaml", out, demos, {"backbone.path": clip, "backbone.image_unlocked": 0},
                  {"train": "data/demo_surgical/train.jsonl", "val": "data/demo_surgical/train.jsonl"},
                  {"clip": {"frames": 2, "batch_size": 4, "every": 1}, "video": {"frames": 3, "batch_size": 2,
                                                                                  "every": 1}})
    args = ["fit", "--config", str(cfg), "--trainer.max_steps", "1", "--trainer.limit_val_batches", "0",
            "--data.init_args.augment", "false", *extra]
    if cache_dir:
        args += ["--data.init_args.feature_cache", str(cache_dir)]
    return main(args)


def test_feature_cache_gives_the_loss_of_decoding_and_follows_the_preprocessing(demos, tiny_models, tmp_path,
                                                                                monkeypatch):
    from hvl.core.data.datamodule import HVLDataModule
    from hvl.core.models.module import HierarchicalVLM

    clip = str(tiny_models["clip"][0])
    torch.manual_seed(0)
    model = HierarchicalVLM(backbone={"path": clip, "image_unlocked": 0, "text_unlocked": 0}, levels=["clip", "video"])
    fp, _ = model.frozen_frame_encoder()
    sched = {"clip": {"frames": 2, "batch_size": 4, "every": 1}, "video": {"frames": 3, "batch_size": 2, "every": 1}}
    train = str(demos / "data/demo_surgical/train.jsonl")

    class FakeTrainer:  # what setup() reads of a trainer: the model, rank and world size, the device
        lightning_module, global_rank, world_size, loggers = model, 0, 1, []
        strategy = type("S", (), {"root_device": torch.device("cpu")})()

    def batch(cache_dir):
        dm = HVLDataModule(train=train, schedule=sched, augment=False, num_workers=0, feature_cache=cache_dir,
                           on_bad_video="ignore")
        dm.trainer = FakeTrainer()
        dm.setup("fit")
        ds, items = dm.train_split
        return {lv: __import__("hvl.core.data.datamodule", fromlist=["collate"]).collate(
            [ds[(it, 0)] for it in items[lv][:sched[lv]["batch_size"]]])[lv] for lv in ("clip", "video")}, ds

    decoded, _ = batch(None)
    cached, ds = batch(str(tmp_path / "cache"))
    assert ds.features is not None and cached["clip"]["frames"].ndim == 3  # [B, T, D] features, not pixels
    assert cached["clip"]["frames"].shape[-1] == model.embed_dim
    model.eval()
    with torch.no_grad():
        for lv in ("clip", "video"):
            a, b = model.level_loss(lv, decoded[lv]), model.level_loss(lv, cached[lv])
            assert abs(a.item() - b.item()) < 2e-3, (lv, a.item(), b.item())  # float16 storage of features
    key_dir = ds.features.dir
    assert json.loads((key_dir / "key.json").read_text())["encoder"] == fp
    # other preprocessing -> another cache folder, built from scratch
    other = Preprocess.model_validate(model.preprocess.model_dump() | {"mean": (0.5, 0.5, 0.5)})
    model.backbone.preprocess = other
    _, ds2 = batch(str(tmp_path / "cache"))
    assert ds2.features.dir != key_dir and len(list(ds2.features.dir.glob("*.idx.npy"))) == len(
        list(key_dir.glob("*.idx.npy"))) > 0


@pytest.mark.slow
def test_feature_cache_is_refused_when_the_frame_encoder_trains_or_frames_are_augmented(demos, tiny_models,
                                                                                        tmp_path, monkeypatch):
    clip = str(tiny_models["clip"][0])
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert _cache_fit(demos, clip, tmp_path, tmp_path / "c", ["--model.init_args.backbone.image_unlocked", "1"]) == 2
    assert _cache_fit(demos, clip, tmp_path, tmp_path / "c", ["--data.init_args.augment", "true"]) == 2
    assert _cache_fit(demos, clip, tmp_path, tmp_path / "c") == 0
    assert list((tmp_path / "c").glob("*/key.json"))
