"""``hvl search "<text>" --index <index>``: ranked videos and their best moments, as a table or JSON."""
from __future__ import annotations

import argparse
import json
from typing import Any

from ..query import AGGREGATIONS

__all__ = ["add_arguments", "run"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("query", help="text, e.g. \"a car falling through the floor\"")
    p.add_argument("--index", required=True, help="folder written by `hvl index`")
    p.add_argument("--k", type=int, default=10, help="videos to return")
    p.add_argument("--group", "--game", dest="group",
                   help="search only this group's videos, exact (the folder under the video root; GamePhysics: a "
                        "game; --game is the old spelling)")
    p.add_argument("--agg", choices=AGGREGATIONS, default="max", help="frame scores -> video score")
    p.add_argument("--topk", type=int, default=3, help="frames averaged by --agg topk-mean")
    p.add_argument("--pool", type=int, default=1000, help="frame pool for --agg count (GamePhysics: 1000)")
    p.add_argument("--exact", action="store_true", help="ignore the approximate index")
    p.add_argument("--ckpt", help="checkpoint for the text encoder (default: the one in index.json)")
    p.add_argument("--model", help="pretrained model directory for the text encoder (default: the one in index.json)")
    p.add_argument("--text-model", help="text tower directory for --model when separate")
    p.add_argument("--trust-remote-code", action="store_true")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")


def run(args: argparse.Namespace) -> dict[str, Any]:
    from ...errors import HVLInputError
    from ..query import embed_queries, format_table, load_index, model_for_index, search

    if args.k < 1:
        raise HVLInputError(f"--k must be >= 1 (got {args.k})")
    idx = load_index(args.index, use_ann=not args.exact)
    try:
        model = model_for_index(idx, args.ckpt, args.model, args.text_model, args.trust_remote_code)
        q = embed_queries(model, [args.query], idx.header["level"])[0]
        res = search(idx, q, k=args.k, agg=args.agg, topk=args.topk, pool=args.pool, group=args.group,
                     exact=args.exact)
    finally:
        idx.close()
    res = {"query": args.query, "index": str(args.index), "level": idx.header["level"]} | res
    print(json.dumps(res, indent=2) if args.json else format_table(args.query, res))
    return res
