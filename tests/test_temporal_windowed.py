"""``video_encoder.temporal: windowed``: stages whose attention window doubles, rotary positions, linear memory.

Checked against attention written out here (softmax of rotated queries and keys, a band mask), on the receptive
field a frame's output may depend on, and through a checkpoint trained at one length and evaluated at another.
"""
import math

import pytest
import torch
import torch.nn.functional as F
from hvl.core.models.encoders import VideoEncoder, WindowedTemporal
from torch import nn

D, HEADS = 16, 2


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny tensors: one thread is faster than two fighting for a shared, busy machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _random_weights(m: nn.Module, seed: int = 0) -> nn.Module:
    """Every parameter random (the output layer starts at zero, which would make every check trivial)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in m.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.3)
    return m


def _rotary(x: torch.Tensor) -> torch.Tensor:
    """RoFormer's rotation as complex numbers: channel pair (i, i + d/2) turns by ``pos · 10000^(-2i/d)``."""
    half = x.shape[-1] // 2
    z = torch.complex(x[..., :half].double(), x[..., half:].double())
    angle = torch.arange(x.shape[-2], dtype=torch.float64)[:, None] * 10000.0 ** (-torch.arange(half) / half)
    z = z * torch.polar(torch.ones_like(angle), angle)
    return torch.cat((z.real, z.imag), -1).float()


def reference(m: WindowedTemporal, x: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
    """The windowed encoder written out: per stage, pre-norm attention over frames at most ``window`` apart
    (and real), then the MLP; the output layer on top of a residual."""
    b, t, d = x.shape
    pos = torch.arange(t)
    h = x
    for layer in m.stages:
        y = F.layer_norm(h, (d,), layer.norm1.weight, layer.norm1.bias, layer.norm1.eps)
        q, k, v = (z.reshape(b, t, HEADS, d // HEADS).transpose(1, 2)
                   for z in (y @ layer.qkv.weight.T + layer.qkv.bias).chunk(3, -1))
        scores = _rotary(q) @ _rotary(k).transpose(-1, -2) / math.sqrt(d // HEADS)
        allowed = ((pos[:, None] - pos[None, :]).abs() <= layer.window)[None, None]
        if valid is not None:
            allowed = allowed & valid[:, None, None, :] | torch.eye(t, dtype=torch.bool)
        attn = scores.masked_fill(~allowed, float("-inf")).softmax(-1) @ v
        h = h + attn.transpose(1, 2).reshape(b, t, d) @ layer.proj.weight.T + layer.proj.bias
        y = F.layer_norm(h, (d,), layer.norm2.weight, layer.norm2.bias, layer.norm2.eps)
        h = h + layer.mlp(y)
    return x + F.layer_norm(h, (d,), m.norm.weight, m.norm.bias, m.norm.eps) @ m.out.weight.T + m.out.bias


def test_windowed_video_encoder_at_step_zero_is_the_mean_of_its_frames():
    enc = VideoEncoder(frame_encoder={"name": "small_cnn", "widths": [D]}, temporal="windowed", temporal_heads=HEADS)
    feats = torch.randn(3, 40, D)
    assert torch.equal(enc(feats), feats.mean(1))
    assert enc.temporal.receptive_field == 2 + 4 + 8 + 16 + 32
    with pytest.raises(ValueError, match="even-sized heads"):
        WindowedTemporal(D, heads=16)
    with pytest.raises(ValueError, match="temporal_windows"):
        WindowedTemporal(D, windows=[4, 0])


@pytest.mark.parametrize("windows", [[36, 40], [100]])
def test_a_window_reaching_the_whole_video_is_full_attention(windows):
    m = _random_weights(WindowedTemporal(D, windows, heads=HEADS))
    x = torch.randn(2, 37, D)
    torch.testing.assert_close(m(x), reference(m, x))
    full = reference(m, x)
    valid = torch.ones(2, 37, dtype=torch.bool)
    valid[1, 25:] = False  # the second video is 25 frames long, padded
    got, want = m(x, valid), reference(m, x, valid)
    torch.testing.assert_close(got[valid], want[valid])
    assert not torch.allclose(got[1, :25], full[1, :25])  # the padding really was left out


def test_blocked_windows_equal_a_banded_attention_and_ignore_padding():
    # 150 frames: queries in blocks of 64 (and of 70 for the widest window), keys reaching across block edges
    m = _random_weights(WindowedTemporal(D, [2, 5, 70], heads=HEADS), seed=1)
    x = torch.randn(2, 150, D)
    torch.testing.assert_close(m(x), reference(m, x))
    valid = torch.ones(2, 150, dtype=torch.bool)
    valid[0, 97:] = False
    torch.testing.assert_close(m(x, valid)[valid], reference(m, x, valid)[valid])
    # a padded video's real frames come out as the video alone does, whatever the padding holds
    alone = m(x[:1, :97])
    torch.testing.assert_close(m(x, valid)[0, :97], alone[0])
    x[0, 97:] = 1e3
    torch.testing.assert_close(m(x, valid)[0, :97], alone[0])


def test_a_frames_output_depends_only_on_frames_within_its_receptive_field():
    m = _random_weights(WindowedTemporal(D, [2, 4, 8], heads=HEADS), seed=2)
    reach = m.receptive_field
    assert reach == 14
    x = torch.randn(1, 200, D)
    base = m(x)
    kick = 3.0 * torch.randn(D)  # not a constant: layer norm would erase a shift shared by all channels
    for i in (10, 63, 64, 130, 185):  # inside blocks and at block edges
        for j in (i - reach - 1, i + reach + 1, 0, 199):
            if 0 <= j < 200 and abs(j - i) > reach:
                y = x.clone()
                y[0, j] += kick
                assert torch.equal(m(y)[0, i], base[0, i]), (i, j)
        for j in (i - reach, i + reach):
            if 0 <= j < 200:
                y = x.clone()
                y[0, j] += kick
                assert not torch.equal(m(y)[0, i], base[0, i]), (i, j)  # three hops of attention: small, not 0


def test_a_checkpoint_trained_on_64_frames_evaluates_on_1024(tmp_path):
    import pytorch_lightning as pl
    from hvl.core.models.checkpoint import AtomicCheckpointIO, load_model
    from hvl.core.models.module import HierarchicalVLM
    from torch.utils.data import DataLoader

    torch.manual_seed(0)
    video = {"frame_encoder": {"name": "small_cnn", "widths": [D]}, "temporal": "windowed",
             "temporal_windows": [2, 4, 8], "temporal_heads": HEADS}
    model = HierarchicalVLM(video_encoder=video, levels=["video"], embed_dim=8, warmup_steps=0)
    texts = ["a kitchen", "a garden", "a workshop", "a street"]
    batches = [{"video": {"frames": torch.randn(4, 64, D), "parent": texts, "children": [[t] for t in texts],
                          "child_mask": torch.ones(4, 1, dtype=torch.bool)}} for _ in range(4)]
    trainer = pl.Trainer(max_steps=4, accelerator="cpu", logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, plugins=[AtomicCheckpointIO()])
    trainer.fit(model, DataLoader(batches, batch_size=None))
    assert model.video.temporal.out.weight.abs().sum() > 0  # it trained: no longer the mean
    trainer.save_checkpoint(tmp_path / "w.ckpt")

    loaded, _ = load_model(tmp_path / "w.ckpt")
    assert isinstance(loaded.video.temporal, WindowedTemporal)
    long = torch.randn(2, 1024, D)
    model.eval()
    with torch.no_grad():
        got = loaded.embed_video(long, "video")
        torch.testing.assert_close(got, model.embed_video(long, "video"))
        assert not torch.allclose(got, loaded.video_heads["video"](long.mean(1)))
        # positions are relative: a frame deep inside 1,024 frames comes out as it does in a 64-frame crop
        # around it, the length the model was trained on
        frames = loaded.video.frame_features(long)
        crop = loaded.video.frame_features(long[:, 500 - 32:500 + 32])
        torch.testing.assert_close(frames[:, 500], crop[:, 32])
