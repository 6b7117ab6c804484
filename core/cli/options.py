"""The options several commands share, declared once: the model flags, ``--json PATH`` and the evaluation tail
(``--json`` / ``--no-mlflow`` / ``--no-progress``), and old spellings kept as deprecated aliases.

Nothing here imports torch: a command's ``--help`` stays instant.
"""
from __future__ import annotations

import argparse
import sys
from typing import Any

__all__ = ["PROTOCOL_CHOICES", "add_deprecated_alias", "add_json_argument", "add_model_arguments",
           "add_output_arguments", "add_predictions_arguments", "add_protocol_argument", "model_source", "outputs",
           "predictions_out"]

MODEL_HELP = ("pretrained image-text model used directly, no hvl training: a local HF directory (CLIP, SigLIP) or "
              "<kind>:<file> (e.g. surgvlp:/models/PeskaVLP.pth)")


def add_model_arguments(p: argparse.ArgumentParser, required: bool = True, default: str | None = None) -> None:
    """``--ckpt`` | ``--model`` (one of them: ``required``, else at most one, ``default`` saying what neither
    means), ``--text-model`` and ``--trust-remote-code``: the model of every command that takes one."""
    tail = f" (default: {default})" if default else ""
    g = p.add_mutually_exclusive_group(required=required)
    g.add_argument("--ckpt", help=f"trained hvl checkpoint{tail}")
    g.add_argument("--model", help=f"{MODEL_HELP}{tail}")
    p.add_argument("--text-model", help="text tower / tokenizer directory for --model when separate")
    p.add_argument("--trust-remote-code", action="store_true",
                   help="allow a model directory or checkpoint to run code it ships (off: such models are refused)")


def model_source(args: argparse.Namespace):
    """The :class:`~hvl.core.models.spec.ModelSource` the model flags name."""
    from ..models.spec import ModelSource

    return ModelSource(args.ckpt, args.model, args.text_model, args.trust_remote_code)


def add_predictions_arguments(p: argparse.ArgumentParser) -> None:
    """``--predictions`` / ``--smooth-window`` of ``hvl zeroshot`` and ``hvl adapt``."""
    p.add_argument("--predictions", help="also write per-frame predictions here (a folder; for `hvl serve --zeroshot`)")
    p.add_argument("--smooth-window", type=int, default=5,
                   help="frames of the majority vote for the smoothed prediction in --predictions (odd; default 5)")


def predictions_out(args: argparse.Namespace):
    """The :class:`~hvl.core.evaluation.scoring.PredictionsOut` of :func:`add_predictions_arguments`."""
    from ..evaluation.scoring import PredictionsOut

    return PredictionsOut(args.predictions, args.smooth_window)


# hvl.core.evaluation.metrics.PROTOCOLS, repeated so that --help does not import torch (tests/test_protocols.py
# checks the two agree)
PROTOCOL_CHOICES = ("strict", "relaxed", "relaxed-fixed")


def add_protocol_argument(p: argparse.ArgumentParser) -> None:
    """``--protocol`` of ``hvl zeroshot`` and ``hvl adapt``: which metric protocol the reported numbers follow."""
    p.add_argument("--protocol", choices=PROTOCOL_CHOICES,
                   help="metric protocol (default: the config's protocol, else strict): strict = accuracy / macro-F1 / "
                        "Jaccard per video, then the mean over videos (the zero-shot papers); relaxed = the M2CAI / "
                        "Cholec80 scripts of supervised work (10 s tolerance at phase boundaries, per-phase "
                        "precision / recall / Jaccard) as released; relaxed-fixed = the same with the released "
                        "script's boundary bug fixed. The strict numbers are always kept in the JSON")


class _DeprecatedAlias(argparse.Action):
    """An old spelling of an option: stores into the new one's ``dest`` and says so on stderr."""

    def __init__(self, option_strings: list[str], dest: str, new: str, **kwargs: Any):
        self.new = new
        super().__init__(option_strings, dest, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        print(f"hvl: warning: {option_string} is deprecated, use {self.new}", file=sys.stderr)
        setattr(namespace, self.dest, values)


def add_deprecated_alias(p: Any, old: str, new: str, dest: str, **kwargs: Any) -> None:
    """``old`` still works (hidden from ``--help``), as ``new`` with a warning."""
    p.add_argument(old, dest=dest, action=_DeprecatedAlias, new=new, help=argparse.SUPPRESS, **kwargs)


class _JsonSwitch(argparse.Action):
    """``--json`` without a value, the old on/off switch of ``hvl search`` / ``hvl prepare``: JSON on stdout, as
    ``--json -`` does, with a warning."""

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        if values is None:
            print(f"hvl: warning: {option_string} without a value is deprecated (it printed JSON instead of the "
                  "table); use --json - for that, or --json PATH to write a file", file=sys.stderr)
            values = "-"
        setattr(namespace, self.dest, values)


def add_json_argument(p: Any, what: str, was_switch: bool = False) -> None:
    """``--json PATH``: write ``what`` as JSON to PATH; ``-``: print it on stdout instead of the table.
    ``was_switch``: the command's ``--json`` used to take no value, which still works, deprecated."""
    help_ = f"write {what} as JSON to PATH (-: print the JSON on stdout instead of the table)"
    if was_switch:
        p.add_argument("--json", metavar="PATH", nargs="?", action=_JsonSwitch, help=help_)
    else:
        p.add_argument("--json", metavar="PATH", help=help_)


def add_output_arguments(p: argparse.ArgumentParser, what: str = "the metrics") -> None:
    """The evaluation tail: ``--json PATH``, ``--no-mlflow``, ``--no-progress``."""
    add_json_argument(p, what)
    p.add_argument("--no-mlflow", action="store_true", help="do not log the metrics to MLflow")
    p.add_argument("--no-progress", action="store_true")


def outputs(args: argparse.Namespace):
    """The :class:`~hvl.core.outputs.Outputs` of :func:`add_output_arguments`."""
    from ..outputs import Outputs

    return Outputs(json=args.json, mlflow=not args.no_mlflow, progress=not args.no_progress)
