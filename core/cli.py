"""`hvl` — Lightning CLI for training (fit/validate/test/predict) plus demo and zero-shot commands."""
from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import sys
import warnings

from .errors import HVLInputError

LIGHTNING_COMMANDS = ("fit", "validate", "test", "predict")
# Commands that live in their own module, each with ``add_arguments(parser)`` and ``run(args)``. Only the
# invoked command's module is imported, so `hvl --help` and `hvl demo` do not pay for torch.
MODULE_COMMANDS = {
    "zeroshot": ("hvl.core.evaluation.zeroshot.command", "zero-shot classification of frames with a prompt file"),
    "adapt": ("hvl.core.evaluation.adapt.command", "fit a linear or temporal head on frozen embeddings of labelled videos"),
    "retrieval": ("hvl.core.evaluation.retrieval_command",
                  "text <-> video retrieval (R@1/5/10, MedR, MeanR) with a trained model"),
    "index": ("hvl.core.search.commands.index", "embed the frames of a video folder into a searchable index (resumable)"),
    "search": ("hvl.core.search.commands.search", "search an index with a text query: ranked videos and their best moments"),
    "search-eval": ("hvl.core.search.commands.evaluate", "evaluate text -> video search on a query set (recall@k, mAP)"),
    "bugsearch-eval": ("hvl.core.search.commands.evaluate", "the old name of search-eval"),
    "wise-ft": ("hvl.core.models.wiseft_command",
                "weight-space ensemble of a fine-tuned checkpoint and its zero-shot model"),
    "prepare": ("hvl.core.data.prepare.command",
                "raw videos + transcripts (+ chapters, abstracts) -> train/val/test manifests and a report"),
    "probe": ("hvl.core.data.probe_command",
              "what hvl sees in each video (codec, size, rotation, frame rate, decoder)"),
    "serve": ("hvl.core.search.serve.command", "search and review web app over an index (127.0.0.1 by default)"),
    "recipes": ("hvl.core.recipes", "list the shipped recipes (`--config <domain>/<name>`), or copy one out to edit"),
    "notebook": ("hvl.core.notebooks", "list the shipped notebooks, or copy one out to run with papermill"),
}


def _quiet_env() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    # Lightning advertises its cloud logger and model registry on every run without them (hvl logs to MLflow on
    # purpose), and its own pytree helper calls a torch API that torch >= 2.10 deprecates: nothing a user can change
    logging.getLogger("pytorch_lightning.utilities.rank_zero").addFilter(_TIPS)
    warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated")


class _DropLightningTips(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not any(ad in str(record.msg) for ad in ("litlogger", "litmodels"))


_TIPS = _DropLightningTips()


def lightning_main(argv: list[str] | None) -> None:
    """``argv`` None: LightningCLI reads ``sys.argv`` itself (passing it explicitly makes it warn)."""
    from pytorch_lightning.cli import LightningCLI

    from .data.datamodule import HVLDataModule
    from .models.module import HierarchicalVLM
    from .tracking import MLflowSaveConfig

    LightningCLI(HierarchicalVLM, HVLDataModule, subclass_mode_model=True, subclass_mode_data=True,
                 save_config_callback=MLflowSaveConfig, save_config_kwargs={"save_to_log_dir": False,
                                                                           "overwrite": True},
                 args=argv, auto_configure_optimizers=False)


# ----------------------------------------------------------------- demo
def demo_main(args: argparse.Namespace) -> None:
    from .registry import get_domain

    d = get_domain(args.domain)
    # only domains with presets accept these keywords
    extra = {k: v for k, v in (("preset", args.preset), ("procedure", args.procedure)) if v}
    if extra and not d.has_presets:
        flag = f"--{next(iter(extra))}"
        raise HVLInputError(f"{flag}: the {args.domain} demo has no presets or procedures; drop {flag}")
    summary = d.demo(args.out, seed=args.seed, **extra)
    print(json.dumps(summary, indent=2, default=str))


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The whole parser; only ``command``'s own arguments are filled in (the others are imported on use)."""
    from importlib.metadata import version

    p = argparse.ArgumentParser(prog="hvl", description=__doc__,
                                epilog="Training: hvl {fit,validate,test,predict} --config <domain>/<recipe> "
                                       "(a shipped recipe, see `hvl recipes`) or --config <file>.yaml")
    p.add_argument("--version", action="version", version=f"hvl {version('hvl')}")
    sub = p.add_subparsers(dest="command", required=True)
    d = sub.add_parser("demo", help="generate a domain's seeded demo dataset")
    d.add_argument("domain")
    d.add_argument("--out", required=True)
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--preset", default=None, help="a domain's demo preset (surgical: default | realistic | "
                                                  "realistic_centre_b)")
    d.add_argument("--procedure", default=None, help="the operation a surgical demo draws: cholecystectomy "
                                                     "(Cholec80's phases, default) | hysterectomy (AutoLaparo's)")
    sub.add_parser("domains", help="list installed domains")
    for name, (module, help_) in MODULE_COMMANDS.items():
        sp = sub.add_parser(name, help=help_, description=help_)
        if name == command:
            importlib.import_module(module).add_arguments(sp)
    for name in LIGHTNING_COMMANDS:
        sub.add_parser(name, help=f"Lightning CLI: {name} (see `hvl {name} --help`)", add_help=False)
    return p


def main(argv: list[str] | None = None) -> int:
    from_console = argv is None
    argv = list(sys.argv[1:] if argv is None else argv)
    _quiet_env()
    try:
        from .recipes import resolve_config_args

        # one place for every command: `--config surgical/demo_pretrain` names a shipped recipe, a path stays a path
        argv = resolve_config_args(argv)
        if from_console:
            sys.argv[1:] = argv  # LightningCLI reads sys.argv itself
        if argv and argv[0] in LIGHTNING_COMMANDS:
            lightning_main(None if from_console else argv)
            return 0
        args = build_parser(argv[0] if argv else None).parse_args(argv)
        if args.command == "demo":
            demo_main(args)
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
    except Exception as e:
        # LightningCLI builds the model inside jsonargparse, which re-raises a model's own config error as a
        # type-union mismatch; the error a user can act on is further down the chain
        cause = _user_error(e)
        if cause is None:
            raise
        print(f"hvl: error: {cause}", file=sys.stderr)
        return 2


def _user_error(e: BaseException) -> HVLInputError | None:
    seen: set[int] = set()
    while e is not None and id(e) not in seen:
        if isinstance(e, HVLInputError):
            return e
        seen.add(id(e))
        e = e.__cause__ or e.__context__
    return None


if __name__ == "__main__":
    sys.exit(main())
