"""Seeded synthetic laparoscopic-cholecystectomy dataset: the project's embedded demo.

Real surgical video (Cholec80, SVL) cannot be shipped, so ``hvl demo`` draws a small
stand-in that exercises the whole HecVL pipeline on a CPU in minutes:

* **videos**: 128x128 H.264 at 10 fps, 60-95 s each, running through the seven Cholec80
  phases in order. Every phase has its own picture (ports on the abdominal wall, grasper
  and hook at Calot's triangle, clips on the duct, smoke at the liver border, a white
  specimen bag, blue irrigation fluid and blood, the bag pulled to a trocar), randomised
  per video (colours, layout, instrument angles) and per frame (motion, camera pan,
  brightness, sensor noise), so a model has to learn the look, not memorise frames.
* **text at three levels**: ASR-like first-person narrations per 4 s clip (about 20 %
  chit-chat unrelated to the picture) plus a cleaner paraphrase; a summary per phase; an
  abstract per video. They share vocabulary (trocars, grasper, hook, cystic duct, clips,
  specimen bag, suction, ...) with ``prompts/demo.yaml`` but never its sentences, so
  zero-shot phase recognition is learnable without leaking the prompts.

``procedure="hysterectomy"`` draws a second operation with AutoLaparo's phases instead
(:mod:`.hysterectomy`), for testing transfer across procedures.

Everything is a function of ``seed``: each video draws from its own
``numpy.random.SeedSequence([seed, split, index])`` (one child stream for pixels, one for
text), so any subset regenerates identically and no global random state is touched.

One job per module: :mod:`.drawing` (shapes, instruments, palette, tissue), :mod:`.spec` (what a phase and a
procedure are), :mod:`.words` (synonyms both procedures share), :mod:`.laparoscopy` (what every procedure shows:
ports going in, clips, suction), :mod:`.cholecystectomy` and :mod:`.hysterectomy` (each procedure's scenes and
texts), :mod:`.procedures` (by name), :mod:`.texts` (narrations, summaries, abstracts), :mod:`.render` (one
video) and :mod:`.dataset` (the files on disk; ``hvl demo surgical`` and its options, declared by the
plugin in :mod:`hvl.domains.surgical`).
"""
from .dataset import generate, write_raw_layout
from .procedures import PROCEDURES, get_procedure
from .render import clip_windows, render_video
from .spec import PhaseSpec, Procedure
from .texts import (
    UNRELATED,
    NarrationPlan,
    abstract,
    asr,
    narrations,
    phase_summary,
    plan_narrations,
    realistic_narrations,
)

__all__ = ["PROCEDURES", "UNRELATED", "NarrationPlan", "PhaseSpec", "Procedure", "abstract", "asr", "clip_windows",
           "generate", "get_procedure", "narrations", "phase_summary", "plan_narrations", "realistic_narrations",
           "render_video", "write_raw_layout"]
