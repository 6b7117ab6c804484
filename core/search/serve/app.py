"""The FastAPI app of `hvl serve`: a JSON API (OpenAPI at ``/docs``) and the two pages it serves.

What it may send back is fixed when it starts: the static pages of this package, the videos listed
in the index (and in the zero-shot predictions), thumbnails of indexed frames, and JSON. Requests name
videos by id; an id is a dictionary key, so no part of a request ever becomes a file-system path.
"""
from __future__ import annotations

import csv
import io
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from fastapi import FastAPI, File, Form, HTTPException, Query, Request, UploadFile
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import ValidationError

from ...errors import HVLInputError
from .engine import SearchEngine
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
VIDEO_TYPES = {".mp4": "video/mp4", ".webm": "video/webm", ".mkv": "video/x-matroska", ".mov": "video/quicktime",
               ".avi": "video/x-msvideo"}


@dataclass(frozen=True)
class Limits:
    max_upload_bytes: int = 5 << 20      # an uploaded query image
    max_body_bytes: int = 8 << 20        # any request body (JSON or multipart)


def _errors_text(errors: list[dict[str, Any]]) -> str:
    parts = []
    for e in errors:
        loc = list(e.get("loc", ()))
        if loc and loc[0] in ("body", "query", "path", "form", "header", "cookie"):  # where, not which field
            loc = loc[1:]
        loc = ".".join(str(x) for x in loc)
        parts.append(f"field '{loc}': {e.get('msg')}" if loc else str(e.get("msg")))
    return "; ".join(parts)


class _BodyLimit:
    """ASGI middleware: a body over ``limit`` bytes gets 413 (by Content-Length, or while it streams in)."""

    def __init__(self, app: Any, limit: int):
        self.app, self.limit = app, limit

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.limit:
            return await self._too_large(send)
        seen = 0

        async def counted() -> dict:
            nonlocal seen
            msg = await receive()
            seen += len(msg.get("body", b""))
            if seen > self.limit:
                raise HTTPException(413, f"request body over {self.limit} bytes")
            return msg

        await self.app(scope, counted, send)

    async def _too_large(self, send: Any) -> None:
        body = f'{{"detail": "request body over {self.limit} bytes"}}'.encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


def create_app(engine: SearchEngine, thumbs: ThumbnailCache, queries: QuerySetStore, review: ReviewSet | None = None,
               token: str | None = None, limits: Limits = Limits()) -> FastAPI:
    app = FastAPI(title="hvl serve", version="1",
                  description="Search an hvl index by text or by example, grow a query set, review zero-shot predictions.")

    app.state.engine, app.state.thumbs, app.state.queries, app.state.review = engine, thumbs, queries, review
    app.state.limits = limits

    # ------------------------------------------------------------------ security and errors
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

    app.add_middleware(_BodyLimit, limit=limits.max_body_bytes)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": _errors_text(exc.errors()), "errors": jsonable_encoder(exc.errors())}, 422)

    @app.exception_handler(HVLInputError)
    async def bad_input(request: Request, exc: HVLInputError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, 400)

    def video_or_404(video_id: str) -> dict[str, Any]:
        try:
            return engine.video(video_id)
        except KeyError as e:
            raise HTTPException(404, e.args[0]) from None

    def run_search(q, opts: SearchOptions, query: str, kind: str) -> SearchResponse:
        res = engine.search(q, k=opts.k, agg=opts.agg, topk=opts.topk, pool=opts.pool, game=opts.game)
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
                    fps=float(idx.header["fps"]), games=engine.games, aggregations=["max", "topk-mean", "count"],
                    query_types=["simple", "compound", "bug"], queries=str(queries.path), review=review is not None,
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
                     game: Annotated[str | None, Form()] = None, agg: Annotated[str, Form()] = "max",
                     topk: Annotated[int, Form()] = 3, pool: Annotated[int, Form()] = 1000) -> SearchResponse:
        try:
            opts = SearchOptions(k=k, game=game or None, agg=agg, topk=topk, pool=pool)
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
        w.writerow(["query", "rank", "video_id", "game", "clip", "score", "best_time", "best_score", "pool_count",
                    "moments"])
        for r in req.response.results:
            w.writerow([req.response.query, r.rank, r.video_id, r.game, r.clip, r.score, r.best_time, r.best_score,
                        r.pool_count, " ".join(f"{m.t:g}:{m.score:g}" for m in r.moments)])
        return Response(buf.getvalue(), media_type="text/csv", headers=headers)

    # ------------------------------------------------------------------ media
    @app.get("/api/thumbnail/{video_id}", response_class=FileResponse)
    def thumbnail(video_id: str, t: Annotated[float, Query(ge=0)]) -> FileResponse:
        v = video_or_404(video_id)
        try:
            row = engine.frame_row(video_id, t)
        except KeyError as e:
            raise HTTPException(404, e.args[0]) from None
        path = thumbs.get(v["key"], v["path"], float(engine.idx.row_time[row]))
        return FileResponse(path, media_type="image/jpeg", headers={"Cache-Control": "max-age=86400"})

    def stream(path: str) -> FileResponse:
        p = Path(path)
        if not p.is_file():
            raise HTTPException(404, f"the video file of this entry is gone ({p.name})")
        return FileResponse(p, media_type=VIDEO_TYPES.get(p.suffix.lower(), "application/octet-stream"))

    @app.get("/api/video/{video_id}", response_class=FileResponse)
    def video(video_id: str) -> FileResponse:
        """The clip, with HTTP range requests (206) so that the browser can seek."""
        return stream(video_or_404(video_id)["path"])

    # ------------------------------------------------------------------ query set
    @app.get("/api/queries", response_model=QueriesResponse)
    def list_queries() -> QueriesResponse:
        return QueriesResponse(path=str(queries.path), queries=[JudgedQuery(**q) for q in queries.all()])

    @app.post("/api/judgements", response_model=JudgedQuery)
    def judge(j: Judgement) -> JudgedQuery:
        if not j.query.strip():
            raise HTTPException(422, "field 'query': the query is blank")
        video_or_404(j.video_id)
        return JudgedQuery(**queries.judge(j.query, j.type, j.video_id, j.relevant))

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

    @app.get("/api/review/{video_id}/video", response_class=FileResponse)
    def review_video(video_id: str) -> FileResponse:
        return stream(review_video_or_404(video_id).videos[video_id].path)

    return app
