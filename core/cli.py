"""`hvl` — Lightning CLI for training (fit/validate/test/predict) plus demo and zero-shot commands."""
from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .schema import HVLInputError, format_validation_error, load_prompt_file, read_yaml

LIGHTNING_COMMANDS = ("fit", "validate", "test", "predict")
# Commands that live in their own module, each with ``add_arguments(parser)`` and ``run(args)``.
# Importing one must stay cheap: torch and friends are imported inside ``run``.
MODULE_COMMANDS = {
    "retrieval": ("hvl.core.retrieval", "text <-> video retrieval (R@1/5/10, MedR, MeanR) with a trained model"),
    "index": ("hvl.core.index", "embed the frames of a video folder into a searchable index (resumable)"),
    "search": ("hvl.core.search", "search an index with a text query: ranked videos and their best moments"),
    "bugsearch-eval": ("hvl.core.bugsearch", "evaluate text -> video search on a query set (recall@k, mAP)"),
}


def _quiet_env() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def lightning_main(argv: list[str]) -> None:
    from pytorch_lightning.cli import LightningCLI

    from .data import HVLDataModule
    from .module import HierarchicalVLM
    from .tracking import MLflowSaveConfig

    LightningCLI(HierarchicalVLM, HVLDataModule, subclass_mode_model=True, subclass_mode_data=True,
                 save_config_callback=MLflowSaveConfig, save_config_kwargs={"save_to_log_dir": False,
                                                                           "overwrite": True},
                 args=argv, auto_configure_optimizers=False)


# ----------------------------------------------------------------- zeroshot
class DatasetSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reader: str = Field("manifest", description="'manifest' (a .jsonl) or a reader of the domain, e.g. 'cholec80'")
    path: str
    options: dict[str, Any] = Field(default_factory=dict, description="reader keyword arguments (e.g. split)")


class ZeroShotConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    domain: str | None = None
    dataset: DatasetSpec
    prompts: str
    level: str | None = Field(None, description="embedding space; default: the prompt file's, else 'phase'")
    fps: float = Field(1.0, gt=0)
    batch_size: int = Field(64, ge=1)
    num_workers: int = Field(2, ge=0)
    image_size: int | None = Field(None, description="default: the training data module's image_size")
    experiment: str = "hvl-zeroshot"


def write_json(path: str | Path, obj: Any) -> Path:
    """Results JSON, written atomically: a reader never sees half a file, a crash keeps the old one."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(out.suffix + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2))
    tmp.replace(out)
    return out


def _load_config(path: str, model: type[BaseModel]) -> BaseModel:
    data = read_yaml(path)
    try:
        return model.model_validate(data or {})
    except ValidationError as e:
        raise HVLInputError(format_validation_error(e, path)) from None


def _videos(cfg: ZeroShotConfig):
    from .zeroshot import manifest_videos

    if cfg.dataset.reader == "manifest":
        return manifest_videos(cfg.dataset.path)
    from .registry import get_domain

    if not cfg.domain:
        raise HVLInputError(f"dataset.reader '{cfg.dataset.reader}' belongs to a domain: set 'domain' in the config")
    d = get_domain(cfg.domain)
    if cfg.dataset.reader not in d.readers:
        raise HVLInputError(f"domain '{cfg.domain}' has no reader '{cfg.dataset.reader}'; it has {sorted(d.readers)}")
    return d.readers[cfg.dataset.reader](cfg.dataset.path, **cfg.dataset.options)


def zeroshot_main(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    from .checkpoint import load_model
    from .registry import resolve_prompt_file
    from .tracking import log_files, log_json, log_metrics, start_eval_run
    from .zeroshot import check_inputs, evaluate, format_table

    cfg: ZeroShotConfig = _load_config(args.config, ZeroShotConfig)  # type: ignore[assignment]
    if args.prompts:
        cfg.prompts = args.prompts
    prompt_path = resolve_prompt_file(cfg.prompts)
    prompts = load_prompt_file(prompt_path)
    level = args.level or cfg.level or prompts.level or "phase"
    videos = _videos(cfg)
    check_inputs(videos, prompts)  # data errors first: they are cheaper to find than a model is to load
    model, meta = load_model(args.ckpt, map_location="cuda" if torch.cuda.is_available() else "cpu")
    image_size = cfg.image_size or meta.get("image_size") or 64
    t0 = time.perf_counter()
    result = evaluate(model, videos, prompts, level, fps=cfg.fps, image_size=image_size, batch_size=cfg.batch_size,
                      num_workers=cfg.num_workers, progress=not args.no_progress)
    result.update(prompt_file=str(prompt_path), checkpoint=str(args.ckpt), seconds=round(time.perf_counter() - t0, 2))
    print(format_table(result))
    if args.json:
        print(f"wrote {write_json(args.json, result)}")
    if not args.no_mlflow:
        run_id = start_eval_run(cfg.experiment, meta.get("mlflow_run_id"))
        tag = Path(prompt_path).stem
        log_metrics(run_id, {f"zeroshot/{tag}/{k}": result[k] for k in ("accuracy", "f1_macro", "jaccard")},
                    {"zeroshot_level": level, "zeroshot_fps": cfg.fps})
        log_files(run_id, {"prompts": prompt_path})
        log_json(run_id, result, f"zeroshot/{tag}.json")
        print(f"logged to MLflow run {run_id}")
    return result


# ----------------------------------------------------------------- demo
def demo_main(args: argparse.Namespace) -> None:
    from .registry import get_domain

    d = get_domain(args.domain)
    summary = d.demo(args.out, seed=args.seed)
    print(json.dumps(summary, indent=2, default=str))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="hvl", description=__doc__,
                                epilog="Training: hvl {fit,validate,test,predict} --config recipes/<domain>/<recipe>.yaml")
    sub = p.add_subparsers(dest="command", required=True)
    d = sub.add_parser("demo", help="generate a domain's seeded demo dataset")
    d.add_argument("domain")
    d.add_argument("--out", required=True)
    d.add_argument("--seed", type=int, default=0)
    z = sub.add_parser("zeroshot", help="zero-shot classification of frames with a prompt file")
    z.add_argument("--config", required=True)
    z.add_argument("--ckpt", required=True)
    z.add_argument("--json", help="write the metrics here")
    z.add_argument("--prompts", help="override the config's prompt file (path or <domain>:<name>)")
    z.add_argument("--level", help="override the embedding level")
    z.add_argument("--no-mlflow", action="store_true")
    z.add_argument("--no-progress", action="store_true")
    sub.add_parser("domains", help="list installed domains")
    for name, (module, help_) in MODULE_COMMANDS.items():
        importlib.import_module(module).add_arguments(sub.add_parser(name, help=help_, description=help_))
    for name in LIGHTNING_COMMANDS:
        sub.add_parser(name, help=f"Lightning CLI: {name} (see `hvl {name} --help`)", add_help=False)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    _quiet_env()
    try:
        if argv and argv[0] in LIGHTNING_COMMANDS:
            lightning_main(argv)
            return 0
        args = build_parser().parse_args(argv)
        if args.command == "demo":
            demo_main(args)
        elif args.command == "zeroshot":
            zeroshot_main(args)
        elif args.command in MODULE_COMMANDS:
            importlib.import_module(MODULE_COMMANDS[args.command][0]).run(args)
        elif args.command == "domains":
            from .registry import available, get_domain

            for name in sorted(available()):
                print(f"{name}: {get_domain(name).description}")
        return 0
    except (HVLInputError, FileNotFoundError) as e:
        print(f"hvl: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
