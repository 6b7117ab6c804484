"""``hvl``: every subcommand in one package, one module each (``hvl.core.cli.<command>``).

A command module only declares its options (``add_arguments(parser)``) and turns them into one typed set of
options for one library entry point (``run(args)``); the library never sees an argparse ``Namespace``, and argparse
is imported nowhere else (``tests/test_layout.py``). Options several commands share are declared once, in
:mod:`.options`. ``fit`` / ``validate`` / ``test`` are LightningCLI's (:mod:`.lightning`); ``predict`` is hvl's own.

Only the invoked command's module is imported, so ``hvl --help`` does not pay for torch. Nothing imports this
package; it may import every part of :mod:`hvl.core`.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from ..errors import HVLInputError
from ..extras import COMMAND_EXTRAS, require_extras
from .lightning import LIGHTNING_COMMANDS, lightning_main, quiet_env

__all__ = ["LIGHTNING_COMMANDS", "MODULE_COMMANDS", "build_parser", "lightning_main", "main"]

# subcommand -> (module with ``add_arguments(parser)`` and ``run(args)``, one-line help), in `hvl --help`'s order
MODULE_COMMANDS = {
    "demo": ("hvl.core.cli.demo", "generate a domain's seeded demo dataset"),
    "domains": ("hvl.core.cli.domains", "list installed domains"),
    "zeroshot": ("hvl.core.cli.zeroshot", "zero-shot classification of frames with a prompt file"),
    "adapt": ("hvl.core.cli.adapt", "fit a linear or temporal head on frozen embeddings of labelled videos"),
    "predict": ("hvl.core.cli.predict", "timelines of unlabelled videos: per-frame class probabilities and segments "
                                        "(resumable; Cholec80, CSV, JSON, ...)"),
    "label-studio": ("hvl.core.cli.label_studio", "Label Studio: a project's labelling config, and an export of "
                                                  "corrected timelines -> a labelled manifest"),
    "retrieval": ("hvl.core.cli.retrieval", "text <-> video retrieval (R@1/5/10, MedR, MeanR) with a trained model"),
    "index": ("hvl.core.cli.index", "embed the frames of a video folder into a searchable index (resumable)"),
    "search": ("hvl.core.cli.search", "search an index with a text query: ranked videos and their best moments"),
    "search-eval": ("hvl.core.cli.search_eval", "evaluate text -> video search on a query set (recall@k, mAP)"),
    "bugsearch-eval": ("hvl.core.cli.search_eval", "the old name of search-eval"),
    "wise-ft": ("hvl.core.cli.wise_ft", "weight-space ensemble of a fine-tuned checkpoint and its zero-shot model"),
    "prepare": ("hvl.core.cli.prepare",
                "raw videos + transcripts (+ chapters, abstracts) -> train/val/test manifests and a report"),
    "probe": ("hvl.core.cli.probe", "what hvl sees in each video (codec, size, rotation, frame rate, decoder)"),
    "serve": ("hvl.core.cli.serve", "search and review web app over an index (127.0.0.1 by default)"),
    "recipes": ("hvl.core.cli.recipes", "list the shipped recipes (`--config <domain>/<name>`), or copy one out to edit"),
    "notebook": ("hvl.core.cli.notebook", "list the shipped notebooks, or copy one out to run with papermill"),
    "export": ("hvl.core.cli.export", "a model as ONNX graphs for onnxruntime (`hvl export onnx`; `hvl predict --onnx`)"),
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The whole parser; only ``command``'s own arguments are filled in (the others are imported on use)."""
    from importlib.metadata import version

    p = argparse.ArgumentParser(prog="hvl", description="hvl: hierarchical video-language learning, zero-shot "
                                                        "recognition and text -> video search",
                                epilog="Training: hvl {fit,validate,test} --config <domain>/<recipe> "
                                       "(a shipped recipe, see `hvl recipes`) or --config <file>.yaml")
    p.add_argument("--version", action="version", version=f"hvl {version('hvl')}")
    sub = p.add_subparsers(dest="command", required=True)
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
    quiet_env()
    try:
        from ..recipes import resolve_config_args

        # one place for every command: `--config surgical/demo_pretrain` names a shipped recipe, a path stays a path
        argv = resolve_config_args(argv)
        if from_console:
            sys.argv[1:] = argv  # LightningCLI reads sys.argv itself
        if argv and argv[0] in LIGHTNING_COMMANDS:
            lightning_main(None if from_console else argv)
            return 0
        args = build_parser(argv[0] if argv else None).parse_args(argv)
        if args.command in COMMAND_EXTRAS:
            require_extras(COMMAND_EXTRAS[args.command], needed_by=f"hvl {args.command}")
        importlib.import_module(MODULE_COMMANDS[args.command][0]).run(args)
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
