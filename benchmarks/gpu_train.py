"""Training throughput and model-FLOPs utilisation (MFU) of a ViT-B/16 + BERT-base video-text model.

The model is hvl's own video side (``VideoEncoder`` over an ``HFVisionEncoder`` built from a
config: random init, no download) with a BERT-base text tower (``AutoModel.from_config``),
hvl's ``Head`` projections and ``infonce`` loss (negatives gathered across DDP ranks), in
bf16 autocast with AdamW. Inputs are synthetic tensors already on the device, so the
figures are the model's alone (the loader is benchmarked by ``data.py``).

FLOPs per step are counted once with ``torch.utils.flop_counter.FlopCounterMode``
(forward + backward); MFU = achieved FLOP/s per device / ``--peak-tflops`` (default 989:
H100 SXM bf16 dense). With 2+ GPUs the same run is repeated under torchrun (DDP) and the
scaling efficiency is reported. ``--tiny`` shrinks everything so the script runs on a CPU
in seconds (its MFU is then meaningless; the test only checks that it runs).

    python benchmarks/gpu_train.py [--tiny] [--steps N] [--batch-size B] [--nproc N] > gpu_train.json
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from common import emit, log, machine, seed_all
from hvl.core.models.encoders import Head, VideoEncoder
from hvl.core.models.losses import LogitScale, infonce
from torch import Tensor, nn

VIT_B16 = {"model_type": "clip_vision_model", "hidden_size": 768, "intermediate_size": 3072,
           "num_hidden_layers": 12, "num_attention_heads": 12, "image_size": 224, "patch_size": 16}
VIT_TINY = {**VIT_B16, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
            "num_attention_heads": 2, "image_size": 32}
BERT_BASE: dict[str, Any] = {}  # BertConfig() defaults are bert-base-uncased's shape
BERT_TINY = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2,
             "vocab_size": 1000, "max_position_embeddings": 64}


class TextTower(nn.Module):
    """A randomly initialised BERT with mean pooling over real tokens (as hvl's TextEncoder pools)."""

    def __init__(self, config: dict[str, Any]):
        super().__init__()
        from transformers import AutoModel, BertConfig

        self.model = AutoModel.from_config(BertConfig(**config), add_pooling_layer=False)
        self.dim: int = self.model.config.hidden_size

    def forward(self, ids: Tensor, mask: Tensor) -> Tensor:
        h = self.model(input_ids=ids, attention_mask=mask).last_hidden_state
        m = mask.unsqueeze(-1).to(h.dtype)
        return (h * m).sum(1) / m.sum(1).clamp_min(1)


class DualEncoder(nn.Module):
    """Clip ↔ text contrastive model from hvl's parts: video encoder + heads + InfoNCE."""

    def __init__(self, vision: dict[str, Any], text: dict[str, Any], embed_dim: int = 256):
        super().__init__()
        self.video = VideoEncoder(frame_encoder={"name": "hf", "config": vision}, temporal="mean")
        self.text = TextTower(text)
        self.video_head, self.text_head = Head(self.video.dim, embed_dim), Head(self.text.dim, embed_dim)
        self.scale = LogitScale()

    def forward(self, frames: Tensor, ids: Tensor, mask: Tensor) -> Tensor:
        return infonce(self.video_head(self.video(frames)), self.text_head(self.text(ids, mask)), self.scale())


def sig(x: float, digits: int = 3) -> float:
    """``x`` to ``digits`` significant figures (tiny CPU runs have MFUs like 1e-7)."""
    return float(f"{x:.{digits}g}")


def synthetic_batch(a: argparse.Namespace, image: int, vocab: int, device: torch.device) -> tuple[Tensor, ...]:
    g = torch.Generator().manual_seed(a.seed + int(os.environ.get("RANK", "0")))
    frames = torch.randn(a.batch_size, a.frames, 3, image, image, generator=g)
    ids = torch.randint(1000 if vocab > 2000 else 1, vocab, (a.batch_size, a.text_len), generator=g)
    lengths = torch.randint(a.text_len // 2, a.text_len + 1, (a.batch_size, 1), generator=g)
    mask = (torch.arange(a.text_len)[None] < lengths).long()
    return frames.to(device), ids.to(device), mask.to(device)


def run(a: argparse.Namespace) -> dict[str, Any]:
    """One process's benchmark (a DDP rank when launched by torchrun)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    cuda = torch.cuda.is_available() and not a.cpu
    if world > 1:
        dist.init_process_group("nccl" if cuda else "gloo")
    rank, local = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    device = torch.device(f"cuda:{local}" if cuda else "cpu")
    if cuda:
        torch.cuda.set_device(device)
        torch.backends.cuda.matmul.allow_tf32 = True
    seed_all(a.seed)
    vision, text = (VIT_TINY, BERT_TINY) if a.tiny else (VIT_B16, BERT_BASE)
    model = DualEncoder(vision, text).to(device)
    params = {"vision": sum(p.numel() for p in model.video.parameters()),
              "text": sum(p.numel() for p in model.text.parameters()),
              "total": sum(p.numel() for p in model.parameters())}
    net: nn.Module = nn.parallel.DistributedDataParallel(model, device_ids=[local] if cuda else None) if world > 1 else model
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, **({"fused": True} if cuda else {}))
    batch = synthetic_batch(a, vision["image_size"], model.text.model.config.vocab_size, device)
    dtype = {"bf16": torch.bfloat16, "fp32": torch.float32}[a.precision]

    def step() -> Tensor:
        with torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32):
            loss = net(*batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss

    def sync() -> None:
        if cuda:
            torch.cuda.synchronize(device)

    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:  # forward + backward (+ optimizer, negligible)
        step()
    flops = counter.get_total_flops()
    for _ in range(a.warmup):
        step()
    sync()
    if world > 1:
        dist.barrier()
    t0 = time.perf_counter()
    for _ in range(a.steps):
        loss = step()
    sync()
    dt = time.perf_counter() - t0
    step_s = dt / a.steps
    achieved = flops / step_s  # per device
    out = {"world_size": world, "device": str(device), "params": params, "flops_per_step_per_device": flops,
           "flops_per_sample": round(flops / a.batch_size), "step_time_ms": round(1000 * step_s, 2),
           "samples_per_s": round(world * a.batch_size / step_s, 2),
           "images_per_s": round(world * a.batch_size * a.frames / step_s, 1),
           "achieved_tflops_per_device": sig(achieved / 1e12),
           "mfu": sig(achieved / (a.peak_tflops * 1e12)), "final_loss": round(float(loss.detach()), 4)}
    if cuda:
        out["peak_mem_gb"] = round(torch.cuda.max_memory_allocated(device) / 2**30, 2)
    if world > 1:
        dist.destroy_process_group()
    return out if rank == 0 else {}


def ddp_scaling(a: argparse.Namespace, single: dict[str, Any]) -> dict[str, Any]:
    """The same benchmark on ``a.nproc`` processes via torchrun; efficiency vs ``nproc`` × one device."""
    with tempfile.TemporaryDirectory() as tmp:
        result = Path(tmp) / "rank0.json"
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={a.nproc}",
               __file__, *sys.argv[1:], "--nproc", "1", "--result-file", str(result)]
        log("launching: " + " ".join(cmd))
        proc = subprocess.run(cmd, stdout=subprocess.DEVNULL)
        if proc.returncode != 0 or not result.exists():
            return {"world_size": a.nproc, "error": f"torchrun exited with {proc.returncode}"}
        multi = json.loads(result.read_text())
    multi["scaling_efficiency"] = round(multi["samples_per_s"] / (a.nproc * single["samples_per_s"]), 3)
    return multi


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tiny", action="store_true", help="tiny ViT/BERT and 32x32 frames: runs on a CPU in seconds")
    p.add_argument("--quick", action="store_true", help="alias of --tiny --steps 2 --warmup 1")
    p.add_argument("--steps", type=int, default=20, help="timed steps")
    p.add_argument("--warmup", type=int, default=None, help="untimed steps (default 3; tiny 1)")
    p.add_argument("--batch-size", type=int, default=None, help="clips per device (default 32; tiny 4)")
    p.add_argument("--frames", type=int, default=4, help="frames per clip (hvl's clip level: 4)")
    p.add_argument("--text-len", type=int, default=32, help="tokens per text")
    p.add_argument("--precision", choices=["bf16", "fp32"], default="bf16")
    p.add_argument("--peak-tflops", type=float, default=989.0, help="per device; H100 SXM bf16 dense = 989")
    p.add_argument("--nproc", type=int, default=None, help="DDP processes for the scaling run (default: GPU count)")
    p.add_argument("--cpu", action="store_true", help="stay on the CPU even if a GPU is present")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--result-file", type=Path, help=argparse.SUPPRESS)  # rank 0 of a torchrun child writes here
    a = p.parse_args()
    if a.quick:
        a.tiny, a.steps, a.warmup = True, 2, 1
    if a.batch_size is None:
        a.batch_size = 4 if a.tiny else 32
    if a.warmup is None:
        a.warmup = 1 if a.tiny else 3
    cuda = torch.cuda.is_available() and not a.cpu
    if a.nproc is None:
        a.nproc = torch.cuda.device_count() if cuda else 1
    if "WORLD_SIZE" in os.environ and int(os.environ["WORLD_SIZE"]) > 1:  # a torchrun child
        out = run(a)
        if out and a.result_file:
            a.result_file.write_text(json.dumps(out))
        return
    single = run(a)
    log(f"1 device: {single}")
    ddp = ddp_scaling(a, single) if a.nproc > 1 else {"skipped": "fewer than 2 devices (set --nproc to force)"}
    emit({"benchmark": "gpu_train", "machine": machine("cuda" if cuda else "cpu"), "seed": a.seed,
          "config": {"tiny": a.tiny, "batch_size_per_device": a.batch_size, "frames": a.frames,
                     "text_len": a.text_len, "precision": a.precision, "steps": a.steps, "warmup": a.warmup,
                     "vision": VIT_TINY if a.tiny else VIT_B16, "text": "bert-tiny" if a.tiny else "bert-base"},
          "peak_tflops": a.peak_tflops, "flops_method": "torch.utils.flop_counter.FlopCounterMode, one step",
          **single, "ddp": ddp})


if __name__ == "__main__":
    main()
