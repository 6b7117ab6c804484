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
