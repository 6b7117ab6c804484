"""`hvl adapt`: heads on frozen embeddings, evaluated exactly as `hvl zeroshot` (zero training steps reproduce it
exactly), saved and reused by `hvl zeroshot --head`, refused with a clear error where they do not fit; and learning
tests with stated margins on the realistic preset (look-alike phases)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

# every test here needs the trained demo (marked slow by tests/conftest.py) or learns: test_tiny_model.py is the
# fast cover of the same paths
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
KEYS = ("accuracy", "f1_macro", "jaccard")
SAME = KEYS + ("pooled", "per_video", "n_videos", "n_frames", "classes", "level", "fps")


def _cli(work: Path, monkeypatch, *args: str) -> tuple[int, dict | None]:
    from hvl.core.cli import main

    monkeypatch.chdir(work)
    out = work / f"{abs(hash(args))}.json"
    rc = main([*args, "--json", str(out), "--no-mlflow", "--no-progress"])
    return rc, json.loads(out.read_text()) if rc == 0 else None


def _adapt(work, ckpt, monkeypatch, *extra):
    """The spelling of the issue: a shipped recipe name, the demo's training manifest."""
    return _cli(work, monkeypatch, "adapt", "--config", "surgical/demo_zeroshot", "--ckpt", str(ckpt), "--train",
                "data/demo_surgical/train.jsonl", "--cache", str(work / "feature_cache"), *extra)


# ------------------------------------------------------------------ exactness, files, refusals (README demo)
def test_zero_steps_is_zeroshot_exactly_and_the_head_is_saved(trained_demo, monkeypatch):
    from hvl.core.evaluation.adapt import load_head

    work, ckpt, zeroshot = trained_demo
    rc, out = _adapt(work, ckpt, monkeypatch, "--method", "linear", "--steps", "0", "--head-out", "heads/zero.pt")
    assert rc == 0
    for k in SAME:
        assert out[k] == zeroshot[k], k
    head = load_head(work / "heads" / "zero.pt")
    assert out["head"]["file"] == "heads/zero.pt" and out["head"]["protocol"] == "all"
    assert head.method == "linear" and head.classes == zeroshot["classes"] and head.level == "phase"
    assert out["head"]["n_videos"] == 16 and out["head"]["fit"]["steps"] == 0


def test_a_trained_head_is_reused_by_zeroshot_with_the_same_numbers(trained_demo, monkeypatch, tmp_path):
    from hvl.core.search.serve.review import load_review

    work, ckpt, zeroshot = trained_demo
    rc, adapted = _adapt(work, ckpt, monkeypatch, "--method", "linear", "--shots", "4", "--seed", "1",
                         "--head-out", str(tmp_path / "h.pt"), "--predictions", str(tmp_path / "pred"))
    assert rc == 0
    assert adapted["head"]["protocol"] == "shots" and adapted["head"]["n_frames"] == 4 * 7
    assert adapted["head"]["fit"]["loss_last"] < adapted["head"]["fit"]["loss_first"]
    rc, reused = _cli(work, monkeypatch, "zeroshot", "--config", "surgical/demo_zeroshot", "--ckpt", str(ckpt),
                      "--head", str(tmp_path / "h.pt"))
    assert rc == 0
    for k in SAME:
        assert reused[k] == adapted[k], k
    assert reused["head"]["shots"] == 4 and reused["head"]["seed"] == 1
    review = load_review(tmp_path / "pred")  # the review page (hvl serve --zeroshot) reads adapted predictions
    assert review.manifest.classes == zeroshot["classes"] and len(review.videos) == zeroshot["n_videos"]


def test_heads_that_do_not_fit_are_refused_with_the_file_and_the_fix(trained_demo, monkeypatch, tmp_path, capsys):
    from hvl.core.cli import main
    from hvl.core.errors import HVLInputError
    from hvl.core.evaluation.adapt import build_head, load_head, save_head, space_fingerprint
    from hvl.core.models.checkpoint import load_model
    from hvl.core.models.module import HierarchicalVLM

    work, ckpt, zeroshot = trained_demo
    model, _ = load_model(ckpt)
    names = zeroshot["classes"]
    head = build_head("linear", torch.randn(7, model.embed_dim), names, "phase", None, 1.0)
    path = save_head(head, tmp_path / "h.pt", space_fingerprint(model, "phase"))
    monkeypatch.chdir(work)
    base = ["zeroshot", "--config", "surgical/demo_zeroshot", "--ckpt", str(ckpt), "--head", str(path), "--no-mlflow"]
    # another prompt set's classes
    assert main([*base, "--prompts", "surgical:demo_hysterectomy"]) == 2
    err = capsys.readouterr().err
    assert str(path) in err and "trained for the classes" in err and "Dividing Ligament" in err and "--prompts" in err
    # the same classes in another order are other classes to a head
    reordered = tmp_path / "reordered.yaml"
    reordered.write_text("templates: ['a frame of {}']\nclasses:\n" + "".join(f"  - {{name: {n}}}\n"
                                                                               for n in reversed(names)))
    assert main([*base, "--prompts", str(reordered)]) == 2
    assert "in the order" in capsys.readouterr().err
    # another level or window than the head's
    assert main([*base, "--level", "clip"]) == 2
    assert "scores the 'phase' space" in capsys.readouterr().err
    assert main([*base, "--window", "4"]) == 2
    assert "trained on single frames" in capsys.readouterr().err
    # another model's embeddings
    other = HierarchicalVLM(**{k: v for k, v in model.hparams.items() if not k.startswith("_")})
    with pytest.raises(HVLInputError, match="another model"):
        load_head(path).check_model(other)
    # files that are not heads
    torch.save({"state_dict": {}}, tmp_path / "other.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a torch file")
    torch.save({"format": "hvl-adapt-head", "version": 1, "method": "linear", "payload": Path("x")},
               tmp_path / "pickled.pt")  # an object weights_only loading refuses
    for bad, says in (("other.pt", "not an hvl head"), ("junk.pt", "not a loadable head"),
                      ("pickled.pt", "not a loadable head"), ("missing.pt", "not found")):
        with pytest.raises(HVLInputError, match=says) as e:
            load_head(tmp_path / bad)
        assert str(tmp_path / bad) in str(e.value)


def test_adapt_refuses_bad_protocols_and_test_videos_in_training(trained_demo, monkeypatch, capsys):
    work, ckpt, _ = trained_demo
    for extra, says in ((["--method", "temporal", "--shots", "4"], "use --fraction"),
                        (["--fraction", "1.5"], "--fraction must be in (0, 1]"),
                        (["--shots", "0"], "--shots must be a whole number >= 1"),
                        (["--method", "linear", "--causal"], "--causal is an option of the temporal head")):
        rc, _ = _adapt(work, ckpt, monkeypatch, *extra, "--steps", "0")
        assert rc == 2, extra
        assert says in capsys.readouterr().err, extra
    rc, _ = _cli(work, monkeypatch, "adapt", "--config", "surgical/demo_zeroshot", "--ckpt", str(ckpt), "--train",
                 "data/demo_surgical/test.jsonl")
    assert rc == 2 and "also test videos" in capsys.readouterr().err
    rc, _ = _cli(work, monkeypatch, "adapt", "--config", "surgical/demo_zeroshot", "--ckpt", str(ckpt))
    assert rc == 2 and "needs labelled training videos: --train" in capsys.readouterr().err


def test_gameplay_bug_types_adapt_like_surgical_phases(trained_demo, monkeypatch, tmp_path):
    """Any classification domain: gameplay clips labelled with bug types (8 to train on, 4 to test), its prompt file,
    any frozen model (here the surgical demo's): zero steps are zero-shot, a trained head is reused."""
    from hvl.core.data.schema import load_manifest, write_manifest
    from hvl.domains.gameplay.demo import generate

    _, ckpt, _ = trained_demo
    generate(tmp_path / "game", seed=0, n_train=2, n_val=0, n_test=12, size=32, progress=False)
    clips = load_manifest(tmp_path / "game" / "test.jsonl").videos  # only the demo's test clips carry bug labels
    write_manifest(tmp_path / "game" / "adapt_train.jsonl", clips[:8])
    write_manifest(tmp_path / "game" / "adapt_test.jsonl", clips[8:])
    cfg = tmp_path / "game.yaml"
    cfg.write_text("domain: gameplay\ndataset: {reader: manifest, path: game/adapt_test.jsonl}\n"
                   "prompts: gameplay:bug_types\nlevel: clip\nfps: 2.0\nnum_workers: 0\n")
    common = ["--config", str(cfg), "--ckpt", str(ckpt)]
    rc, zero = _cli(tmp_path, monkeypatch, "zeroshot", *common)
    assert rc == 0 and zero["classes"][-1] == "no_bug"
    adapt = ["adapt", *common, "--train", "game/adapt_train.jsonl", "--no-cache"]
    rc, untrained = _cli(tmp_path, monkeypatch, *adapt, "--steps", "0", "--head-out", "h0.pt")
    assert rc == 0 and all(untrained[k] == zero[k] for k in SAME)
    rc, trained = _cli(tmp_path, monkeypatch, *adapt, "--steps", "50", "--head-out", "h.pt")
    assert rc == 0 and trained["head"]["n_videos"] == 8
    rc, reused = _cli(tmp_path, monkeypatch, "zeroshot", *common, "--head", "h.pt")
    assert rc == 0 and all(reused[k] == trained[k] for k in SAME)


def test_temporal_head_starts_as_zeroshot_and_its_causal_form_ignores_the_future(trained_demo, monkeypatch):
    from hvl.core.data.records import manifest_videos
    from hvl.core.data.schema import load_prompt_file
    from hvl.core.evaluation.adapt import build_head
    from hvl.core.evaluation.zeroshot import class_embeddings, predict
    from hvl.core.models.checkpoint import load_model
    from hvl.core.registry import resolve_prompt_file

    work, ckpt, _ = trained_demo
    model, _ = load_model(ckpt)
    prompts = load_prompt_file(resolve_prompt_file("surgical:demo"))
    videos = manifest_videos(work / "data" / "demo_surgical" / "test.jsonl")[:2]
    w = class_embeddings(model, prompts, "phase")
    kw = {"image_size": 64, "num_workers": 0, "progress": False}
    p0, _, pr0 = predict(model, videos, prompts, "phase", **kw)
    torch.manual_seed(0)
    head = build_head("temporal", w, prompts.names, "phase", None, 1.0, layers=4, channels=16)
    p1, _, pr1 = predict(model, videos, prompts, "phase", head=head, **kw)
    for a, b, pa, pb in zip(p0, p1, pr0, pr1):  # untrained: every stage's correction is exactly zero
        assert torch.equal(a, b) and torch.allclose(pa, pb, atol=1e-5)

    x = torch.randn(40, model.embed_dim)
    for causal in (True, False):
        torch.manual_seed(1)
        h = build_head("temporal", w, prompts.names, "phase", None, 1.0, layers=4, channels=16, causal=causal)
        for p in h.parameters():  # a head as after training: every weight non-zero
            p.data.normal_(0, 0.1)
        h.eval()
        future = x.clone()
        future[25:] = torch.randn(15, model.embed_dim)
        with torch.no_grad():
            same_past = torch.equal(h.sequence_scores(x)[:25], h.sequence_scores(future)[:25])
        assert same_past == causal, causal


def test_shots_and_fractions_draw_what_they_say_by_seed():
    from hvl.core.errors import HVLInputError
    from hvl.core.evaluation.adapt import LabelledSequence, select_training

    g = torch.Generator().manual_seed(0)
    seqs = []
    for v in range(10):
        labels = torch.randint(0, 3, (30,), generator=g)
        labels[labels == 2] = 2 if v < 2 else 1  # class 2 only in the first two videos: 3 + few frames
        seqs.append(LabelledSequence(f"v{v}", torch.randn(40, 4, generator=g), torch.arange(5, 35), labels))
    n2 = int(sum((s.labels == 2).sum() for s in seqs))
    chosen, info = select_training(seqs, 3, shots=4, seed=0)
    y = torch.cat([s.labels for s in chosen])
    assert torch.bincount(y, minlength=3).tolist() == [4, 4, 4] and info["n_frames"] == 12
    for s in chosen:  # positions and labels stay paired: each drawn frame keeps its own label
        src = next(q for q in seqs if q.video_id == s.video_id)
        assert torch.equal(src.labels[(src.positions[:, None] == s.positions).nonzero()[:, 0]], s.labels)
    again, _ = select_training(seqs, 3, shots=4, seed=0)
    other, _ = select_training(seqs, 3, shots=4, seed=1)
    assert [s.positions.tolist() for s in again] == [s.positions.tolist() for s in chosen]
    assert [s.positions.tolist() for s in other] != [s.positions.tolist() for s in chosen]
    _, short = select_training(seqs, 3, shots=n2 + 5, seed=0)
    assert short["classes_short_of_shots"] == {"2": n2}
    tenth, info = select_training(seqs, 3, fraction=0.1, seed=3)
    assert len(tenth) == 1 and info["n_frames"] == 30
    assert len(select_training(seqs, 3, fraction=0.25, seed=0)[0]) == 2  # round(2.5) = 2 (banker's), at least 1
    with pytest.raises(HVLInputError, match="one of them"):
        select_training(seqs, 3, shots=1, fraction=0.5)


def test_training_features_are_cached_and_seeded_heads_reproduce(trained_demo, tmp_path):
    from hvl.core.data.records import manifest_videos
    from hvl.core.data.schema import load_prompt_file
    from hvl.core.evaluation.adapt import embed_sequences, train_head
    from hvl.core.evaluation.zeroshot import class_embeddings
    from hvl.core.models.checkpoint import load_model, preprocess_of
    from hvl.core.registry import resolve_prompt_file

    work, ckpt, _ = trained_demo
    model, meta = load_model(ckpt)
    pre = preprocess_of(meta)
    prompts = load_prompt_file(resolve_prompt_file("surgical:demo"))
    videos = manifest_videos(work / "data" / "demo_surgical" / "train.jsonl")[:3]
    kw = {"num_workers": 0, "progress": False}
    first = embed_sequences(model, videos, prompts, "phase", 1.0, None, pre, tmp_path / "cache", **kw)
    files = sorted((tmp_path / "cache").rglob("*.npy"))
    assert len(files) == 2 * len(videos)
    stamps = [f.stat().st_mtime_ns for f in files]
    second = embed_sequences(model, videos, prompts, "phase", 1.0, None, pre, tmp_path / "cache", **kw)
    assert [f.stat().st_mtime_ns for f in files] == stamps  # read, not recomputed
    fresh = embed_sequences(model, videos, prompts, "phase", 1.0, None, pre, None, **kw)
    for a, b, c in zip(first, second, fresh):
        assert torch.equal(a.emb, b.emb) and torch.allclose(a.emb, c.emb, atol=5e-3)  # float16 storage
    w = class_embeddings(model, prompts, "phase")
    heads = [train_head(m, w, first, prompts.names, "phase", None, 1.0, seed=3, steps=5, layers=3, channels=8)
             if m == "temporal" else train_head(m, w, first, prompts.names, "phase", None, 1.0, seed=3, steps=5)
             for m in ("linear", "linear", "temporal", "temporal")]
    for a, b in ((heads[0], heads[1]), (heads[2], heads[3])):
        assert all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))


def test_the_notebooks_ladder_of_a_users_checkpoint(trained_demo, tmp_path):
    """The clinical notebook's ladder cell: its zero-shot rung is hvl zeroshot's numbers, each rung a row, a plot."""
    from hvl.core.errors import HVLInputError
    from hvl.domains.surgical import clinical
    from IPython.display import Image, Markdown

    work, ckpt, zeroshot = trained_demo
    data = work / "data" / "demo_surgical"
    res = clinical.evaluate_ladder(ckpt, data / "train.jsonl", data / "test.jsonl", "surgical:demo", seeds=[0],
                                   windows=[4], shots=[2], fractions=[0.5, 1.0], probe_windows=[], n_boot=100,
                                   num_workers=0, out_dir=tmp_path, cache_dir=str(work / "feature_cache"),
                                   head_options={"temporal": {"steps": 10, "layers": 3, "channels": 8}})
    rungs = ["zero-shot", "zero-shot, 4 s window", "2 shots / class", "linear probe, 50% of videos",
             "linear probe, 100% of videos", "temporal head"]
    assert [r["rung"] for r in res["rows"]] == rungs * 2 and {r["level"] for r in res["rows"]} == {"clip", "phase"}
    zero = next(r for r in res["rows"] if r["level"] == "phase" and r["rung"] == "zero-shot")
    assert zero["accuracy"]["mean"] == pytest.approx(zeroshot["accuracy"], abs=1e-4)
    assert zero["vs_zeroshot"]["accuracy"] == {"delta": 0.0, "lo": 0.0, "hi": 0.0}
    assert Path(res["figure"]).stat().st_size > 5000 and Path(res["json"]).is_file()
    shown = clinical.ladder_section(res)
    assert len(shown[0]) == len(rungs) * 2 and isinstance(shown[1], Image)
    assert isinstance(clinical.ladder_section(None)[0], Markdown)
    with pytest.raises(HVLInputError, match="ladder seeds must be a non-empty list"):  # papermill -p passes strings
        clinical.evaluate_ladder(ckpt, data / "train.jsonl", data / "test.jsonl", "surgical:demo", seeds="[0]")


# ------------------------------------------------------------------ learning on the realistic preset
@pytest.fixture(scope="session")
def realistic(tmp_path_factory):
    """A model pretrained (the demo recipe, a small CNN at 32 px, 120 steps) on a small `--preset realistic` set
    (8 training, 4 test videos: look-alike phase pairs, sparse / off-topic / lagged narration), and every level's
    frame embeddings of its training and test videos, computed once."""
    from hvl.core.cli import main
    from hvl.core.data.records import manifest_videos
    from hvl.core.data.schema import load_prompt_file
    from hvl.core.evaluation.adapt import embed_sequences
    from hvl.core.evaluation.zeroshot import class_embeddings
    from hvl.core.models.checkpoint import load_model, preprocess_of
    from hvl.core.registry import resolve_prompt_file
    from hvl.domains.surgical import demo

    work = tmp_path_factory.mktemp("realistic")
    demo.generate(work / "data", seed=0, n_train=8, n_val=2, n_test=4, size=64, fps=4.0, progress=False,
                  preset="realistic")
    mp = pytest.MonkeyPatch()
    mp.chdir(work)
    small = {"clip": {"frames": 2, "batch_size": 8, "every": 1}, "phase": {"frames": 4, "batch_size": 4, "every": 3},
             "video": {"frames": 4, "batch_size": 2, "every": 5}}
    assert main(["fit", "--config", str(ROOT / "recipes" / "surgical" / "demo_pretrain.yaml"),
                 "--data.init_args.train", "data/train.jsonl", "--data.init_args.val", "data/val.jsonl",
                 "--data.init_args.schedule", json.dumps(small), "--data.init_args.image_size", "32",
                 "--data.init_args.num_workers", "0", "--data.init_args.steps_per_epoch", "120",
                 "--model.init_args.video_encoder", json.dumps({"frame_encoder": {"name": "small_cnn",
                                                                                  "widths": [8, 16, 32, 64]}}),
                 "--model.init_args.embed_dim", "32", "--trainer.max_epochs", "1", "--trainer.max_steps", "120",
                 "--trainer.limit_val_batches", "1", "--trainer.num_sanity_val_steps", "0",
                 "--trainer.logger", json.dumps({"class_path": "pytorch_lightning.loggers.CSVLogger",
                                                 "init_args": {"save_dir": "."}}),
                 "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false"]) == 0
    mp.undo()
    model, meta = load_model(work / "checkpoints" / "surgical_demo" / "last.ckpt")
    pre = preprocess_of(meta)
    prompts = load_prompt_file(resolve_prompt_file("surgical:demo"))
    out = {"names": prompts.names}
    for split in ("train", "test"):
        videos = manifest_videos(work / "data" / f"{split}.jsonl")
        for lv in ("clip", "phase"):
            out[split, lv] = embed_sequences(model, videos, prompts, lv, 1.0, None, pre, None, num_workers=0,
                                             progress=False)
    for lv in ("clip", "phase"):
        out["prompts", lv] = class_embeddings(model, prompts, lv)
    return out


def _score(head, seqs, names, only: list[str] | None = None) -> float:
    """Accuracy, mean over test videos (as hvl zeroshot), optionally on the frames of some classes only."""
    from hvl.core.evaluation.adapt import head_predictions

    keep = torch.tensor([names.index(n) for n in (only or names)])
    accs = []
    for s, p in zip(seqs, head_predictions(head, seqs)):
        m = torch.isin(s.labels, keep)
        if m.any():
            accs.append(float((p[m] == s.labels[m]).float().mean()))
    return float(np.mean(accs))


LOOKALIKE = ["CalotTriangleDissection", "GallbladderDissection", "GallbladderPackaging", "GallbladderRetraction"]


@pytest.mark.parametrize("level", ["clip", "phase"])
def test_learning_probe_beats_zeroshot_more_shots_help_temporal_beats_probe(realistic, level):
    """Stated margins, with what this seeded set measured (phase / clip space): a linear probe on all labels beats
    zero-shot by >= 0.04 accuracy (+0.087 / +0.114); averaged over 8 draws, 16 shots beat 1 shot (+0.020 / +0.048)
    and 4 shots stay within 0.05 of 1 shot (-0.028 / -0.021: on look-alike phases 4 frames a class can mislead
    before 16 help, docs/adapt.md); the temporal head beats the probe by >= 0.2 on the frames of the look-alike
    phases, where a single frame cannot tell the pair apart (+0.35 / +0.39), and overall."""
    from hvl.core.evaluation.adapt import train_head

    names, w = realistic["names"], realistic["prompts", level]
    train, test = realistic["train", level], realistic["test", level]

    def head(**kw):
        return train_head(kw.pop("method", "linear"), w, train, names, level, None, 1.0, **kw)

    zero = _score(head(steps=0), test, names)
    probe = head()
    shots = {k: np.mean([_score(head(shots=k, seed=s), test, names) for s in range(8)]) for k in (1, 4, 16)}
    temporal = head(method="temporal")
    got = {"zero": zero, "probe": _score(probe, test, names), "shots": shots,
           "temporal": _score(temporal, test, names), "probe_lookalike": _score(probe, test, names, LOOKALIKE),
           "temporal_lookalike": _score(temporal, test, names, LOOKALIKE)}
    print(level, got)
    assert got["probe"] >= zero + 0.04, got
    assert shots[16] > shots[1] and shots[4] >= shots[1] - 0.05, got
    assert got["temporal_lookalike"] >= got["probe_lookalike"] + 0.2, got
    assert got["temporal"] >= got["probe"], got
