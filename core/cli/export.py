"""``hvl export onnx (--ckpt | --model) --out DIR``: a model as ONNX graphs for onnxruntime (frame tower, text tower
with its tokenizer, each level's heads) and a manifest; ``hvl predict --onnx DIR`` runs on the folder."""
from __future__ import annotations

import argparse

from .options import add_model_arguments, model_source


def add_arguments(p: argparse.ArgumentParser) -> None:
    formats = p.add_subparsers(dest="format", required=True, metavar="FORMAT")
    onnx = formats.add_parser("onnx", help="ONNX graphs for onnxruntime, with the tokenizer and a manifest",
                              description="Export the frame tower, the text tower (its tokenizer saved beside it) and "
                                          "each level's heads as ONNX graphs with a dynamic batch axis, checked "
                                          "against torch with onnxruntime; the folder is written whole or not at all")
    add_model_arguments(onnx)
    onnx.add_argument("--out", required=True, metavar="DIR",
                      help="a new or empty folder, or an earlier export (replaced); any other folder is refused")
    onnx.add_argument("--opset", type=int, default=18, help="ONNX opset (default 18)")
    onnx.add_argument("--no-progress", action="store_true")


def run(args: argparse.Namespace) -> None:
    from ..inference.onnx_export import ExportOptions, export_onnx, format_export

    manifest = export_onnx(ExportOptions(source=model_source(args), out=args.out, opset=args.opset,
                                         progress=not args.no_progress))
    print(format_export(manifest, args.out))
