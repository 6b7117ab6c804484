"""Fine-grained frame × word similarity: a plain-loop reference, padding invariance, gradients, DDP equality."""
import math
import os

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F
from helpers import ddp_averaged, free_port
from hvl.core.models.finegrained import FineGrainedConfig, finegrained_infonce, finegrained_similarity, pad_tokens
from hvl.core.models.losses import text_keys


def _reference(video, vmask, text, tmask, tau=0.07, a=0.5, b=0.5):
    """Scores written as the formulas read, one pair, one frame, one word at a time (real entries only)."""
    out = torch.zeros(video.shape[0], text.shape[0], dtype=torch.float64)
    for i in range(video.shape[0]):
        frames = [video[i, t].double() for t in range(video.shape[1]) if vmask[i, t]]
        for j in range(text.shape[0]):
            words = [text[j, k].double() for k in range(text.shape[1]) if tmask[j, k]]
            s = [[float(f @ w) for w in words] for f in frames]
            v2t = 0.0
            for row in s:
                z = sum(math.exp(x / tau) for x in row)
                v2t += sum(math.exp(x / tau) / z * x for x in row)
            t2v = 0.0
            for k in range(len(words)):
                col = [s[t][k] for t in range(len(frames))]
                z = sum(math.exp(x / tau) for x in col)
                t2v += sum(math.exp(x / tau) / z * x for x in col)
            out[i, j] = a * v2t / len(frames) + b * t2v / len(words)
    return out


def _data(a=3, t=5, b=4, l_=6, e=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    v = F.normalize(torch.randn(a, t, e, generator=g), dim=-1)
    w = F.normalize(torch.randn(b, l_, e, generator=g), dim=-1)
    vm = torch.ones(a, t, dtype=torch.bool)
    vm[0, 3:] = False
    vm[2, 1:] = False                       # a one-frame video
    tm = torch.ones(b, l_, dtype=torch.bool)
    tm[1, 2:] = False
    tm[3, 4:] = False
    return v, vm, w, tm


@pytest.mark.parametrize("weights", [(0.5, 0.5), (1.0, 0.0), (0.2, 0.8)])
def test_matches_plain_loop(weights):
    v, vm, w, tm = _data()
    cfg = FineGrainedConfig(v2t_weight=weights[0], t2v_weight=weights[1])
    got = finegrained_similarity(v, vm, w, tm, cfg)
    torch.testing.assert_close(got.double(), _reference(v, vm, w, tm, 0.07, *weights), rtol=1e-5, atol=1e-6)


def test_chunking_gives_the_same_scores():
    v, vm, w, tm = _data(a=7, b=5)
    full = finegrained_similarity(v, vm, w, tm, FineGrainedConfig())
    tiny = finegrained_similarity(v, vm, w, tm, FineGrainedConfig(max_elements=1))          # one pair per block
    mid = finegrained_similarity(v, vm, w, tm, FineGrainedConfig(max_elements=2 * 5 * 6 * 3))
    torch.testing.assert_close(tiny, full)
    torch.testing.assert_close(mid, full)


def test_padding_values_cannot_change_the_score():
    v, vm, w, tm = _data()
    base = finegrained_similarity(v, vm, w, tm)
    g = torch.Generator().manual_seed(5)
    v2, w2 = v.clone(), w.clone()
    v2[~vm] = 50 * torch.randn(int((~vm).sum()), v.shape[-1], generator=g)   # huge garbage in padded frames
    w2[~tm] = 50 * torch.randn(int((~tm).sum()), w.shape[-1], generator=g)
    torch.testing.assert_close(finegrained_similarity(v2, vm, w2, tm), base)
    # and more padding columns change nothing either
    w3, tm3 = pad_tokens(w, tm, 10)
    torch.testing.assert_close(finegrained_similarity(v, vm, w3, tm3), base)


def test_masking_inside_the_softmax_matters():
    """Only-in-the-mean masking (CiCo's released code) would let a zero padding token take attention mass."""
    v, vm, w, tm = _data()
    ours = finegrained_similarity(v, vm, w, tm)
    leaky = finegrained_similarity(v, vm, w.masked_fill(~tm[..., None], 0.0), torch.ones_like(tm))
    assert not torch.allclose(ours[:, 1], leaky[:, 1])


def test_global_term_is_added():
    v, vm, w, tm = _data()
    vg, tg = F.normalize(v.mean(1), dim=-1), F.normalize(w.mean(1), dim=-1)
    s = finegrained_similarity(v, vm, w, tm, FineGrainedConfig(global_weight=0.3), vg, tg)
    torch.testing.assert_close(s, finegrained_similarity(v, vm, w, tm) + 0.3 * vg @ tg.T)
    with pytest.raises(ValueError, match="global_weight"):
        finegrained_similarity(v, vm, w, tm, FineGrainedConfig(global_weight=0.3))


def test_empty_rows_are_refused():
    v, vm, w, tm = _data()
    tm[0] = False
    with pytest.raises(ValueError, match="≥ 1 valid word"):
        finegrained_similarity(v, vm, w, tm)


def test_gradients_flow_to_real_entries_only():
    v, vm, w, tm = _data()
    v.requires_grad_(), w.requires_grad_()
    loss = finegrained_infonce(v[:3], vm[:3], w[:3], tm[:3], 10.0)
    loss.backward()
    assert torch.isfinite(loss) and loss > 0
    assert v.grad[vm].abs().sum() > 0 and w.grad[:3][tm[:3]].abs().sum() > 0
    assert v.grad[~vm].abs().sum() == 0 and w.grad[:3][~tm[:3]].abs().sum() == 0


def test_loss_prefers_matched_pairs():
    v, vm, _, _ = _data(a=4, b=4, t=4, l_=4)
    tm = torch.ones(4, 4, dtype=torch.bool)
    matched = finegrained_infonce(v, vm, v.clone(), torch.ones(4, 4, dtype=torch.bool), 20.0)
    shuffled = finegrained_infonce(v, vm, v.clone()[[1, 2, 3, 0]], tm, 20.0)
    assert matched < shuffled


def test_keys_make_duplicate_texts_positives():
    v, vm, w, tm = _data(a=4, b=4, t=4, l_=4)
    distinct = text_keys(["p", "q", "r", "s"])
    torch.testing.assert_close(finegrained_infonce(v, vm, w, tm, 10.0, keys=distinct),
                               finegrained_infonce(v, vm, w, tm, 10.0))
    w[2], tm[2] = w[0], tm[0]                     # texts 0 and 2 are the same sentence
    keys = text_keys(["p", "q", "p", "s"])
    cfg = FineGrainedConfig()
    s = 10.0 * finegrained_similarity(v, vm, w, tm, cfg)
    pos = torch.tensor([[1, 0, 1, 0], [0, 1, 0, 0], [1, 0, 1, 0], [0, 0, 0, 1]], dtype=torch.bool)
    by_hand = 0.5 * ((s.logsumexp(1) - s.masked_fill(~pos, -torch.inf).logsumexp(1)).mean()
                     + (s.T.logsumexp(1) - s.T.masked_fill(~pos, -torch.inf).logsumexp(1)).mean())
    torch.testing.assert_close(finegrained_infonce(v, vm, w, tm, 10.0, cfg, keys=keys), by_hand)


# ------------------------------------------------------------------ DDP
B = 3


def _loss_inputs(wv, wt, rows):
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(2 * B, 4, 10, generator=g), torch.randn(2 * B, 5, 10, generator=g)
    tm = torch.ones(2 * B, 5, dtype=torch.bool)
    tm[1, 3:] = False
    tm[4, 2:] = False
    vm = torch.ones(2 * B, 4, dtype=torch.bool)
    vm[5, 2:] = False
    v, t = F.normalize(x[rows] @ wv, dim=-1), F.normalize(y[rows] @ wt, dim=-1)
    vg, tg = F.normalize(v.mean(1), dim=-1), F.normalize(t.mean(1), dim=-1)
    cfg = FineGrainedConfig(global_weight=0.5)
    keys = text_keys(["a", "b", "a", "c", "b", "d"])[rows]  # same text within a rank (0, 2) and across (1, 4)
    return finegrained_infonce(v, vm[rows], t, tm[rows], 8.0, cfg, vg, tg, keys)


def _params():
    g = torch.Generator().manual_seed(1)
    return torch.randn(10, 6, generator=g), torch.randn(10, 6, generator=g)


def _worker(rank, port, out):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    wv, wt = (p.clone().requires_grad_() for p in _params())
    out[rank] = ddp_averaged(_loss_inputs(wv, wt, slice(rank * B, (rank + 1) * B)), (wv, wt))
    dist.destroy_process_group()



@pytest.mark.distributed
def test_gathered_negatives_match_single_process():
    wv, wt = (p.clone().requires_grad_() for p in _params())
    loss = _loss_inputs(wv, wt, slice(0, 2 * B))
    loss.backward()
    out = mp.Manager().dict()
    mp.spawn(_worker, args=(free_port(), out), nprocs=2, join=True)
    for rank in (0, 1):
        for got, want in zip(out[rank], (loss.detach(), wv.grad, wt.grad)):
            torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6, msg=f"rank {rank}")


# ------------------------------------------------------------------ in the model
def test_model_level_trains_with_finegrained_scores():
    from hvl.core.models.module import HierarchicalVLM

    torch.manual_seed(0)
    m = HierarchicalVLM(video_encoder={"frame_encoder": {"widths": [8, 16]}}, embed_dim=16, levels=["video"],
                        finegrained={"video": {"max_words": 8}})
    texts = ["my friend wants a car", "I see a book", "the teacher buys an apple"]
    batch = {"frames": torch.randn(3, 4, 3, 32, 32), "parent": texts,
             "children": [["friend", "car"], ["see", ""], ["teacher", "apple"]],
             "child_mask": torch.tensor([[True, True], [True, False], [True, True]])}
    loss = m.level_loss("video", batch)
    loss.backward()
    assert torch.isfinite(loss)
    assert m.video.frames.net[0].weight.grad.abs().sum() > 0 and m.text_heads["video"].proj.weight.grad.abs().sum() > 0
    # frozen text: tokens come from the cache, padded to max_words, and agree with a fresh pass
    tok, mask = m.embed_tokens(texts, "video")
    assert tok.shape[:2] == (3, 8) and mask.sum(1).tolist() == [min(8, len(m.text.tokenizer(t)["input_ids"]))
                                                                 for t in texts]
    h, hm = m.text.tokens(texts[:1])
    torch.testing.assert_close(m.text.token_features(texts[:1])[0][0, :int(hm.sum())], h[0][hm[0]])
    with pytest.raises(ValueError, match="must be 'phase' or 'video'"):
        HierarchicalVLM(video_encoder={"frame_encoder": {"widths": [8]}}, levels=["clip"], finegrained={"clip": {}})
