"""Transcripts for videos that have none, from a local Whisper directory (no network, no download).

The audio track is decoded with PyAV and resampled to 16 kHz mono (what Whisper's feature extractor
expects), handed to transformers' ``automatic-speech-recognition`` pipeline with long-form chunking and
segment timestamps, and written as a Whisper JSON transcript (``segments[]`` with start, end, text) — the
same format as any other source, so it is read back, checked and cached like one.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import HVLInputError
from ...io import write_json
from .reencode import source_key

__all__ = ["SAMPLE_RATE", "decode_audio", "load_asr", "transcribe"]

SAMPLE_RATE = 16_000


def decode_audio(path: Path, rate: int = SAMPLE_RATE) -> np.ndarray:
    """The first audio stream as float32 mono at ``rate`` Hz."""
    import av

    try:
        with av.open(str(path)) as box:
            if not box.streams.audio:
                raise HVLInputError(f"{path}: no audio stream to transcribe; add a transcript for it instead")
            resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
            chunks = []
            for frame in box.decode(box.streams.audio[0]):
                chunks += [f.to_ndarray().reshape(-1) for f in resampler.resample(frame)]
            chunks += [f.to_ndarray().reshape(-1) for f in resampler.resample(None)]
    except av.FFmpegError as e:
        raise HVLInputError(f"{path}: cannot decode audio ({e})") from None
    return np.concatenate(chunks).astype(np.float32) if chunks else np.zeros(0, np.float32)


def load_asr(model_dir: str | Path, chunk_seconds: float = 30.0, device: str | None = None) -> Any:
    """transformers' ASR pipeline on ``model_dir``; an error naming the directory if it is not a speech model."""
    from transformers import AutoConfig, pipeline
    from transformers.models.auto.modeling_auto import (
        MODEL_FOR_CTC_MAPPING_NAMES,
        MODEL_FOR_SPEECH_SEQ_2_SEQ_MAPPING_NAMES,
    )

    d = Path(model_dir)
    if not (d / "config.json").is_file():
        raise HVLInputError(f"--asr {d}: not a model directory (no config.json); point it at a local Whisper "
                            "checkpoint saved with save_pretrained (nothing is downloaded)")
    try:
        cfg = AutoConfig.from_pretrained(d, local_files_only=True)
    except (OSError, ValueError) as e:
        raise HVLInputError(f"--asr {d}: config.json is not a transformers config ({e})") from None
    speech = set(MODEL_FOR_SPEECH_SEQ_2_SEQ_MAPPING_NAMES) | set(MODEL_FOR_CTC_MAPPING_NAMES)
    if cfg.model_type not in speech:
        raise HVLInputError(f"--asr {d}: a '{cfg.model_type}' model is not a speech-recognition model; "
                            "use a Whisper (or other speech-to-text) checkpoint")
    try:
        # a local directory: transformers reads it and asks no hub (the CLI also sets HF_HUB_OFFLINE)
        return pipeline("automatic-speech-recognition", model=str(d), chunk_length_s=chunk_seconds,
                        device=device or "cpu", ignore_warning=True)
    except (OSError, ValueError) as e:
        raise HVLInputError(f"--asr {d}: cannot load a speech-recognition pipeline ({e}); "
                            "the directory needs the model, its tokenizer and feature extractor") from None


def segments_from(chunks: list[dict[str, Any]], duration: float) -> list[dict[str, Any]]:
    """Pipeline chunks → Whisper segments inside ``[0, duration]``, in time order. A chunk without an end
    (the model stopped mid-segment) ends at the next chunk or the end of the video."""
    raw = []
    for i, c in enumerate(chunks):
        start, end = c.get("timestamp", (None, None))
        start = 0.0 if start is None else float(start)
        if end is None:
            end = next((float(n["timestamp"][0]) for n in chunks[i + 1:] if n["timestamp"][0] is not None),
                       duration)
        raw.append((min(max(start, 0.0), duration), min(max(float(end), 0.0), duration), c.get("text", "").strip()))
    raw.sort(key=lambda s: (s[0], s[1]))
    return [{"id": i, "start": round(s, 3), "end": round(e, 3), "text": t}
            for i, (s, e, t) in enumerate(x for x in raw if x[1] > x[0] and x[2])]


def transcribe(asr: Any, model_dir: str | Path, video: Path, out: Path, duration: float) -> bool:
    """Write ``out`` (Whisper JSON) for ``video`` unless an up-to-date one is there; True if it was written."""
    key = source_key(video, model=str(Path(model_dir).resolve()))
    if out.is_file():
        try:
            if json.loads(out.read_text(encoding="utf-8")).get("hvl") == key:
                return False
        except ValueError:
            pass
    audio = decode_audio(video)
    if not len(audio):
        raise HVLInputError(f"{video}: its audio stream is empty; add a transcript for it instead")
    result = asr({"raw": audio, "sampling_rate": SAMPLE_RATE}, return_timestamps=True)
    segments = segments_from(result.get("chunks") or [], duration)
    write_json(out, {"text": " ".join(s["text"] for s in segments), "segments": segments,
                     "sampling_rate": SAMPLE_RATE, "audio_seconds": round(len(audio) / SAMPLE_RATE, 3), "hvl": key})
    return True
