"""Retrieval metrics against hand-computed cases: several videos per sentence, ties, MedR/MeanR."""
import pytest
import torch
from hvl.core.evaluation.retrieval import group_by_sentence, retrieval_metrics, retrieval_ranks


def test_group_by_sentence_keeps_first_seen_order_and_ignores_spacing():
    sents, idx = group_by_sentence(["b a", "c", "b  a ", "c", "d"])
    assert sents == ["b a", "c", "d"] and idx == [0, 1, 0, 1, 2]


def test_several_videos_per_sentence_hand_computed():
    # sentences s0 (videos v0, v1), s1 (v2), s2 (v3)
    vs = torch.tensor([0, 0, 1, 2])
    sim = torch.tensor([[0.1, 0.9, 0.5, 0.2],    # s0: best right video v1 (0.9) is first        -> rank 0
                        [0.8, 0.1, 0.7, 0.3],    # s1: v2 (0.7) behind v0 (0.8)                    -> rank 1
                        [0.9, 0.8, 0.7, 0.1]])   # s2: v3 (0.1) behind v0, v1, v2                  -> rank 3
    t2v, v2t = retrieval_ranks(sim, vs)
    assert t2v.tolist() == [0, 1, 3]
    # V2T per video (column): v0 right=s0 0.1 < 0.8, 0.9 -> 2; v1 0.9 top -> 0; v2 0.7 < 0.5? no: 0.7 ≥ .5, .7 -> tie
    # with s2 (0.7) -> pessimistic 1; v3 0.1 < 0.2, 0.3 -> 2
    assert v2t.tolist() == [2, 0, 1, 2]
    m = retrieval_metrics(sim, vs)
    assert m["t2v_r1"] == pytest.approx(100 / 3) and m["t2v_r5"] == 100.0
    assert m["t2v_medr"] == 2.0 and m["t2v_meanr"] == pytest.approx(1 + 4 / 3)
    assert m["v2t_r1"] == 25.0 and m["v2t_medr"] == 2.5 and m["v2t_meanr"] == pytest.approx(1 + 5 / 4)


def test_ties_are_pessimistic_and_counted_once():
    vs = torch.arange(4)
    sim = torch.zeros(4, 4)           # a constant model: every candidate ties
    m = retrieval_metrics(sim, vs)
    assert m["t2v_r1"] == 0.0 and m["v2t_r1"] == 0.0       # not 100 (optimistic) nor counted 4 times
    assert m["t2v_medr"] == 4.0 and m["v2t_meanr"] == 4.0  # every query is ranked behind all 3 wrong ones
    # a tie between two right videos is not a tie with a wrong one
    sim2 = torch.tensor([[0.5, 0.5, 0.1], [0.2, 0.3, 0.9]])
    t2v, v2t = retrieval_ranks(sim2, torch.tensor([0, 0, 1]))
    assert t2v.tolist() == [0, 0] and v2t.tolist() == [0, 0, 0]


def test_r_at_k_thresholds():
    n = 12
    vs = torch.arange(n)
    sim = torch.zeros(n, n)
    for q in range(n):   # query q has exactly q wrong videos strictly above its right one
        sim[q, q] = 0.5
        sim[q, [c for c in range(n) if c != q][:q]] = 1.0
    t2v, _ = retrieval_ranks(sim, vs)
    assert t2v.tolist() == list(range(n))
    m = retrieval_metrics(sim, vs)
    assert (m["t2v_r1"], m["t2v_r5"], m["t2v_r10"]) == pytest.approx((100 / 12, 500 / 12, 1000 / 12))
    assert m["t2v_medr"] == 6.5 and m["t2v_meanr"] == 6.5


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match="NaN"):
        retrieval_metrics(torch.tensor([[float("nan"), 0.0]]), torch.tensor([0, 0]))
    with pytest.raises(ValueError, match="at least one video"):
        retrieval_metrics(torch.zeros(2, 2), torch.tensor([0, 0]))
