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


WILDCARDS = ("0.0.0.0", "::", "")


def build(args: argparse.Namespace):
    """The app for ``args`` (everything loaded and checked before a socket is opened)."""
    from .app import LOOPBACK_NAMES, Limits, create_app, host_of
    from .engine import SearchEngine
    from .media import ThumbnailCache
    from .queryset import QuerySetStore
    from .review import load_review

    if not is_loopback(args.host) and not args.token:
        raise HVLInputError(f"--host {args.host} is reachable from other machines; pass --token <secret> "
                            "(requests without it get 401), or keep the default --host 127.0.0.1")
    if args.token is not None and len(args.token) < 8:
        raise HVLInputError("--token must be at least 8 characters")
    if args.ckpt and args.model:
        raise HVLInputError("give at most one of --ckpt or --model (default: the model index.json names)")
    allowed = set(LOOPBACK_NAMES) | {host_of(h) for h in (args.allowed_host or [])}
    if args.host not in WILDCARDS:
        allowed.add(host_of(args.host) if args.host.startswith("[") else args.host.lower())
    index = Path(args.index)
    review = load_review(args.zeroshot) if args.zeroshot else None
    engine = SearchEngine.load(index, args.ckpt, args.model, args.text_model, args.trust_remote_code,
                               exact=args.exact, videos=args.videos)
    thumbs = ThumbnailCache(args.cache or index / "thumbnails")
    queries = QuerySetStore(args.queries or index / "queries.yaml")
    limits = Limits(max_upload_bytes=int(args.max_upload_mb * (1 << 20)),
                    max_body_bytes=int(args.max_upload_mb * (1 << 20)) + (1 << 20), allowed_hosts=frozenset(allowed))
    return create_app(engine, thumbs, queries, review, token=args.token, limits=limits)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--index", required=True, help="folder written by `hvl index`")
    p.add_argument("--zeroshot", help="folder written by `hvl zeroshot --predictions`: adds the review page /review")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default loopback; others need --token)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--token", help="shared secret: required on every request (open /?token=<token> once)")
    p.add_argument("--allowed-host", action="append", metavar="NAME",
                   help="a name this server may be reached by, besides 127.0.0.1, localhost, [::1] and --host "
                        "(requests with another Host header get 421: DNS rebinding); repeatable")
    p.add_argument("--videos", help="the one folder whose videos may be served (default: the videos folder "
                                    "index.json records); videos outside it are listed but not played")
    p.add_argument("--queries", help="query set the testers' judgements grow (default <index>/queries.yaml)")
    p.add_argument("--cache", help="thumbnail cache folder (default <index>/thumbnails)")
    p.add_argument("--ckpt", help="checkpoint for the encoders (default: the model index.json names; "
                                  "refused unless it is that model, by sha256)")
    p.add_argument("--model", help="pretrained model directory for the encoders, for an index built with --model "
                                   "(default: the one index.json names; refused unless it is that model)")
    p.add_argument("--text-model", help="text tower directory for --model when separate")
    p.add_argument("--trust-remote-code", action="store_true",
                   help="allow the model directory to run code it ships (off: such models are refused)")
    p.add_argument("--exact", action="store_true", help="ignore the approximate index")
    p.add_argument("--max-upload-mb", type=float, default=5.0, help="largest query image accepted (MiB)")


def run(args: argparse.Namespace) -> None:
    import uvicorn

    app = build(args)
    engine = app.state.engine
    playable = sum(not isinstance(f, str) for f in engine.files.values())
    print(f"hvl serve: serving videos from {engine.folder.root} only ({playable} of {len(engine.files)} playable)")
    print(f"hvl serve: http://{args.host}:{args.port}/" + (f"  review: http://{args.host}:{args.port}/review"
                                                           if args.zeroshot else ""))
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
