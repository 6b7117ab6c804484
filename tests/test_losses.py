"""Loss values and gradients against hand-computed examples and transformers' SigLIP loss; temperature clamp."""
import math
from functools import partial

import pytest
import torch
import torch.nn.functional as F
from hvl.core.models.losses import (
    LogitBias,
    LogitScale,
    hierarchical_loss,
    infonce,
    masked_mean,
    milnce,
    sigmoid_milnce,
    sigmoid_pairs,
    text_keys,
)


def _by_hand_infonce(a, b, s):
    """Symmetric InfoNCE written as sums of exponentials, one row at a time."""
    n = a.shape[0]
    sim = (a @ b.T).tolist()
    total = 0.0
    for i in range(n):
        total += -math.log(math.exp(s * sim[i][i]) / sum(math.exp(s * sim[i][j]) for j in range(n)))
        total += -math.log(math.exp(s * sim[i][i]) / sum(math.exp(s * sim[j][i]) for j in range(n)))
    return total / (2 * n)


def test_infonce_two_pairs_matches_closed_form():
    # Orthogonal unit vectors: sim = identity, so each row is -log(e^s / (e^s + 1)).
    a = torch.eye(2, dtype=torch.float64)
    s = 10.0
    expected = -math.log(math.exp(s) / (math.exp(s) + 1))
    assert infonce(a, a.clone(), s).item() == pytest.approx(expected, rel=1e-6)


def test_infonce_and_gradient_against_hand_computation():
    torch.manual_seed(0)
    a = F.normalize(torch.randn(5, 8), dim=-1).requires_grad_()
    b = F.normalize(torch.randn(5, 8), dim=-1)
    loss = infonce(a, b, 7.0)
    assert loss.item() == pytest.approx(_by_hand_infonce(a.detach(), b, 7.0), rel=1e-5)
    loss.backward()
    # d/da_i of the a→b direction: s * (softmax_i · b - b_i) / (2n); b→a direction adds s * (p_ji b_j terms).
    s, n = 7.0, 5
    p_ab = (s * a.detach() @ b.T).softmax(1)
    p_ba = (s * b @ a.detach().T).softmax(1)
    grad = s * (p_ab @ b - b) / (2 * n) + s * (p_ba.T @ b - b) / (2 * n)
    torch.testing.assert_close(a.grad, grad, rtol=1e-5, atol=1e-6)


def test_infonce_is_low_for_matched_and_high_for_shuffled():
    torch.manual_seed(1)
    a = F.normalize(torch.randn(16, 32), dim=-1)
    assert infonce(a, a, 20.0) < 0.05 < infonce(a, a.roll(1, 0), 20.0)


def test_milnce_single_positive_equals_infonce():
    torch.manual_seed(2)
    v = F.normalize(torch.randn(6, 8), dim=-1)
    t = F.normalize(torch.randn(6, 1, 8), dim=-1)
    m = torch.ones(6, 1, dtype=torch.bool)
    torch.testing.assert_close(milnce(v, t, m, 5.0), infonce(v, t[:, 0], 5.0))


def test_milnce_by_hand_with_padding():
    torch.manual_seed(3)
    s = 4.0
    v = F.normalize(torch.randn(3, 4), dim=-1)
    t = F.normalize(torch.randn(3, 2, 4), dim=-1)
    mask = torch.tensor([[1, 1], [1, 0], [1, 1]], dtype=torch.bool)
    real = [(i, k) for i in range(3) for k in range(2) if mask[i, k]]
    e = lambda i, j, k: math.exp(s * float(v[i] @ t[j, k]))  # noqa: E731
    v2t = sum(-math.log(sum(e(i, i, k) for k in range(2) if mask[i, k]) / sum(e(i, j, k) for j, k in real))
              for i in range(3)) / 3
    t2v = sum(-math.log(e(j, j, k) / sum(e(i, j, k) for i in range(3))) for j, k in real) / len(real)
    assert milnce(v, t, mask, s).item() == pytest.approx(0.5 * (v2t + t2v), rel=1e-5)


def test_milnce_rewards_any_positive():
    """A video matching its *second* narration must score as well as one matching its first."""
    torch.manual_seed(4)
    v = F.normalize(torch.randn(8, 16), dim=-1)
    noise = F.normalize(torch.randn(8, 16), dim=-1)
    first = torch.stack([v, noise], 1)
    second = torch.stack([noise, v], 1)
    m = torch.ones(8, 2, dtype=torch.bool)
    torch.testing.assert_close(milnce(v, first, m, 10.0), milnce(v, second, m, 10.0))


def test_hierarchical_loss_is_mean_of_its_three_terms():
    torch.manual_seed(5)
    seg, par = (F.normalize(torch.randn(4, 8), dim=-1) for _ in range(2))
    kids = F.normalize(torch.randn(4, 3, 8), dim=-1)
    mask = torch.tensor([[1, 1, 1], [1, 0, 0], [1, 1, 0], [1, 1, 1]], dtype=torch.bool)
    child = masked_mean(kids, mask)
    # the padded child must not leak into the mean
    torch.testing.assert_close(child[1], kids[1, 0])
    expected = (infonce(seg, par, 3.0) + infonce(seg, child, 3.0) + infonce(par, child, 3.0)) / 3
    torch.testing.assert_close(hierarchical_loss(seg, par, kids, mask, 3.0), expected)
    weighted = hierarchical_loss(seg, par, kids, mask, 3.0, weights=(1.0, 0.0, 0.0))
    torch.testing.assert_close(weighted, infonce(seg, par, 3.0))


def test_logit_scale_is_clamped_and_learnable():
    ls = LogitScale(init_temperature=0.1, min_temperature=0.01, max_temperature=1.0)
    assert ls().item() == pytest.approx(10.0, rel=1e-5)
    with torch.no_grad():
        ls.log_scale.fill_(20.0)
    assert ls().item() == pytest.approx(100.0)
    with torch.no_grad():
        ls.log_scale.fill_(-5.0)
    assert ls().item() == pytest.approx(1.0)
    with torch.no_grad():
        ls.log_scale.fill_(math.log(10.0))
    ls().backward()
    assert ls.log_scale.grad.item() == pytest.approx(10.0, rel=1e-5)
    assert not LogitScale(learnable=False).log_scale.requires_grad


# ---------------------------------------------------------------- same-text positives
def _by_hand_keyed(a, b, s, keys):
    """Each direction: -log of the summed softmax probability of every column with the row's key."""
    n = a.shape[0]
    sim = (a @ b.T).tolist()
    total = 0.0
    for i in range(n):
        pos = [j for j in range(n) if keys[j] == keys[i]]
        row = [math.exp(s * sim[i][j]) for j in range(n)]
        col = [math.exp(s * sim[j][i]) for j in range(n)]
        total += -math.log(sum(row[j] for j in pos) / sum(row))
        total += -math.log(sum(col[j] for j in pos) / sum(col))
    return total / (2 * n)


def test_keyed_infonce_counts_same_text_rows_as_positives():
    torch.manual_seed(0)
    a = F.normalize(torch.randn(5, 8), dim=-1)
    b = F.normalize(torch.randn(5, 8), dim=-1)
    b[3] = b[1]                                   # rows 1 and 3 carry the same text
    keys = text_keys(["x", "same", "y", "same", "z"])
    assert keys[1] == keys[3] and len(set(keys.tolist())) == 4
    assert infonce(a, b, 6.0, keys).item() == pytest.approx(_by_hand_keyed(a, b, 6.0, keys.tolist()), rel=1e-5)
    distinct = text_keys(["a", "b", "c", "d", "e"])
    torch.testing.assert_close(infonce(a, b, 6.0, distinct), infonce(a, b, 6.0))


def test_duplicates_no_longer_fight_each_other():
    # Two videos of one gloss and one of another, each embedded exactly on its text: plain InfoNCE cannot
    # go below log 2 on the twins (each is the other's negative); with keys the loss goes to zero.
    e = torch.eye(2)
    v = e[[0, 0, 1]]
    keys = text_keys(["FRIEND", "FRIEND", "CAR"])
    assert infonce(v, v.clone(), 50.0) > 0.4
    assert infonce(v, v.clone(), 50.0, keys) < 1e-6


def test_keyed_milnce():
    torch.manual_seed(1)
    v = F.normalize(torch.randn(3, 6), dim=-1)
    t = F.normalize(torch.randn(3, 2, 6), dim=-1)
    mask = torch.tensor([[True, True], [True, False], [True, True]])
    distinct = text_keys([f"t{i}" for i in range(6)]).view(3, 2)
    torch.testing.assert_close(milnce(v, t, mask, 5.0, distinct), milnce(v, t, mask, 5.0))
    # video 2's second text is video 0's first: by hand, v2t of video 0 gains video 2's column as a positive
    t[2, 1] = t[0, 0]
    keys = text_keys(["w", "x", "y", "pad", "z", "w"]).view(3, 2)
    s = 5.0
    logits = (s * v @ t.reshape(6, 6).T).masked_fill(~mask.reshape(1, 6), float("-inf"))
    pos_cols = {0: [0, 1, 5], 1: [2], 2: [4, 5, 0]}
    v2t = sum(float(logits[i].logsumexp(0) - logits[i, pos_cols[i]].logsumexp(0)) for i in range(3)) / 3
    tl = s * t.reshape(6, 6) @ v.T
    carriers = {0: [0, 2], 1: [0], 2: [1], 4: [2], 5: [2, 0]}   # text row -> videos holding its key
    t2v = sum(float(tl[r].logsumexp(0) - tl[r, c].logsumexp(0)) for r, c in carriers.items()) / 5
    assert milnce(v, t, mask, s, keys).item() == pytest.approx(0.5 * (v2t + t2v), rel=1e-5)


# ---------------------------------------------------------------- SigLIP's sigmoid loss
def test_sigmoid_loss_equals_transformers_siglip_loss():
    """The reference: SiglipModel(return_loss=True) on the same pixels and tokens, from its own embeddings."""
    from transformers import SiglipConfig, SiglipModel

    torch.manual_seed(0)
    text = dict(vocab_size=99, hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=4,
                max_position_embeddings=16)
    vision = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=4, image_size=16,
                  patch_size=8)
    model = SiglipModel(SiglipConfig(text_config=text, vision_config=vision)).eval()
    with torch.no_grad():
        model.logit_scale.fill_(1.7)
        model.logit_bias.fill_(-2.5)   # near the data, so positives and negatives both weigh in
        out = model(input_ids=torch.randint(0, 99, (6, 16)), pixel_values=torch.randn(6, 3, 16, 16),
                    return_loss=True)
    ours = sigmoid_pairs(out.image_embeds, out.text_embeds, model.logit_scale.exp(), bias=model.logit_bias)
    assert ours.item() == pytest.approx(out.loss.item(), rel=1e-6)
    # the loss is symmetric in its two sides, as SigLIP's sum over all pairs is
    torch.testing.assert_close(sigmoid_pairs(out.text_embeds, out.image_embeds, model.logit_scale.exp(),
                                             bias=model.logit_bias), ours)


def _by_hand_sigmoid(logit, positive):
    return math.log(1 + math.exp(-logit if positive else logit))


def test_keyed_sigmoid_pairs_and_sigmoid_milnce_by_hand():
    torch.manual_seed(2)
    s, b = 4.0, -1.5
    a, t = F.normalize(torch.randn(3, 5), dim=-1), F.normalize(torch.randn(3, 5), dim=-1)
    keys = text_keys(["x", "y", "x"])
    sim = (a @ t.T).tolist()
    want = sum(_by_hand_sigmoid(s * sim[i][j] + b, i == j or (i, j) in ((0, 2), (2, 0)))
               for i in range(3) for j in range(3)) / 3
    assert sigmoid_pairs(a, t, s, keys, bias=b).item() == pytest.approx(want, rel=1e-6)
    # several texts per video, padding excluded, video 2's second text is video 0's first (a shared key)
    texts = F.normalize(torch.randn(3, 2, 5), dim=-1)
    texts[2, 1] = texts[0, 0]
    mask = torch.tensor([[True, True], [True, False], [True, True]])
    tk = text_keys(["w", "v", "u", "pad", "z", "w"]).view(3, 2)
    flat = texts.reshape(6, 5)
    real = [c for c in range(6) if mask.view(-1)[c]]
    pos = {0: {0, 1, 5}, 1: {2}, 2: {4, 5, 0}}
    want = sum(_by_hand_sigmoid(s * float(a[i] @ flat[c]) + b, c in pos[i]) for i in range(3) for c in real) / 3
    assert sigmoid_milnce(a, texts, mask, s, tk, bias=b).item() == pytest.approx(want, rel=1e-6)
    # one text per video and no keys: the plain pair loss
    torch.testing.assert_close(sigmoid_milnce(a, t[:, None], torch.ones(3, 1, dtype=torch.bool), s, bias=b),
                               sigmoid_pairs(a, t, s, bias=b))
    # the hierarchical loss takes it as its pair loss: the mean of three sigmoid terms
    kids = F.normalize(torch.randn(3, 2, 5), dim=-1)
    pair = partial(sigmoid_pairs, bias=b)
    child = masked_mean(kids, mask)
    torch.testing.assert_close(hierarchical_loss(a, t, kids, mask, s, pair=pair),
                               (pair(a, t, s) + pair(a, child, s) + pair(t, child, s)) / 3)
    assert LogitBias()().item() == -10.0 and not LogitBias(learnable=False).bias.requires_grad


@pytest.mark.slow
def test_sigmoid_loss_learns_to_pair_two_views():
    """Two noisy linear views of the same 64 latent items: linear heads trained only with the sigmoid loss must
    retrieve each held-out item's partner at R@1 well above chance (1/64); untrained heads stay near chance."""
    g = torch.Generator().manual_seed(0)
    mix_a, mix_b = torch.randn(16, 24, generator=g), torch.randn(16, 24, generator=g)

    def views(n):
        z = torch.randn(n, 16, generator=g)
        return z @ mix_a + 0.3 * torch.randn(n, 24, generator=g), z @ mix_b + 0.3 * torch.randn(n, 24, generator=g)

    torch.manual_seed(0)
    ha, hb = torch.nn.Linear(24, 16), torch.nn.Linear(24, 16)
    scale, bias = LogitScale(0.1), LogitBias(-10.0)
    test_a, test_b = views(64)

    def r_at_1():
        with torch.no_grad():
            sim = F.normalize(ha(test_a), dim=-1) @ F.normalize(hb(test_b), dim=-1).T
        return (sim.argmax(1) == torch.arange(64)).float().mean().item()

    before = r_at_1()
    opt = torch.optim.Adam([*ha.parameters(), *hb.parameters(), *scale.parameters(), *bias.parameters()], lr=1e-2)
    for _ in range(300):
        xa, xb = views(32)
        loss = sigmoid_pairs(F.normalize(ha(xa), dim=-1), F.normalize(hb(xb), dim=-1), scale(), bias=bias())
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = r_at_1()
    print(f"sigmoid loss R@1 before {before:.3f} after {after:.3f} (chance {1 / 64:.3f})")
    assert before < 0.15 and after > 0.5, (before, after)   # chance 0.016: the claim is > 30x chance
    assert abs(bias().item() + 10.0) > 0.1   # the bias moved: it is learnt
