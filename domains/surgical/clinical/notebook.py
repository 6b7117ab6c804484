"""What ``notebooks/clinical_evaluation.ipynb`` displays, so that the notebook holds no untested logic."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["NOTEBOOK_SECTIONS", "as_frame", "ladder_section", "notebook_section"]


def as_frame(rows: Sequence[Mapping[str, Any]]):
    """A pandas DataFrame of table rows, for display in the notebook."""
    import pandas as pd

    return pd.DataFrame(list(rows))


NOTEBOOK_SECTIONS = ("overall", "protocols", "per_phase", "where", "per_video", "comparison", "failures")


def notebook_section(result: Mapping[str, Any], name: str) -> list[Any]:
    """What the notebook displays for one section: DataFrames and PNG images of :func:`evaluate_clinical`'s result.

    Kept here rather than in the notebook so that the notebook holds no untested logic.
    """
    from IPython.display import Image, Markdown

    tables, figs = result["tables"], result["figures"]

    def img(key: str) -> Any:
        return Image(filename=str(figs[key]))

    if name == "overall":
        return [as_frame(tables["summary"]), as_frame(tables["pooled"])]
    if name == "protocols":
        if "protocols" not in tables:
            return [Markdown("Only the strict protocol was computed for this result.")]
        return [as_frame(tables["protocols"]), as_frame(tables["protocols_per_phase"])]
    if name == "per_phase":
        return [as_frame(tables["per_phase"]), img("confusion_a"), *([img("confusion_b")] if "confusion_b" in figs else [])]
    if name == "where":
        return [img("progress"), *[img(r) for r in result["ribbons"]]]
    if name == "per_video":
        return [as_frame(tables["per_video"])]
    if name == "comparison":
        if "comparison" not in tables:
            return [Markdown("No prompt file B was given: set `prompts_b` to compare prompt wordings.")]
        return [as_frame(tables["comparison"]), as_frame(tables["comparison_per_phase"]), img("prompt_comparison")]
    if name == "failures":
        return [as_frame(tables["failures"]), img("failures")]
    raise ValueError(f"unknown section {name!r}; sections: {NOTEBOOK_SECTIONS}")


def ladder_section(ladder: Mapping[str, Any] | None) -> list[Any]:
    """What the notebook shows for :func:`evaluate_ladder`'s result: its table and plot (or how to get them)."""
    from IPython.display import Image, Markdown

    if ladder is None:
        return [Markdown("No labelled training videos were given: set `train` (a manifest of labelled videos) to "
                         "see what windows, a few labels, a linear probe and a temporal head add to zero-shot.")]
    return [as_frame(ladder["table"]), Image(filename=str(ladder["figure"]))]
