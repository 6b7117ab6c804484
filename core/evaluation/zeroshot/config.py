"""What ``hvl zeroshot --config`` reads, and the checks of the data against the prompt file before any model loads."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from ...data.records import DatasetSpec, Resolved, check_videos
from ...data.schema import PromptFile
from ...errors import HVLInputError

__all__ = ["ZeroShotConfig", "check_inputs"]


class ZeroShotConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    domain: str | None = None
    dataset: DatasetSpec
    prompts: str
    level: str | None = Field(None, description="embedding space; default: the prompt file's, else 'phase'")
    fps: float = Field(1.0, gt=0)
    window: float | None = Field(None, ge=0, description="seconds of the centred window each scored frame is "
                                                          "embedded with (None: the frame alone)")
    batch_size: int = Field(64, ge=1)
    num_workers: int = Field(2, ge=0)
    image_size: int | None = Field(None, description="default: the training data module's image_size")
    video_backend: Literal["auto", "decord", "pyav"] = Field("auto", description="decoder (see hvl.core.data.decoders)")
    experiment: str = "hvl-zeroshot"
    protocol: Literal["strict", "relaxed", "relaxed-fixed"] = Field(
        "strict", description="metric protocol (hvl.core.evaluation.metrics.PROTOCOLS): strict video-wise, or the "
                              "relaxed M2CAI / Cholec80 one as released or with its bug fixed (--protocol overrides)")


def check_inputs(videos: list[Resolved], prompts: PromptFile) -> None:
    """Fail before any model is loaded: every video decodes, every label is a prompt class."""
    check_videos(videos)
    names = set(prompts.names)
    for rec, path in videos:
        unknown = {p.label for p in rec.phases if p.label is not None} - names
        if unknown:
            raise HVLInputError(f"{path}: video '{rec.video_id}' has phase label(s) {sorted(unknown)} that are not "
                                f"classes of the prompt file {prompts.names}; add them to the prompt file "
                                "or fix the annotations")
