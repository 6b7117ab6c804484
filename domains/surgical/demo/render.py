"""One demo video: its phases planned, drawn frame by frame, and its manifest record with the texts."""
from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import pairwise

import numpy as np
from hvl.core.data.schema import ClipSegment, PhaseSegment, VideoRecord
from hvl.core.errors import HVLInputError
from hvl.domains.surgical.presets import INSTRUMENT_COLOURS, DemoPreset, get_preset

from .cholecystectomy import CHOLECYSTECTOMY
from .drawing import RGB, Pen, palette, smooth_noise, tissue
from .procedures import get_procedure
from .spec import PhaseSpec, Procedure
from .texts import abstract, bleed_abstract, narrations, phase_summary, plan_narrations, realistic_narrations

__all__ = ["clip_windows", "render_video"]

CLIP_SECONDS, CLIP_STRIDE = 4.0, 2.0
MIN_PHASE_SECONDS = 5.0
DURATION_RANGE = (60.0, 95.0)
SENSOR_NOISE = 2.0  # grey levels, per frame
BLEED_PHASE = {"cholecystectomy": "CleaningCoagulation", "hysterectomy": "Washing"}  # what a bleed looks like


@dataclass
class _PhasePlan:
    name: str
    first: int  # first frame
    stop: int  # one past the last frame


def _plan_phases(rng: np.random.Generator, fps: float, proc: Procedure = CHOLECYSTECTOMY,
                 seconds: tuple[float, float] = DURATION_RANGE) -> list[_PhasePlan]:
    """Durations: at least MIN_PHASE_SECONDS each, the rest shared by the phases' jittered proportions."""
    total = rng.uniform(*seconds)
    names = list(proc.phases)
    w = np.array([proc.phases[p].weight for p in names]) * rng.lognormal(0.0, 0.25, len(names))
    secs = MIN_PHASE_SECONDS + (total - MIN_PHASE_SECONDS * len(names)) * w / w.sum()
    bounds = np.round(np.concatenate([[0.0], np.cumsum(secs)]) * fps).astype(int)
    return [_PhasePlan(p, int(a), int(b)) for p, a, b in zip(names, bounds[:-1], bounds[1:])]


def _insert_bleeds(plans: list[_PhasePlan], rng: np.random.Generator, fps: float, most: int,
                   proc: Procedure) -> list[_PhasePlan]:
    """0..``most`` bleeding episodes (the procedure's cleaning phase, 20-40 s) inside the operation's middle
    phases, one per 120 s of a phase at most; the host phase is split around each."""
    bleed = BLEED_PHASE.get(proc.name)
    if bleed is None:
        raise HVLInputError(f"demo: the bleeding episodes of this preset need a cleaning phase; procedure "
                            f"'{proc.name}' has none (use one of {sorted(BLEED_PHASE)})")
    count = int(rng.integers(0, most + 1))
    slots = [i for i, p in enumerate(plans[1:-2], start=1) if p.name != bleed
             for _ in range(min(most, (p.stop - p.first) // int(120 * fps)))]
    chosen = [slots[k] for k in rng.choice(len(slots), size=min(count, len(slots)), replace=False)]
    out: list[_PhasePlan] = []
    for i, p in enumerate(plans):
        m = chosen.count(i)
        cuts = np.linspace(p.first, p.stop, m + 1).astype(int)
        start = p.first
        for a, b in pairwise(cuts):  # one bleed in each of m equal parts (each >= 120 s)
            n = int(round(rng.uniform(20.0, 40.0) * fps))
            at = int(a) + int(rng.integers(int(20 * fps), int(b - a) - n - int(20 * fps)))
            out += [_PhasePlan(p.name, start, at), _PhasePlan(bleed, at, at + n)]
            start = at + n
        out.append(_PhasePlan(p.name, start, p.stop))
    return out


def _render_phase(plan: _PhasePlan, rng: np.random.Generator, size: int, fps: float, pal: dict[str, RGB],
                  vignette: np.ndarray, noise: np.ndarray, out: np.ndarray, like: str | None = None,
                  proc: Procedure = CHOLECYSTECTOMY) -> None:
    """Draw one phase's frames into ``out[plan.first:plan.stop]``: static canvas once, moving parts per frame.

    ``like``: draw the scene, instruments and camera motion of that phase instead (a look-alike
    phase of the realistic preset); only this phase's own smoke density is kept."""
    spec = proc.phases[plan.name]
    if like is not None:
        spec = PhaseSpec(**{**spec.__dict__, **{k: getattr(proc.phases[like], k) for k in ("background", "pan",
                                                                                            "scene", "frame")}})
    s, m = float(size), max(2, round(0.08 * size))
    big = size + 2 * m
    canvas = tissue(rng, big, big, pal[spec.background], pal)
    layout = spec.scene(Pen(canvas, (m, m)), rng, s, pal)
    haze = np.clip(smooth_noise(rng, big, big, 3) * 0.6 + 0.4, 0.0, 1.0) * spec.haze
    amp = rng.uniform(0.5, 1.0, 2) * spec.pan * m
    freq, phase0 = rng.uniform(0.05, 0.15, 2), rng.uniform(0, 2 * math.pi, 2)
    n = plan.stop - plan.first
    for k in range(n):
        t = (plan.first + k) / fps
        shake = rng.integers(-1, 2, 2)
        px, py = (np.clip(np.round(amp * np.sin(2 * math.pi * freq * t + phase0)) + shake, -m, m)).astype(int)
        frame = canvas[:, m + py:m + py + size, m + px:m + px + size].copy()
        spec.frame(Pen(frame, (-px, -py)), layout, s, pal, k / n, t)
        if spec.haze:
            a = haze[m + py:m + py + size, m + px:m + px + size] * (0.6 + 0.4 * math.sin(1.1 * t))
            frame += a * (pal["smoke"] - frame)
        frame *= vignette * (1.0 + 0.03 * math.sin(0.7 * t))  # vignette carries the camera's brightness
        frame += noise[int(rng.integers(len(noise)))]
        out[plan.first + k] = np.clip(frame, 0, 255, out=frame).transpose(1, 2, 0)


def clip_windows(duration: float) -> list[tuple[float, float]]:
    """4 s windows every 2 s, plus one window ending at the end (or the last one moved there if the
    uncovered tail is short, so no two windows nearly coincide)."""
    spans = [(float(a), float(a) + CLIP_SECONDS) for a in np.arange(0.0, duration - CLIP_SECONDS + 1e-6, CLIP_STRIDE)]
    if not spans:
        return [(0.0, duration)]
    if spans[-1][1] < duration - 1e-6:
        tail = (duration - CLIP_SECONDS, duration)
        if duration - spans[-1][1] < CLIP_STRIDE / 2:
            spans[-1] = tail
        else:
            spans.append(tail)
    return spans


def render_video(video_id: str, ss: np.random.SeedSequence, size: int = 128,
                 fps: float = 10.0, preset: str | DemoPreset | None = None,
                 procedure: str | Procedure | None = None) -> tuple[np.ndarray, VideoRecord]:
    """Frames ``uint8 [T, H, W, 3]`` and the manifest record of one video.

    Pixels and texts come from two child streams of ``ss``, so rewording a template never
    changes a picture (and the other way round). ``preset``: see :mod:`hvl.domains.surgical.presets`;
    ``procedure``: see :func:`get_procedure`.
    """
    preset, proc = get_preset(preset), get_procedure(procedure)
    look_rng, text_rng = (np.random.default_rng(c) for c in ss.spawn(2))
    minutes = preset.minutes
    plans = _plan_phases(look_rng, fps, proc, DURATION_RANGE if minutes is None else (60 * minutes[0], 60 * minutes[1]))
    if preset.bleeds:
        plans = _insert_bleeds(plans, look_rng, fps, preset.bleeds, proc)
    n_frames = plans[-1].stop
    pal = palette(look_rng, proc.colours)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size - 0.5
    vignette = (look_rng.uniform(0.92, 1.08) * (1.0 - 0.9 * (xx ** 2 + yy ** 2))).astype(np.float32)
    if not preset.is_default:  # another centre's camera, light and instruments (no-ops for the realistic preset)
        wb, tint = np.float32(preset.white_balance)[:, None, None], np.float32(preset.instrument_tint)[:, None, None]
        pal = {k: np.clip(v + wb + (tint if k in INSTRUMENT_COLOURS else 0.0), 0, 255).astype(np.float32)
               for k, v in pal.items()}
        vignette = vignette * np.float32(preset.gain)
    noise = look_rng.normal(0.0, SENSOR_NOISE, (6, size, size)).astype(np.float32)
    frames = np.empty((n_frames, size, size, 3), np.uint8)
    for plan in plans:
        like = preset.lookalike.get(plan.name)
        _render_phase(plan, look_rng, size, fps, pal, vignette, noise, frames,
                      like=like if like in proc.phases else None, proc=proc)
    if look_rng.uniform() < 0.5:  # mirrored set-up (surgeon on the other side): layouts vary more
        frames = frames[:, :, ::-1]

    duration = round(n_frames / fps, 6)
    sec = lambda f: round(f / fps, 6)  # noqa: E731
    bleeds = [p for p in plans[:-2] if preset.bleeds and p.name == BLEED_PHASE[proc.name]]
    phases = [PhaseSegment(start=sec(p.first), end=sec(p.stop) if p is not plans[-1] else duration,
                           text=(f"Bleed {bleeds.index(p) + 1} of {len(bleeds)}: " if p in bleeds else "")
                           + phase_summary(p.name, text_rng, proc), label=p.name) for p in plans]
    def phase_at(t: float) -> str:
        f = min(int(t * fps), n_frames - 1)
        return next(p.name for p in plans if p.first <= f < p.stop)

    clips = []
    if preset.is_default:
        for a, b in clip_windows(duration):
            clips.append(ClipSegment(start=round(a, 6), end=round(b, 6), texts=narrations(phase_at((a + b) / 2),
                                                                                             text_rng, proc)))
    else:
        for n in plan_narrations(clip_windows(duration), phase_at, duration, preset, text_rng):
            if n.spoken:
                clips.append(ClipSegment(start=round(n.start, 6), end=round(n.end, 6),
                                         texts=realistic_narrations(n, preset, text_rng, proc)))
    hosts = [plans[plans.index(p) - 1].name for p in bleeds]
    text = bleed_abstract(hosts, text_rng, proc) if preset.bleeds else abstract(text_rng, proc)
    return frames, VideoRecord(video_id=video_id, path=f"videos/{video_id}.mp4", texts=[text],
                               duration=duration, phases=phases, clips=clips)
