"""``loss_weights.temporal``: LF-VILA's temporal contrastive loss between a long video's chunks and its sentences.

The loss against a reference written out here; positives by timestamps (not list order), ties and padding left
out; the model's hook and the video-level batch that carries sentences and frame times; and a learning test on
data where, inside a video, only order tells the parts apart.
"""
import math

import pytest
import torch
import torch.nn.functional as F
from hvl.core.models.losses import temporal_nce

TAU = 0.05


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny tensors: one thread is faster than two fighting for a shared, busy machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def reference(chunks, chunk_times, sentences, sentence_times, mask, tau, tol=1e-3):
    """Loops over sentences and chunks: each real sentence's positive is its video's chunk nearest in time (a tie
    drops the sentence); sentence → chunk over every chunk, chunk → sentence over the kept sentences."""
    b, c, _ = chunks.shape
    flat = chunks.reshape(b * c, -1)
    kept, target = [], []
    for v in range(b):
        for k in range(sentences.shape[1]):
            if not mask[v, k]:
                continue
            d = [abs(float(sentence_times[v, k]) - float(chunk_times[v, j])) for j in range(c)]
            if sum(x <= min(d) + tol for x in d) > 1:
                continue
            kept.append(sentences[v, k])
            target.append(v * c + d.index(min(d)))
    s2c = []
    for s, t in zip(kept, target):
        logits = [float(s @ flat[j]) / tau for j in range(b * c)]
        s2c.append(-(logits[t] - math.log(sum(math.exp(x) for x in logits))))
    c2s = []
    for t in sorted(set(target)):
        logits = [float(flat[t] @ s) / tau for s in kept]
        pos = sum(math.exp(x) for x, tt in zip(logits, target) if tt == t)
        c2s.append(-math.log(pos / sum(math.exp(x) for x in logits)))
    return 0.5 * (sum(s2c) / len(s2c) + sum(c2s) / len(c2s))


def _case(seed=0):
    g = torch.Generator().manual_seed(seed)
    chunks = F.normalize(torch.randn(3, 4, 8, generator=g), dim=-1)
    sentences = F.normalize(torch.randn(3, 5, 8, generator=g), dim=-1)
    chunk_times = torch.tensor([[4.0, 12.0, 20.0, 28.0], [1.0, 3.0, 5.0, 7.0], [10.0, 30.0, 50.0, 70.0]])
    sentence_times = torch.tensor([[27.0, 3.0, 13.5, 8.0, 22.0],    # out of order; 8.0 is a tie (4 vs 12)
                                   [6.9, 0.2, 2.5, 4.4, 100.0],     # 100 s: past the end, nearest the last chunk
                                   [31.0, 49.0, 11.0, 69.0, 40.0]])  # 40.0: a tie (30 vs 50)
    mask = torch.tensor([[True] * 5, [True, True, True, True, False], [True] * 5])
    return chunks, chunk_times, sentences, sentence_times, mask


def test_temporal_loss_equals_a_reference_computation():
    case = _case()
    got = temporal_nce(*case, TAU)
    assert got.item() == pytest.approx(reference(*case, TAU), rel=1e-5)
    for seed in (1, 2):
        case = _case(seed)
        assert temporal_nce(*case, 0.2).item() == pytest.approx(reference(*case, 0.2), rel=1e-5)


def test_positives_come_from_timestamps_and_ties_and_padding_are_left_out():
    chunks, ct, sentences, st, mask = _case()
    base = temporal_nce(chunks, ct, sentences, st, mask, TAU)
    perm = torch.tensor([3, 0, 4, 2, 1])  # the same sentences listed in another order: the same loss
    torch.testing.assert_close(temporal_nce(chunks, ct, sentences[:, perm], st[:, perm], mask[:, perm], TAU), base)
    other = sentences.clone()
    other[0, 3] = -other[0, 3]  # the tie at 8.0 s
    other[2, 4] = -other[2, 4]  # the tie at 40.0 s
    other[1, 4] = -other[1, 4]  # padding
    torch.testing.assert_close(temporal_nce(chunks, ct, other, st, mask, TAU), base)
    moved = st.clone()
    moved[0, 0] = 5.0  # the sentence at 27 s now sits by the first chunk: another positive, another loss
    assert not torch.allclose(temporal_nce(chunks, ct, sentences, moved, mask, TAU), base)
    # nothing left to align: zero, still part of the graph
    chunks.requires_grad_(True)
    none = temporal_nce(chunks, ct, sentences, st, torch.zeros_like(mask), TAU)
    none.backward()
    assert none.item() == 0.0 and torch.equal(chunks.grad, torch.zeros_like(chunks))


def _model(temporal: float, levels=("clip", "video"), windows=(4, 8, 16, 32), **kw):
    from hvl.core.models.module import HierarchicalVLM

    return HierarchicalVLM(video_encoder={"frame_encoder": {"name": "small_cnn", "widths": [16]}, "temporal": "windowed",
                                          "temporal_windows": list(windows), "temporal_heads": 2},
                           levels=list(levels), embed_dim=32, warmup_steps=0,
                           loss_weights={"clip": 1.0, "video": 1.0, "temporal": temporal}, **kw)


def test_model_adds_the_temporal_term_to_video_level_steps_only_when_asked():
    from hvl.core.errors import HVLInputError

    torch.manual_seed(0)
    texts = ["a kitchen", "a garden", "a workshop"]
    batch = {"frames": torch.randn(3, 16, 16), "parent": texts, "children": [[t] for t in texts],
             "child_mask": torch.ones(3, 1, dtype=torch.bool),
             "sentences": [["cut", "sew", ""], ["mix", "pour", "stir"], ["dig", "", ""]],
             "sentence_mask": torch.tensor([[1, 1, 0], [1, 1, 1], [1, 0, 0]], dtype=torch.bool),
             "sentence_spans": torch.tensor([[[0, 3], [9, 12], [0, 0]], [[1, 2], [5, 7], [12, 16]],
                                             [[7, 9], [0, 0], [0, 0]]], dtype=torch.float32),
             "frame_times": torch.arange(16.0).repeat(3, 1)}
    model = _model(0.5, temporal_loss={"temperature": 0.1, "chunk_frames": 4})
    model.log = lambda *a, **k: None
    assert model.hparams.temporal_loss == {"temperature": 0.1, "chunk_frames": 4}  # plain, as checkpoints store it
    feats = model.video.frame_features(batch["frames"])
    chunks = model.video_heads["clip"](feats.view(3, 4, 4, -1).mean(2))
    sentences = model.embed_text([t for r in batch["sentences"] for t in r], "clip").view(3, 3, -1)
    want_t = temporal_nce(chunks, torch.arange(16.0).view(4, 4).mean(1).repeat(3, 1), sentences,
                          batch["sentence_spans"].mean(-1), batch["sentence_mask"], 0.1)
    want_v = model.level_loss("video", batch)
    torch.testing.assert_close(model._step({"video": batch}, "train"), (want_v + 0.5 * want_t) / 1.5)
    off = _model(0.0)  # the default
    off.log = lambda *a, **k: None
    off.load_state_dict(model.state_dict())
    torch.testing.assert_close(off._step({"video": batch}, "train"), want_v)
    with pytest.raises(HVLInputError, match="needs both 'clip' and 'video'"):
        _model(1.0, levels=("video",))
    with pytest.raises(HVLInputError, match="model.temporal_loss: temperature"):
        _model(1.0, temporal_loss={"temperature": 0.0})


def test_whole_video_samples_carry_clip_sentences_and_their_frames_times(tmp_path):
    from helpers import decode_index, write_index_video
    from hvl.core.data.dataset import HierarchicalDataset, collate
    from hvl.core.data.levels import Item, LevelConfig
    from hvl.core.data.schema import ClipSegment, VideoRecord, load_manifest, write_manifest

    write_index_video(tmp_path / "v.mp4", n=50, fps=10.0)  # frame i shows i: 5 s
    clips = [ClipSegment(start=3.0, end=4.0, texts=["stir"]), ClipSegment(start=0.0, end=1.0, texts=["cut", "asr cut"]),
             ClipSegment(start=1.0, end=2.5, texts=["sew"])]
    recs = [VideoRecord(video_id="a", path="v.mp4", duration=5.0, texts=["soup"], clips=clips),
            VideoRecord(video_id="b", path="v.mp4", duration=5.0, texts=["bread"], clips=clips[:1])]
    ds = HierarchicalDataset(load_manifest(write_manifest(tmp_path / "m.jsonl", recs)),
                             {"video": LevelConfig(frames=5, batch_size=2)})
    a, b = ds[(Item("video", 0, 0), 0)], ds[(Item("video", 1, 0), 0)]
    shown = decode_index(a["frames"].permute(0, 2, 3, 1).numpy())  # what the frames themselves say they are
    assert a["frame_times"].tolist() == pytest.approx([i / 10.0 for i in shown]) and len(shown) == 5
    assert a["sentences"] == ["stir", "cut", "sew"]  # each clip's first text, in the manifest's order
    assert a["sentence_spans"].tolist() == [[3.0, 4.0], [0.0, 1.0], [1.0, 2.5]]
    batch = collate([a, b])["video"]
    assert batch["sentences"] == [["stir", "cut", "sew"], ["stir", "", ""]]
    assert batch["sentence_mask"].tolist() == [[True, True, True], [True, False, False]]
    assert batch["sentence_spans"].shape == (2, 3, 2) and batch["sentence_spans"][1, 1:].abs().sum() == 0
    assert batch["frame_times"].shape == (2, 5)


ORDINALS = ["first", "second", "third", "fourth"]
KINDS = ["a kitchen", "a garden", "a workshop", "a street", "a beach", "a forest", "an office", "a lab"]
FRAMES, QUARTER, DIM = 32, 8, 16


def _order_only_videos(n: int, g: torch.Generator):
    """``n`` videos of 32 frames at 1 fps: every frame shows the video's look (one of 8 kinds, which its abstract
    names) plus noise; frame 0 is a start card, the same in every video. The sentences "the first part" … "the
    fourth part" are the same in every video and sit at random times inside their quarter. Inside a video, the
    second, third and fourth quarters look alike: only how far they are from the start tells them apart."""
    kinds = torch.randint(0, len(KINDS), (n,), generator=g)
    looks = torch.randn(len(KINDS), DIM, generator=torch.Generator().manual_seed(99))
    x = looks[kinds][:, None, :] + 0.3 * torch.randn(n, FRAMES, DIM, generator=g)
    x[:, 0] = 0.0
    x[:, 0, 0] = 4.0
    centres = torch.arange(4.0)[None] * QUARTER + 1 + 6 * torch.rand(n, 4, generator=g)
    return x, kinds, centres


def _train(temporal: float, x, kinds, centres, steps: int = 250, batch: int = 16):
    torch.manual_seed(0)
    model = _model(temporal, temporal_loss={"temperature": TAU, "chunk_frames": QUARTER})
    model.log = lambda *a, **k: None
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=5e-3, weight_decay=0.0)
    order = torch.Generator().manual_seed(1)
    for _ in range(steps):
        idx = torch.randperm(len(x), generator=order)[:batch]
        abstracts = [f"a recording in {KINDS[k]}" for k in kinds[idx]]
        video = {"frames": x[idx], "parent": abstracts, "children": [[a] for a in abstracts],
                 "child_mask": torch.ones(batch, 1, dtype=torch.bool),
                 "sentences": [[f"the {o} part" for o in ORDINALS]] * batch,
                 "sentence_mask": torch.ones(batch, 4, dtype=torch.bool),
                 "sentence_spans": torch.stack([centres[idx] - 0.5, centres[idx] + 0.5], -1),
                 "frame_times": torch.arange(float(FRAMES)).repeat(batch, 1)}
        quarter = torch.randint(0, 4, (batch,), generator=order)  # the clip level: one quarter alone ↔ its sentence
        clip = {"frames": torch.stack([x[i, q * QUARTER:(q + 1) * QUARTER] for i, q in zip(idx.tolist(), quarter.tolist())]),
                "texts": [[f"the {ORDINALS[q]} part"] for q in quarter.tolist()],
                "text_mask": torch.ones(batch, 1, dtype=torch.bool)}
        loss = model._step({"clip": clip, "video": video}, "train")
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


def _pair_accuracy(model, x) -> dict[str, float]:
    """For each sentence, its own quarter against each other quarter of the same video: how often it scores its
    own higher. ``in_context``: quarters as chunks of the whole video's encoder pass; ``alone``: each quarter
    through the encoder by itself (how the clip level embeds a clip). ``middle``: only pairs among quarters 2-4."""
    n = len(x)
    with torch.no_grad():
        s = model.embed_text([f"the {o} part" for o in ORDINALS], "clip")
        in_context = model.video_heads["clip"](model.video.frame_features(x).view(n, 4, QUARTER, -1).mean(2))
        alone = model.embed_video(x.view(n * 4, QUARTER, DIM), "clip").view(n, 4, -1)
    out = {}
    for name, chunks in (("in_context", in_context), ("alone", alone)):
        score = torch.einsum("qe,vce->vqc", s, chunks)
        for part, quarters in (("all", range(4)), ("middle", range(1, 4))):
            pairs = [(k, j) for k in quarters for j in quarters if j != k]
            out[f"{name}_{part}"] = sum((score[:, k, k] > score[:, k, j]).float().mean().item() for k, j in pairs) / len(pairs)
    return out


MARGIN = 0.25  # the learning claim, on the pairs where only order tells the quarters apart


@pytest.mark.slow
def test_temporal_loss_learns_which_part_of_a_video_a_sentence_is_about():
    g = torch.Generator().manual_seed(0)
    train, test = _order_only_videos(64, g), _order_only_videos(64, g)
    without = _pair_accuracy(_train(0.0, *train), test[0])
    with_ = _pair_accuracy(_train(1.0, *train), test[0])
    best_without = max(without["in_context_middle"], without["alone_middle"])
    assert best_without <= 0.7, without  # no way to order look-alike quarters without it: about chance (0.5)
    assert with_["in_context_middle"] >= best_without + MARGIN, (with_, without)
    assert with_["in_context_all"] >= max(without["in_context_all"], without["alone_all"]) + 0.1, (with_, without)
