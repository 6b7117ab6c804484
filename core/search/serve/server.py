"""`hvl serve`: the search page (and, with ``zeroshot``, the review page) over an index, with uvicorn.

:func:`build_app` loads and checks everything before a socket is opened; :func:`serve` runs it.
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path

from ...errors import HVLInputError
from ...io import confined_dir
from ...models.spec import ModelSource

__all__ = ["WILDCARDS", "ServeOptions", "build_app", "is_loopback", "serve"]

WILDCARDS = ("0.0.0.0", "::", "")


@dataclass(frozen=True)
class ServeOptions:
    """``hvl serve``'s options (defaults: the command's)."""

    index: str | None = None  # None: the review page alone (then ``zeroshot`` and ``videos`` are needed)
    zeroshot: str | None = None  # a `hvl zeroshot --predictions` or `hvl predict --out` folder: the review page
    host: str = "127.0.0.1"
    port: int = 8000
    token: str | None = None
    allowed_hosts: tuple[str, ...] = ()
    videos: str | None = None
    queries: str | None = None
    cache: str | None = None
    source: ModelSource = field(default_factory=ModelSource)  # default: the model index.json names
    exact: bool = False
    backend_url: str | None = None
    max_upload_mb: float = 5.0


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def build_app(opts: ServeOptions):
    """The app ``hvl serve`` serves (everything loaded and checked before a socket is opened)."""
    from .app import LOOPBACK_NAMES, Limits, create_app, host_of
    from .engine import SearchEngine
    from .files import ServedFolder
    from .media import ThumbnailCache
    from .queryset import QuerySetStore
    from .review import load_review

    if not is_loopback(opts.host) and not opts.token:
        raise HVLInputError(f"--host {opts.host} is reachable from other machines; pass --token <secret> "
                            "(requests without it get 401), or keep the default --host 127.0.0.1")
    if opts.token is not None and len(opts.token) < 8:
        raise HVLInputError("--token must be at least 8 characters")
    src = opts.source
    if src.ckpt and src.model:
        raise HVLInputError("give at most one of --ckpt or --model (default: the model index.json names)")
    for name in opts.allowed_hosts:
        if not host_of(name):
            raise HVLInputError(f"--allowed-host {name!r} is not a host name, IPv4 address or [IPv6] address")
    allowed = set(LOOPBACK_NAMES) | {host_of(h) for h in opts.allowed_hosts}
    if opts.host not in WILDCARDS:
        allowed.add(host_of(opts.host) if opts.host.startswith("[") else opts.host.lower())
    limits = Limits(max_upload_bytes=int(opts.max_upload_mb * (1 << 20)),
                    max_body_bytes=int(opts.max_upload_mb * (1 << 20)) + (1 << 20), allowed_hosts=frozenset(allowed))
    if opts.index is None:
        if not opts.zeroshot:
            raise HVLInputError("give --index <index> (the search page), --zeroshot <predictions or timelines> (the "
                                "review page), or both")
        if not opts.videos:
            raise HVLInputError("--zeroshot without --index needs --videos <folder>: the one folder whose videos the "
                                "review page may play (a predictions folder names files; it does not decide what "
                                "this server exposes)")
        return create_app(None, None, None, load_review(opts.zeroshot), token=opts.token, limits=limits,
                          review_folder=ServedFolder(opts.videos, "--videos"))
    index = Path(opts.index)
    review = load_review(opts.zeroshot) if opts.zeroshot else None
    engine = SearchEngine.load(index, src.ckpt, src.model, src.text_model, src.trust_remote_code,
                               exact=opts.exact, videos=opts.videos, backend_url=opts.backend_url)
    # --cache is the user's choice; the default lies in the index folder, which is shared: no link there
    thumbs = ThumbnailCache(opts.cache or confined_dir(index, "thumbnails", create=True))
    queries = QuerySetStore(opts.queries or index / "queries.yaml")
    return create_app(engine, thumbs, queries, review, token=opts.token, limits=limits)


def serve(opts: ServeOptions) -> None:
    """Build the app and serve it until interrupted."""
    import uvicorn

    app = build_app(opts)
    engine = app.state.engine
    if engine is not None:
        playable = sum(not isinstance(f, str) for f in engine.files.values())
        print(f"hvl serve: serving videos from {engine.folder.root} only ({playable} of {len(engine.files)} playable)")
    else:
        print(f"hvl serve: the review page only, serving videos from {Path(opts.videos).resolve()} only")
    print(f"hvl serve: http://{opts.host}:{opts.port}/" + (f"  review: http://{opts.host}:{opts.port}/review"
                                                           if opts.zeroshot else ""))
    uvicorn.run(app, host=opts.host, port=opts.port, log_level="warning")
