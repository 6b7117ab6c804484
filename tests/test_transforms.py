"""Training augmentation: random shifts move every frame of a clip alike, reproducibly; bad settings are refused."""
import pytest
import torch
from hvl.core.data.datamodule import HVLDataModule
from hvl.core.data.transforms import FrameTransform
from hvl.core.errors import HVLInputError


def _dot_clip(t=4, size=32, y=12, x=20):
    clip = torch.zeros(t, size, size, 3, dtype=torch.uint8)
    clip[:, y, x] = 255
    return clip


def _dot(frames: torch.Tensor) -> list[tuple[int, int]]:
    s = frames.shape[-1]
    return [divmod(int(f[0].argmax()), s) for f in frames]


def test_shift_moves_all_frames_of_a_clip_alike_and_is_seeded():
    tf = FrameTransform(32, train=True, flip_prob=0.0, intensity_prob=0.0, shift=3)
    offsets = set()
    for seed in range(12):
        tf.set_random_state(seed)
        out = tf(_dot_clip())
        assert out.shape == (4, 3, 32, 32)
        dots = _dot(out)
        assert len(set(dots)) == 1, dots                       # one draw per clip
        dy, dx = dots[0][0] - 12, dots[0][1] - 20
        assert max(abs(dy), abs(dx)) <= 3
        offsets.add((dy, dx))
        tf.set_random_state(seed)
        assert torch.equal(tf(_dot_clip()), out)               # same seed, same clip
    assert len(offsets) >= 4                                   # it really moves


def test_no_augmentation_at_eval_and_no_flip_when_turned_off():
    assert _dot(FrameTransform(32, train=False)(_dot_clip())) == [(12, 20)] * 4
    tf = FrameTransform(32, train=True, flip_prob=0.0, intensity_prob=0.0)
    for seed in range(5):
        tf.set_random_state(seed)
        assert _dot(tf(_dot_clip())) == [(12, 20)] * 4


@pytest.mark.parametrize("augment, field", [({"shift": -1}, "shift"), ({"flip": 0.5}, "flip"),
                                            ({"flip_prob": 2}, "flip_prob")])
def test_bad_augment_settings_name_the_field(augment, field):
    with pytest.raises(HVLInputError, match=rf"(?s)data.augment.*field '{field}'.*e\.g\. data\.augment"):
        HVLDataModule("unused.jsonl", augment=augment)


@pytest.mark.parametrize("train, shift, in_size", [(False, 0, 32), (False, 0, 48), (True, 0, 32), (True, 3, 32),
                                                   (True, 3, 45)])
def test_fused_pixels_equal_the_monai_steps_seed_by_seed(train, shift, in_size):
    """The two-pass pipeline against the MONAI transforms it replaces, applied one after the other."""
    kw = {"flip_prob": 0.5, "intensity_prob": 0.6, "shift": shift} if train else {}
    tf = FrameTransform(32, train=train, **kw)
    frames = torch.randint(0, 256, (4, in_size, in_size + 7 * (in_size != 32), 3), dtype=torch.uint8)
    flipped = scaled = 0
    for seed in range(40):
        tf.set_random_state(seed)
        ours = tf(frames)
        tf.set_random_state(seed)
        ref = tf.compose(frames.permute(3, 0, 1, 2).float()).permute(1, 0, 2, 3)  # the steps, one by one
        assert ours.shape == (4, 3, 32, 32) and ours.is_contiguous()
        torch.testing.assert_close(ours, torch.as_tensor(ref), atol=2e-5, rtol=1e-5)
        if train:
            flipped += bool(tf.compose.transforms[2]._do_transform)
            scaled += bool(tf.compose.transforms[3]._do_transform)
    if train:  # the draws really vary, so the comparison covered flipped, scaled and plain clips
        assert 5 <= flipped <= 35 and 5 <= scaled <= 35


def test_eight_bit_batches_normalise_on_the_device_to_the_float_frames():
    """Loader workers send 8-bit pixels and a per-channel affine map; applied per batch they give exactly the
    frames the float pipeline gives, augmentation draws included."""
    from hvl.core.data.datamodule import collate
    from hvl.core.data.transforms import normalize_batch

    tf = FrameTransform(32, train=True, flip_prob=0.5, intensity_prob=0.6, shift=3)
    frames = torch.randint(0, 256, (4, 32, 32, 3), dtype=torch.uint8)
    samples, ref = [], []
    for seed in range(12):
        tf.set_random_state(seed)
        pixels, affine = tf.split(frames)
        assert pixels.dtype == torch.uint8 and pixels.shape == (4, 3, 32, 32) and affine.shape == (3, 2)
        samples.append({"level": "clip", "frames": pixels, "affine": affine, "texts": ["a"]})
        tf.set_random_state(seed)
        ref.append(tf(frames))
    batch = collate(samples)["clip"]
    assert batch["frames"].dtype == torch.uint8 and batch["affine"].shape == (12, 3, 2)
    torch.testing.assert_close(normalize_batch(batch), torch.stack(ref), atol=1e-5, rtol=1e-5)
    assert len({tuple(a.flatten().tolist()) for a in batch["affine"]}) > 3  # the intensity draws differ per sample
    floats = {"frames": torch.stack(ref)}
    assert normalize_batch(floats) is floats["frames"]  # float frames (a pretrained model's, features) pass as they are
