"""Frame preprocessing and training-time augmentation, in torch.

:class:`Preprocess` is how decoded frames become model input (squares, or a pretrained model's image processor:
resize, centre crop, mean/std). :class:`FrameTransform` adds the augmentation (mirror, brightness scale and
shift, a small translation): MONAI's random transforms make the random draws, one per clip, so every frame of a
clip is treated alike (clips are ``[C, T, H, W]`` to them); for the square pipeline hvl does the arithmetic
itself, as 8-bit pixels plus one affine map per channel (:meth:`FrameTransform.split`) applied per batch on the
device (:func:`normalize_batch`), equal to MONAI's step-by-step result (tested)."""
from __future__ import annotations

from typing import Any, Literal

import torch
import torch.nn.functional as F
from monai.data import set_track_meta
from monai.utils import convert_to_tensor
from monai.transforms import (BorderPad, Compose, NormalizeIntensity, RandFlip, RandScaleIntensity, RandShiftIntensity,
                              RandSpatialCrop, Resize, ScaleIntensityRange)

# Frames carry no spatial metadata worth tracking; MetaTensor bookkeeping made the
# random transforms 10x slower (41 ms vs 4 ms per 4-frame clip, measured).
set_track_meta(False)

from pydantic import BaseModel, ConfigDict, Field

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "FrameTransform", "Preprocess", "normalize_batch"]


class Preprocess(BaseModel):
    """How decoded frames become model input. A pretrained model brings its own (its image processor's
    resize, crop and mean/std); it is stored with every checkpoint and index, and compared on use.

    ``resize``: ``square`` squashes to ``size × size`` (the from-scratch recipes; frames are resized while
    decoding); ``shortest_edge`` scales the short side to ``size`` keeping the aspect (CLIP, ViT);
    ``fixed`` resizes to ``size = (height, width)`` ignoring the aspect (SurgVLP's ``Resize((360, 640))``).
    ``crop``: a centre crop to ``crop × crop`` (or ``(h, w)``) after resizing.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    resize: Literal["square", "shortest_edge", "fixed"] = "square"
    size: int | tuple[int, int] = Field(64, description="square / shortest_edge: pixels; fixed: (height, width)")
    crop: int | tuple[int, int] | None = None
    resample: Literal["area", "bilinear", "bicubic"] = "area"
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD

    @property
    def output_size(self) -> tuple[int, int]:
        if self.crop is not None:
            return (self.crop, self.crop) if isinstance(self.crop, int) else tuple(self.crop)
        if self.resize == "shortest_edge":
            raise ValueError("shortest_edge without crop has no fixed output size")
        return (self.size, self.size) if isinstance(self.size, int) else tuple(self.size)

    @property
    def decode_size(self) -> tuple[int, int] | None:
        """Size to ask the decoder for (it resizes cheaply), or None: decode at the stored size."""
        return (self.size, self.size) if self.resize == "square" and isinstance(self.size, int) else None

    @classmethod
    def square(cls, size: int) -> "Preprocess":
        return cls(resize="square", size=size)

    def resized_shape(self, h: int, w: int) -> tuple[int, int]:
        """Shape after the resize step, rounded as transformers' ``get_resize_output_image_size`` does."""
        if self.resize == "fixed":
            return tuple(self.size) if not isinstance(self.size, int) else (self.size, self.size)
        if self.resize == "square":
            return (self.size, self.size)
        short, long_ = (h, w) if h <= w else (w, h)
        new_long = int(self.size * long_ / short)
        return (self.size, new_long) if h <= w else (new_long, self.size)

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        """float ``[T, 3, H, W]`` in ``[0, 255]`` → ``[T, 3, h, w]`` resized, rounded to 8 bits (as an image
        processor's PIL resize is), centre-cropped, scaled to ``[0, 1]`` and normalised."""
        h, w = self.resized_shape(*x.shape[-2:])
        if (h, w) != tuple(x.shape[-2:]):
            if self.resample == "area":
                x = F.interpolate(x, size=(h, w), mode="area")
            else:
                x = F.interpolate(x, size=(h, w), mode=self.resample, align_corners=False, antialias=True)
            x = x.round().clamp(0, 255)
        if self.crop is not None:
            ch, cw = self.output_size
            top, left = (x.shape[-2] - ch) // 2, (x.shape[-1] - cw) // 2
            if top < 0 or left < 0:
                x = F.pad(x, (max(0, -left), max(0, cw - x.shape[-1] - max(0, -left)),
                              max(0, -top), max(0, ch - x.shape[-2] - max(0, -top))))
                top, left = max(0, top), max(0, left)
            x = x[..., top:top + ch, left:left + cw]
        mean = torch.tensor(self.mean, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
        std = torch.tensor(self.std, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
        return (x / 255.0 - mean) / std

    @classmethod
    def from_image_processor(cls, processor: Any) -> "Preprocess":
        """From a transformers image processor (CLIP, SigLIP, ViT, ...) or its ``preprocessor_config.json`` dict."""
        cfg = processor if isinstance(processor, dict) else processor.to_dict()
        size = cfg.get("size") or {}
        resample = {2: "bilinear", 3: "bicubic"}.get(int(cfg.get("resample", 3)), "bicubic")
        mean = tuple(cfg.get("image_mean") or IMAGENET_MEAN)
        std = tuple(cfg.get("image_std") or IMAGENET_STD)
        crop = None
        if cfg.get("do_center_crop"):
            c = cfg.get("crop_size") or {}
            crop = (c["height"], c["width"]) if isinstance(c, dict) and "height" in c else int(c)
            crop = crop[0] if isinstance(crop, tuple) and crop[0] == crop[1] else crop
        if isinstance(size, dict) and "shortest_edge" in size:
            return cls(resize="shortest_edge", size=int(size["shortest_edge"]), crop=crop or int(size["shortest_edge"]),
                       resample=resample, mean=mean, std=std)
        if isinstance(size, dict) and "height" in size:
            hw = (int(size["height"]), int(size["width"]))
            return cls(resize="fixed", size=hw, crop=crop, resample=resample, mean=mean, std=std)
        return cls(resize="fixed", size=(int(size), int(size)), crop=crop, resample=resample, mean=mean, std=std)


class FrameTransform:
    """uint8 ``[T, H, W, 3]`` → float ``[T, 3, size, size]``, normalised; augmentations only if ``train``."""

    def __init__(self, size: int = 64, train: bool = False, mean=IMAGENET_MEAN, std=IMAGENET_STD,
                 flip_prob: float = 0.5, intensity_prob: float = 0.3, shift: int = 0,
                 preprocess: Preprocess | None = None):
        """``shift``: move the picture by up to this many pixels (edges repeated), one draw per clip.
        From-scratch CNNs on a few hundred clips otherwise learn *where* things were in the training
        frames instead of what they look like (gameplay demo, 3 px at 32 px: bug-query R@5 0.36 -> 0.50).

        ``preprocess`` other than square (a pretrained model's): its resize / crop / mean / std replace the
        square resize and the ImageNet normalisation; augmentations apply to the result."""
        self.preprocess = preprocess if preprocess is not None and preprocess.resize != "square" else None
        if self.preprocess is not None:
            size = self.preprocess.output_size[0]
        steps = [ScaleIntensityRange(0, 255, 0.0, 1.0), Resize((-1, size, size), mode="area")]
        if self.preprocess is not None:
            steps = []
        if train:
            # RandAdjustContrast cost 15 ms per 4-frame clip here (3x the rest together); scale + shift is cheap.
            if flip_prob > 0:
                steps.append(RandFlip(prob=flip_prob, spatial_axis=2))
            if intensity_prob > 0:
                steps += [RandScaleIntensity(0.15, prob=intensity_prob), RandShiftIntensity(0.05, prob=intensity_prob)]
            if shift > 0:
                steps += [BorderPad(spatial_border=[0, shift, shift], mode="replicate"),
                          RandSpatialCrop(roi_size=[-1, size, size], random_size=False)]
        if self.preprocess is None:
            steps.append(NormalizeIntensity(subtrahend=list(mean), divisor=list(std), channel_wise=True))
        self.compose = Compose(steps) if steps else None
        self.size, self.shift = size, shift
        self._mean = torch.tensor(mean, dtype=torch.float32)
        self._std = torch.tensor(std, dtype=torch.float32)

    def set_random_state(self, seed: int) -> None:
        if self.compose is not None:
            self.compose.set_random_state(seed=seed)

    def __call__(self, frames: torch.Tensor) -> torch.Tensor:
        if self.preprocess is not None:
            x = self.preprocess.apply(frames.permute(0, 3, 1, 2).float())  # [T, 3, h, w]
            if self.compose is None:
                return x.contiguous()
            x = self.compose(x.permute(1, 0, 2, 3))
            return convert_to_tensor(x, track_meta=False).permute(1, 0, 2, 3).contiguous()
        return self._fused(frames)

    def _fused(self, frames: torch.Tensor) -> torch.Tensor:
        return apply_affine(*self.split(frames))

    def split(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The square pipeline as pixels ``[T, 3, s, s]`` (8-bit unless a resize made them float) and one affine
        map per channel ``[3, 2]`` (scale, bias) whose application (:func:`normalize_batch`) gives the output.

        Why: scaling to [0, 1], the random intensity scale and shift and the normalisation are one affine map
        per channel, and the flip and shift only pick pixels, so loader workers can stop at 8-bit pixels (a
        quarter of float32's bytes through shared memory and to the device) and the float work happens once
        per batch on the accelerator. Random draws come from the MONAI transforms of ``self.compose`` (same
        seeds, same order); the result equals ``self.compose`` applied step by step (tested)."""
        t, h, w, _ = frames.shape
        s = self.size
        x = frames
        if (h, w) != (s, s):
            x = F.interpolate(x.permute(0, 3, 1, 2).float(), size=(s, s), mode="area").permute(0, 2, 3, 1)
        factor = offset = 0.0
        rows = cols = None
        for step in self.compose.transforms:
            if isinstance(step, RandFlip):
                step.randomize(None)
                if step._do_transform:
                    x = x.flip(2)
            elif isinstance(step, RandScaleIntensity):
                step.randomize(None)
                factor = step.factor if step._do_transform else 0.0
            elif isinstance(step, RandShiftIntensity):
                step.randomize(None)
                offset = step._offset if step._do_transform else 0.0
            elif isinstance(step, RandSpatialCrop):
                pad = self.shift
                step.randomize((t, s + 2 * pad, s + 2 * pad))
                top, left = step._slices[-2].start - pad, step._slices[-1].start - pad
                rows = (torch.arange(s) + top).clamp_(0, s - 1)  # edges repeated, as BorderPad(replicate)
                cols = (torch.arange(s) + left).clamp_(0, s - 1)
        if rows is not None:
            x = x.index_select(1, rows).index_select(2, cols)
        affine = torch.stack([(1.0 + factor) / (255.0 * self._std), (offset - self._mean) / self._std], dim=1)
        return x.permute(0, 3, 1, 2).contiguous(), affine


def apply_affine(pixels: torch.Tensor, affine: torch.Tensor) -> torch.Tensor:
    """``pixels [..., T, 3, H, W] * scale + bias`` with ``affine [..., 3, 2]`` = (scale, bias) per channel, in float."""
    a = affine.to(pixels.device, torch.float32)[..., None, :, :, None, None]  # [..., 1, 3, 2, 1, 1]
    return torch.addcmul(a[..., 1, :, :], pixels.float(), a[..., 0, :, :])


def normalize_batch(batch: dict[str, Any]) -> torch.Tensor:
    """A level batch's frames as model input: ``frames`` with its per-sample ``affine`` applied when the loader
    sent 8-bit pixels (:meth:`FrameTransform.split`), else ``frames`` as they are (already normalised, or
    features). Runs where the batch is, i.e. on the accelerator in training."""
    return apply_affine(batch["frames"], batch["affine"]) if "affine" in batch else batch["frames"]
