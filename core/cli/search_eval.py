"""``hvl search-eval --config <yaml> (--ckpt | --model)`` (old name ``bugsearch-eval``): text -> video search
quality on a query set."""
from __future__ import annotations

import argparse

from .options import add_model_arguments, add_output_arguments, model_source, outputs


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..search.query import AGGREGATIONS

    p.add_argument("--config", required=True, help="e.g. recipes/gameplay/demo_eval.yaml")
    add_model_arguments(p)
    p.add_argument("--agg", choices=AGGREGATIONS, help="override the config's aggregation")
    p.add_argument("--backend-url", help="the vector database server for the config's backend (overrides its "
                                         "backend_url; QDRANT_API_KEY from the environment): a server that an "
                                         "existing index.json names is never contacted unless given")
    add_output_arguments(p)


def run(args: argparse.Namespace) -> None:
    from ..search.runs import SearchEvalOptions, run_search_eval

    run_search_eval(SearchEvalOptions(config=args.config, source=model_source(args), agg=args.agg,
                                      backend_url=args.backend_url, outputs=outputs(args)))
