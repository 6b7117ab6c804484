"""``hvl serve --index <index>``: the search page (and, with ``--zeroshot``, the review page) over an index; or
``hvl serve --zeroshot <dir> --videos <folder>``: the review page alone."""
from __future__ import annotations

import argparse

from .options import add_model_arguments, model_source


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--index", help="folder written by `hvl index`: the search page (without it, the review page "
                                   "alone: --zeroshot and --videos)")
    p.add_argument("--zeroshot", help="folder written by `hvl zeroshot --predictions` or `hvl predict --out` "
                                      "(timelines without ground truth): adds the review page /review")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default loopback; others need --token)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--token", help="shared secret: required on every request (open /?token=<token> once)")
    p.add_argument("--allowed-host", action="append", metavar="NAME",
                   help="a name this server may be reached by, besides 127.0.0.1, localhost, [::1] and --host "
                        "(requests with another Host header get 421: DNS rebinding); repeatable")
    p.add_argument("--videos", help="the one folder whose videos may be served (default: the videos folder "
                                    "index.json records; needed without --index); videos outside it are listed but "
                                    "not played")
    p.add_argument("--queries", help="query set the testers' judgements grow (default <index>/queries.yaml)")
    p.add_argument("--cache", help="thumbnail cache folder (default <index>/thumbnails)")
    add_model_arguments(p, required=False, default="the model index.json names, refused unless it is that model")
    p.add_argument("--exact", action="store_true", help="ignore the approximate index")
    p.add_argument("--backend-url", help="the vector database server of an index built with --backend-url (the same "
                                         "URL; QDRANT_API_KEY from the environment): a server that index.json "
                                         "names is never contacted unless given here")
    p.add_argument("--max-upload-mb", type=float, default=5.0, help="largest query image accepted (MiB)")


def options(args: argparse.Namespace):
    from ..search.serve.server import ServeOptions

    return ServeOptions(index=args.index, zeroshot=args.zeroshot, host=args.host, port=args.port, token=args.token,
                        allowed_hosts=tuple(args.allowed_host or ()), videos=args.videos, queries=args.queries,
                        cache=args.cache, source=model_source(args), exact=args.exact, backend_url=args.backend_url,
                        max_upload_mb=args.max_upload_mb)


def build(args: argparse.Namespace):
    """The app ``run`` would serve, without serving it (what tests drive with a TestClient)."""
    from ..search.serve.server import build_app

    return build_app(options(args))


def run(args: argparse.Namespace) -> None:
    from ..search.serve.server import serve

    serve(options(args))
