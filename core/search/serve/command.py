"""`hvl serve`: the search page (and, with ``--zeroshot``, the review page) over an index, with uvicorn."""
from __future__ import annotations

import argparse
import ipaddress
from pathlib import Path

from ...errors import HVLInputError


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def build(args: argparse.Namespace):
    """The app for ``args`` (everything loaded and checked before a socket is opened)."""
    from .app import Limits, create_app
    from .engine import SearchEngine
    from .media import ThumbnailCache
    from .queryset import QuerySetStore
    from .review import load_review

    if not is_loopback(args.host) and not args.token:
        raise HVLInputError(f"--host {args.host} is reachable from other machines; pass --token <secret> "
                            "(requests without it get 401), or keep the default --host 127.0.0.1")
    if args.token is not None and len(args.token) < 8:
        raise HVLInputError("--token must be at least 8 characters")
    index = Path(args.index)
    review = load_review(args.zeroshot) if args.zeroshot else None
    engine = SearchEngine.load(index, args.ckpt, exact=args.exact)
    thumbs = ThumbnailCache(args.cache or index / "thumbnails")
    queries = QuerySetStore(args.queries or index / "queries.yaml")
    limits = Limits(max_upload_bytes=int(args.max_upload_mb * (1 << 20)),
                    max_body_bytes=int(args.max_upload_mb * (1 << 20)) + (1 << 20))
    return create_app(engine, thumbs, queries, review, token=args.token, limits=limits)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--index", required=True, help="folder written by `hvl index`")
    p.add_argument("--zeroshot", help="folder written by `hvl zeroshot --predictions`: adds the review page /review")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default loopback; others need --token)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--token", help="shared secret: required on every request (open /?token=<token> once)")
    p.add_argument("--queries", help="query set the testers' judgements grow (default <index>/queries.yaml)")
    p.add_argument("--cache", help="thumbnail cache folder (default <index>/thumbnails)")
    p.add_argument("--ckpt", help="checkpoint for the encoders (default: the one in index.json)")
    p.add_argument("--exact", action="store_true", help="ignore the approximate index")
    p.add_argument("--max-upload-mb", type=float, default=5.0, help="largest query image accepted (MiB)")


def run(args: argparse.Namespace) -> None:
    import uvicorn

    app = build(args)
    print(f"hvl serve: http://{args.host}:{args.port}/" + (f"  review: http://{args.host}:{args.port}/review"
                                                           if args.zeroshot else ""))
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
