"""What can be wrong with raw inputs, and what each policy does about it.

Every problem names a file and a place in it. Under ``error`` (the default for every kind but
``unreadable_metadata``) the video it belongs to is left out of the manifests, the other videos are
written and the run ends with the list and a non-zero exit status (``--on-bad-video error``: the run stops
before anything is written, listing them); under ``warn`` the stated repair is made and counted in the
report — never a silent drop. What a format allows is not a problem: overlapping cues are legal WebVTT
and SubRip (shown together), so they are kept and counted (``overlapping_cues``), never refused; nor is a
cue that ends within ``--tolerance`` after the last frame (captions often do; container and stream
durations differ by milliseconds): it is clamped to the duration and counted (``clamped_cue_ends``). Times
that are negative or not finite never get this far: the readers refuse them with the file and line.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, replace
from typing import Literal

from ...errors import HVLInputError
from .subtitles import Cue

__all__ = ["KINDS", "RETIRED_KINDS", "WARNED_BY_DEFAULT", "Policy", "Problem", "check_cues", "describe_errors",
           "raise_errors"]

Policy = dict[str, Literal["error", "warn"]]

# kind -> what `warn` does
KINDS = {
    "cue_outside_video": "the cue is clipped to the video's duration (dropped if it starts after the end)",
    "cue_order": "the cues are sorted by start time",
    "bad_cue": "the cue (end not after start) is dropped",
    "video_without_transcript": "the video is left out",
    "transcript_without_video": "the transcript (and the video's chapters, abstract) is left out",
    "undecodable_video": "the video is left out",
    "chapter_outside_video": "the chapter is clipped to the video's duration (dropped if it starts after the end)",
    "unreadable_input": "the video is left out (one of its files cannot be read, or its record cannot be built)",
    "unusable_video_id": "the file is left out (its id, e.g. '..', names a folder, not a video)",
    "unreadable_metadata": "the video is prepared without the yt-dlp .info.json's title, chapters and abstract",
}
# optional metadata: a broken file costs the video its title and chapters, not its place in the manifests
WARNED_BY_DEFAULT = {"unreadable_metadata"}
# accepted by --warn so that commands written for earlier versions still run; they change nothing now
RETIRED_KINDS = {"cue_overlap": "overlapping cues are legal and kept without a flag"}


@dataclass(frozen=True)
class Problem:
    kind: str
    where: str  # "file, line N"
    message: str

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


def check_cues(cues: list[Cue], duration: float, tol: float, problems: list[Problem],
               counts: Counter) -> list[Cue]:
    """Cues in time order and inside ``[0, duration]``, after reporting what had to change; overlaps counted."""
    out: list[Cue] = []
    unsorted = False
    for i, c in enumerate(cues):
        if not c.end > c.start:
            problems.append(Problem("bad_cue", c.at, f"end {c.end:.3f}s is not after start {c.start:.3f}s"))
            counts["dropped_bad_cues"] += 1
            continue
        if out and c.start < out[-1].start:
            problems.append(Problem("cue_order", c.at, f"starts at {c.start:.3f}s, before the previous cue "
                                                       f"({out[-1].where}, {out[-1].start:.3f}s)"))
            unsorted = True
        elif out and c.start < out[-1].end - tol:
            counts["overlapping_cues"] += 1
        if c.end > duration:
            repair = "clamped_cue_ends"  # within the tolerance: rounding, not a problem
            if c.end > duration + tol:
                problems.append(Problem("cue_outside_video", c.at, f"ends at {c.end:.3f}s but the video lasts "
                                                                   f"{duration:.3f}s"))
                repair = "clipped_cues"
            if c.start >= duration:
                counts["dropped_outside_cues"] += 1
                continue
            counts[repair] += 1
            c = replace(c, end=duration, words=tuple(w for w in c.words if w[0] < duration))
        out.append(c)
    if unsorted:
        out.sort(key=lambda c: (c.start, c.end))
    return out


def describe_errors(errors: list[Problem], head: str) -> str:
    """``head``, up to 20 of ``errors`` and the ``--warn`` that would repair each kind."""
    kinds = sorted({p.kind for p in errors})
    lines = [f"  {p.where}: {p.kind}: {p.message}" for p in errors[:20]]
    more = f"\n  … and {len(errors) - 20} more" if len(errors) > 20 else ""
    hints = "\n".join(f"  --warn {k}: {KINDS[k]}" for k in kinds)
    return f"{head}\n" + "\n".join(lines) + more + f"\nfix the files, or accept a repair explicitly:\n{hints}"


def raise_errors(problems: list[Problem], policy: Policy) -> None:
    """Stop on every problem whose kind is not under ``warn``, listing up to 20 of them."""
    errors = [p for p in problems if policy.get(p.kind, "error") == "error"]
    if errors:
        raise HVLInputError(describe_errors(errors, f"{len(errors)} problem(s) in the raw inputs; nothing was "
                                                    "written:"))
