"""``hvl search "<text>" --index <index>``: ranked videos and their best moments, as a table or JSON."""
from __future__ import annotations

import argparse

from .options import add_json_argument, add_model_arguments, model_source


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..search.query import AGGREGATIONS

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
    p.add_argument("--backend-url", help="the vector database server of an index built with --backend-url (the same "
                                         "URL; QDRANT_API_KEY from the environment): a server that index.json "
                                         "names is never contacted unless given here")
    add_model_arguments(p, required=False, default="the model index.json names, refused unless it is that model")
    add_json_argument(p, "the ranked videos", was_switch=True)


def run(args: argparse.Namespace) -> None:
    from ..search.runs import SearchOptions, run_search

    run_search(SearchOptions(query=args.query, index=args.index, k=args.k, group=args.group, agg=args.agg,
                             topk=args.topk, pool=args.pool, exact=args.exact, backend_url=args.backend_url,
                             source=model_source(args), json=args.json))
