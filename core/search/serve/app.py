"""The FastAPI app of `hvl serve`: a JSON API (its OpenAPI schema at ``/openapi.json``) and the two pages it serves.

What it may send back is fixed when it starts: the static pages of this package, the videos listed
in the index (and in the zero-shot predictions), thumbnails of indexed frames, and JSON. Requests name
videos by id; an id is a dictionary key, so no part of a request ever becomes a file-system path.
"""
from __future__ import annotations

import csv
import io
import ipaddress
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import FastAPI, File, Form, HTTPException, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import ValidationError

from ...errors import HVLInputError
from ...registry import query_types as registry_query_types
from ..backends.base import BackendUnreachable
from .engine import SearchEngine
from .files import FileGone, ServedFile, ServedFolder, VerifiedFileResponse
from .media import ThumbnailCache, UploadError, decode_upload
from .queryset import QuerySetStore
from .review import ReviewSet
from .schemas import (
    MAX_K,
    MAX_POOL,
    MAX_QUERY_CHARS,
    MAX_TOPK,
    ExportRequest,
    FrameSearch,
    Info,
    JudgedQuery,
    Judgement,
    QueriesResponse,
    ReviewDetail,
    ReviewList,
    SearchOptions,
    SearchResponse,
    TextSearch,
)

STATIC = Path(__file__).parent / "static"
TOKEN_COOKIE = "hvl_token"
LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1"})
MAX_ERRORS_SHOWN = 5
API_READS = "/api/"  # GETs that return the index's media and data (pages and their static files stay linkable)
# the pages load only their own scripts, styles and media: text that slipped into markup still cannot run
CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' blob: data:; "
       "media-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'")


@dataclass(frozen=True)
class Limits:
    max_upload_bytes: int = 5 << 20      # an uploaded query image
    max_body_bytes: int = 8 << 20        # a multipart body (the upload and its form fields)
    max_json_bytes: int = 256 << 10      # any other body: the largest, an export of 100 results, is ~40 KB
    allowed_hosts: frozenset[str] = field(default=LOOPBACK_NAMES)


def _field(loc: Any) -> str:
    loc = list(loc or ())
    if loc and loc[0] in ("body", "query", "path", "form", "header", "cookie"):  # where, not which field
        loc = loc[1:]
    return ".".join(str(x)[:40] for x in loc[:4])


def _errors_text(errors: list[dict[str, Any]]) -> str:
    """The first few errors by field and message; the input itself is never echoed (it may be huge, or not encodable)."""
    parts = []
    for e in errors[:MAX_ERRORS_SHOWN]:
        loc = _field(e.get("loc"))
        msg = str(e.get("msg", "invalid"))[:200]
        parts.append(f"field '{loc}': {msg}" if loc else msg)
    more = len(errors) - MAX_ERRORS_SHOWN
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")


def csv_text(text: str) -> str:
    """A text cell a spreadsheet shows as text: one starting ``= + - @`` (or a tab / carriage return) would be
    read as a formula (``=HYPERLINK(...)``), so it gets a leading apostrophe (OWASP's CSV-injection advice)."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


# what a browser sends as Host: a name or IPv4 address, or an IPv6 address in brackets, then an optional port
_HOST = re.compile(r"(?:\[(?P<ip6>[0-9a-f:.]+)\]|(?P<name>[a-z0-9_](?:[a-z0-9_.-]*[a-z0-9_])?))(?::(?P<port>[0-9]{1,5}))?")


def host_of(value: str) -> str:
    """``[::1]:8000`` -> ``::1``, ``Localhost:8000`` -> ``localhost``; ``""`` for any form a browser does not send
    (userinfo ``a:1@b``, text after ``]``, a port that is not a number, a second colon), so that no parser in
    between can read another host out of it."""
    m = _HOST.fullmatch(value.strip().lower())
    if m is None or (m["port"] is not None and not 0 < int(m["port"]) < 65536):
        return ""
    if m["ip6"] is not None:
        try:
            ipaddress.IPv6Address(m["ip6"])
        except ValueError:
            return ""
        return m["ip6"]
    return m["name"]


class _SameOrigin:
    """ASGI middleware against DNS rebinding and cross-site requests.

    * ``Host`` must name this server (``Limits.allowed_hosts``): a page whose own name was rebound to
      127.0.0.1 sends its own name, and gets 421.
    * A request that changes something (any method but GET / HEAD) must come from the server's own pages:
      a cross-site form or ``fetch(..., {mode: 'no-cors'})`` (simple requests skip CORS preflight) carries an
      ``Origin`` or ``Sec-Fetch-Site`` that says so, and gets 403.
    * A read of the API (thumbnails, videos, JSON) that a browser marks ``Sec-Fetch-Site: cross-site`` or
      ``same-site`` gets 403 too (with ``Cross-Origin-Resource-Policy: same-origin`` on every response, for
      browsers that send no ``Sec-Fetch-Site``)."""

    def __init__(self, app: Any, allowed: frozenset[str]):
        self.app, self.allowed = app, allowed

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers") or []}
        host = headers.get("host", "")
        name = host_of(host)
        if not name or name not in self.allowed:
            return await _reply(send, 421, f"this server answers to {sorted(self.allowed)}, not to the Host header "
                                           "sent; add the name with --allowed-host if it is yours")
        site = headers.get("sec-fetch-site")
        if scope["method"] not in ("GET", "HEAD"):
            origin = headers.get("origin")
            if (origin is not None and urlsplit(origin).netloc.lower() != host.lower()) or \
                    site in ("cross-site", "same-site"):
                return await _reply(send, 403, "cross-origin request refused: use the page this server serves")
        elif site in ("cross-site", "same-site") and scope.get("path", "").startswith(API_READS):
            # another site's <img>/<video> would learn which ids exist and their durations, and make this server
            # decode and cache frames; the page itself, a typed URL and non-browser clients send no such value
            return await _reply(send, 403, "cross-site read refused: use the page this server serves")
        await self.app(scope, receive, send)


async def _reply(send: Any, status: int, detail: str) -> None:
    import json

    body = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


class _BodyLimit:
    """ASGI middleware: a body over its limit gets 413 (by Content-Length, or while it streams in); multipart
    bodies (an uploaded image) may be ``multipart`` bytes, every other body ``other`` bytes."""

    def __init__(self, app: Any, multipart: int, other: int):
        self.app, self.multipart, self.other = app, multipart, other

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        is_multipart = headers.get(b"content-type", b"").lower().startswith(b"multipart/form-data")
        limit = self.multipart if is_multipart else self.other
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            return await _reply(send, 413, f"request body over {limit} bytes")
        seen = 0

        async def counted() -> dict:
            nonlocal seen
            msg = await receive()
            seen += len(msg.get("body", b""))
            if seen > limit:
                raise HTTPException(413, f"request body over {limit} bytes")
            return msg

        await self.app(scope, counted, send)


def admit_review_videos(review: ReviewSet, engine: SearchEngine | None,
                        folder: ServedFolder | None = None) -> dict[str, ServedFile]:
    """The videos the review page may play: the predictions' ``path`` fields, admitted by the index's served
    folder, or ``folder`` (``--videos``) without an index (a predictions folder names paths; it does not decide
    what this server exposes)."""
    out = {}
    folder = folder or engine.folder
    for e in review.manifest.videos:
        indexed = engine.files.get(e.video_id) if engine is not None else None
        if isinstance(indexed, ServedFile) and indexed.path == Path(review.videos[e.video_id].path).resolve():
            out[e.video_id] = indexed
            continue
        try:
            out[e.video_id] = folder.admit(review.videos[e.video_id].path)
        except FileGone as err:
            raise HVLInputError(f"{review.root / e.file}: field 'path' of video '{e.video_id}': {err}") from None
    return out


def create_app(engine: SearchEngine | None, thumbs: ThumbnailCache | None, queries: QuerySetStore | None,
               review: ReviewSet | None = None, token: str | None = None, limits: Limits = Limits(),
               review_folder: ServedFolder | None = None) -> FastAPI:
    """The app; ``engine`` None (no index): the review page alone, its videos admitted by ``review_folder``."""
    # no /docs or /redoc: they load their scripts from a CDN, which the CSP blocks (the schema is /openapi.json)
    app = FastAPI(title="hvl serve", version="1", docs_url=None, redoc_url=None,
                  description="Search an hvl index by text or by example, grow a query set, review zero-shot predictions.")

    app.state.engine, app.state.thumbs, app.state.queries, app.state.review = engine, thumbs, queries, review
    app.state.limits = limits
    review_files = admit_review_videos(review, engine, review_folder) if review is not None else {}
    query_types = registry_query_types()

    # ------------------------------------------------------------------ security and errors
    if engine is None:  # the review page alone: what needs an index answers 404, the search page leads to /review
        @app.middleware("http")
        async def review_only(request: Request, call_next):
            path = request.url.path
            if path == "/":
                return RedirectResponse("/review", status_code=307)
            if path.startswith("/api/") and not path.startswith("/api/review"):
                return JSONResponse({"detail": "no index: this server shows the review page only (start `hvl serve "
                                               "--index <index>` for search)"}, status_code=404)
            return await call_next(request)

    if token:
        @app.middleware("http")
        async def require_token(request: Request, call_next):
            given = (request.headers.get("authorization", "").removeprefix("Bearer ").strip()
                     or request.headers.get("x-hvl-token") or request.cookies.get(TOKEN_COOKIE)
                     or request.query_params.get("token") or "")
            if not secrets.compare_digest(given.encode(), token.encode()):
                return JSONResponse({"detail": "a token is required: open the page as /?token=<token> or send "
                                               "'Authorization: Bearer <token>'"}, status_code=401)
            response = await call_next(request)
            if request.query_params.get("token"):  # the page's own requests (img, video) then carry the cookie
                response.set_cookie(TOKEN_COOKIE, token, httponly=True, samesite="strict")
            return response

    app.add_middleware(_BodyLimit, multipart=limits.max_body_bytes, other=limits.max_json_bytes)
    app.add_middleware(_SameOrigin, allowed=frozenset(limits.allowed_hosts))  # outermost: before anything is read

    @app.middleware("http")
    async def security_headers(request: Request, call_next):
        response = await call_next(request)
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        response.headers.setdefault("Cross-Origin-Resource-Policy", "same-origin")
        return response

    @app.exception_handler(RequestValidationError)
    def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        # sync: run in the thread pool, so that a body with thousands of errors never stalls the event loop
        errors = exc.errors()
        return JSONResponse({"detail": _errors_text(errors),
                             "errors": [{"field": _field(e.get("loc")), "msg": str(e.get("msg", ""))[:200],
                                         "type": str(e.get("type", ""))[:60]} for e in errors[:MAX_ERRORS_SHOWN]]},
                            422)

    @app.exception_handler(HVLInputError)
    async def bad_input(request: Request, exc: HVLInputError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, 502 if isinstance(exc, BackendUnreachable) else 400)

    def video_or_404(video_id: str) -> dict[str, Any]:
        try:
            return engine.video(video_id)
        except KeyError as e:
            raise HTTPException(404, e.args[0]) from None

    def run_search(q, opts: SearchOptions, query: str, kind: str) -> SearchResponse:
        res = engine.search(q, k=opts.k, agg=opts.agg, topk=opts.topk, pool=opts.pool, group=opts.group)
        return SearchResponse(query=query, kind=kind, **res)

    # ------------------------------------------------------------------ pages
    @app.get("/", include_in_schema=False)
    def search_page() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html")

    @app.get("/review", include_in_schema=False)
    def review_page() -> FileResponse:
        if review is None:
            raise HTTPException(404, "no zero-shot review: start with `hvl serve --zeroshot <dir>`")
        return FileResponse(STATIC / "review.html", media_type="text/html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    # ------------------------------------------------------------------ search
    @app.get("/api/info", response_model=Info)
    def info() -> Info:
        idx = engine.idx
        return Info(index=str(idx.root), level=engine.level, frames=len(idx.emb), videos=len(idx.videos),
                    fps=float(idx.header["fps"]), groups=engine.groups, aggregations=["max", "topk-mean", "count"],
                    query_types=list(query_types), queries=str(queries.path), review=review is not None,
                    limits={"query_chars": MAX_QUERY_CHARS, "k": MAX_K, "topk": MAX_TOPK, "pool": MAX_POOL,
                            "upload_bytes": limits.max_upload_bytes})

    @app.post("/api/search", response_model=SearchResponse)
    def search_text(req: TextSearch) -> SearchResponse:
        if not req.query.strip():
            raise HTTPException(422, "field 'query': the query is blank")
        return run_search(engine.embed_text(req.query), req, req.query, "text")

    @app.post("/api/search/frame", response_model=SearchResponse)
    def search_frame(req: FrameSearch) -> SearchResponse:
        video_or_404(req.video_id)
        try:
            row = engine.frame_row(req.video_id, req.t)
        except KeyError as e:
            raise HTTPException(404, e.args[0]) from None
        return run_search(engine.idx.emb[row], req, f"frame of {req.video_id} at {req.t:g} s", "frame")

    @app.post("/api/search/image", response_model=SearchResponse)
    def search_image(file: Annotated[UploadFile, File(description="PNG, JPEG or WebP")], k: Annotated[int, Form()] = 12,
                     group: Annotated[str | None, Form()] = None, game: Annotated[str | None, Form()] = None,
                     agg: Annotated[str, Form()] = "max",
                     topk: Annotated[int, Form()] = 3, pool: Annotated[int, Form()] = 1000) -> SearchResponse:
        try:
            opts = SearchOptions(k=k, group=group or game or None, agg=agg, topk=topk, pool=pool)
        except ValidationError as e:
            raise HTTPException(422, _errors_text(e.errors())) from None
        data = file.file.read(limits.max_upload_bytes + 1)
        if len(data) > limits.max_upload_bytes:
            raise HTTPException(413, f"upload over {limits.max_upload_bytes} bytes; send a smaller image")
        try:
            rgb = decode_upload(data, file.content_type)
        except UploadError as e:
            raise HTTPException(e.status, str(e)) from None
        return run_search(engine.embed_image(rgb), opts, f"image {file.filename or ''}".strip(), "image")

    @app.post("/api/export")
    def export(req: ExportRequest) -> Response:
        name = f"hvl_results.{req.format}"
        headers = {"Content-Disposition": f'attachment; filename="{name}"'}
        if req.format == "json":
            return Response(req.response.model_dump_json(indent=2), media_type="application/json", headers=headers)
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(["query", "rank", "video_id", "group", "clip", "score", "best_time", "best_score", "pool_count",
                    "moments"])
        for r in req.response.results:
            w.writerow([csv_text(req.response.query), r.rank, csv_text(r.video_id), csv_text(r.group), csv_text(r.clip),
                        r.score, r.best_time, r.best_score, r.pool_count,
                        " ".join(f"{m.t:g}:{m.score:g}" for m in r.moments)])
        return Response(buf.getvalue(), media_type="text/csv", headers=headers)

    # ------------------------------------------------------------------ media
    @app.get("/api/thumbnail/{video_id}", response_class=FileResponse)
    def thumbnail(video_id: str, t: Annotated[float, Query(ge=0)]) -> FileResponse:
        v = video_or_404(video_id)
        try:
            row = engine.frame_row(video_id, t)
        except KeyError as e:
            raise HTTPException(404, e.args[0]) from None
        try:
            f = engine.served_file(video_id)
            path = thumbs.get(v["key"], f, float(engine.idx.row_time[row]))
        except FileGone as e:
            raise HTTPException(404, str(e)) from None
        return FileResponse(path, media_type="image/jpeg", headers={"Cache-Control": "max-age=86400"})

    def stream(f: ServedFile | None, why: str = "") -> VerifiedFileResponse:
        try:
            if f is None:
                raise FileGone(why)
            return VerifiedFileResponse(f)
        except FileGone as e:
            raise HTTPException(404, str(e)) from None

    @app.api_route("/api/video/{video_id}", methods=["GET", "HEAD"], response_class=FileResponse)
    def video(video_id: str) -> VerifiedFileResponse:
        """The clip, with HTTP range requests (206) so that the browser can seek."""
        video_or_404(video_id)
        try:
            return stream(engine.served_file(video_id))
        except FileGone as e:
            raise HTTPException(404, str(e)) from None

    # ------------------------------------------------------------------ query set
    @app.get("/api/queries", response_model=QueriesResponse)
    def list_queries() -> QueriesResponse:
        return QueriesResponse(path=str(queries.path), queries=[JudgedQuery(**q) for q in queries.all()])

    @app.post("/api/judgements", response_model=JudgedQuery)
    def judge(j: Judgement) -> JudgedQuery:
        if not j.query.strip():
            raise HTTPException(422, "field 'query': the query is blank")
        video_or_404(j.video_id)
        qtype = j.type or query_types[0]
        if qtype not in query_types:
            raise HTTPException(422, f"field 'type': '{qtype}' is not one of {list(query_types)}")
        return JudgedQuery(**queries.judge(j.query, qtype, j.video_id, j.relevant))

    # ------------------------------------------------------------------ zero-shot review
    def review_or_404() -> ReviewSet:
        if review is None:
            raise HTTPException(404, "no zero-shot review: start with `hvl serve --zeroshot <dir>`")
        return review

    def review_video_or_404(video_id: str):
        r = review_or_404()
        if video_id not in r.videos:
            raise HTTPException(404, f"video '{video_id}' is not in the zero-shot predictions")
        return r

    @app.get("/api/review", response_model=ReviewList)
    def review_list() -> ReviewList:
        return ReviewList(**review_or_404().summary())

    @app.get("/api/review/{video_id}", response_model=ReviewDetail)
    def review_detail(video_id: str) -> ReviewDetail:
        return ReviewDetail(**review_video_or_404(video_id).detail(video_id))

    @app.api_route("/api/review/{video_id}/video", methods=["GET", "HEAD"], response_class=FileResponse)
    def review_video(video_id: str) -> VerifiedFileResponse:
        review_video_or_404(video_id)
        return stream(review_files.get(video_id))

    return app
