"""Request and response bodies of the `hvl serve` API (pydantic; they are the OpenAPI schema at ``/docs``).

Bounds live here, so every endpoint rejects the same bad input with the same 422 message."""
from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, AliasChoices, BaseModel, ConfigDict, Field

from ...data.predictions import PhaseScores, Smoothing

MAX_QUERY_CHARS = 500
MAX_K = 100
MAX_TOPK = 100
MAX_POOL = 100_000

Aggregation = Literal["max", "topk-mean", "count"]
QueryType = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]{0,39}$")]  # the domains' kinds (Info.query_types)


def _encodable(text: str) -> str:
    """JSON may carry a lone surrogate (``"\\ud800"``); no UTF-8 answer or file could hold it."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("is not valid Unicode text (it holds a lone surrogate); send UTF-8 text") from None
    return text


Text = Annotated[str, AfterValidator(_encodable)]


class SearchOptions(BaseModel):
    """The options of `hvl search`."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    k: int = Field(12, ge=1, le=MAX_K, description="videos to return")
    group: Text | None = Field(None, max_length=200, validation_alias=AliasChoices("group", "game"),
                               description="search only this group's videos (GamePhysics: a game; 'game' is the old name)")
    agg: Aggregation = "max"
    topk: int = Field(3, ge=1, le=MAX_TOPK, description="frames averaged by agg topk-mean")
    pool: int = Field(1000, ge=1, le=MAX_POOL, description="frame pool for agg count")


class TextSearch(SearchOptions):
    query: Text = Field(min_length=1, max_length=MAX_QUERY_CHARS, description='e.g. "a car stuck in a tree"')


class FrameSearch(SearchOptions):
    """More like this: a frame of the index (a result's moment) is the query."""

    video_id: Text = Field(min_length=1, max_length=300)
    t: float = Field(ge=0, description="time (s) of one of the video's indexed frames")


class Moment(BaseModel):
    model_config = ConfigDict(allow_inf_nan=False)
    t: float
    score: float


class Result(BaseModel):
    model_config = ConfigDict(allow_inf_nan=False)
    rank: int
    video_id: Text
    group: Text
    clip: Text = Field(description="file name of the clip")
    meta: dict[str, Text] = Field(default_factory=dict,
                                  description="what the folder says of the video (yt-dlp: title, uploader, upload_date)")
    score: float
    best_time: float
    best_score: float
    pool_count: int
    moments: list[Moment]


class SearchResponse(BaseModel):
    model_config = ConfigDict(allow_inf_nan=False)
    query: Text = Field(description="the text, or what the query was (a frame, an uploaded image)")
    kind: Literal["text", "frame", "image"]
    agg: Aggregation
    k: int
    topk: int
    pool: int
    group: str | None
    method: str
    frames: int
    videos: int
    results: list[Result]


class ExportRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    format: Literal["json", "csv"] = "json"
    response: SearchResponse


class Info(BaseModel):
    index: str
    level: str
    frames: int
    videos: int
    fps: float
    groups: list[str]
    aggregations: list[str]
    query_types: list[str]
    queries: str = Field(description="the query set file testers' judgements go to")
    review: bool = Field(description="whether a zero-shot review page is served")
    limits: dict[str, int]


class Judgement(BaseModel):
    """A tester's verdict on one result of a query; ``relevant: null`` takes a verdict back."""

    model_config = ConfigDict(extra="forbid")
    query: Text = Field(min_length=1, max_length=MAX_QUERY_CHARS)
    type: QueryType = Field("", description="one of Info.query_types (default: the first)")
    video_id: Text = Field(min_length=1, max_length=300)
    relevant: bool | None


class JudgedQuery(BaseModel):
    id: str
    type: QueryType
    text: str
    relevant: list[str]
    not_relevant: list[str]
    bug: str | None = None


class QueriesResponse(BaseModel):
    path: str = Field(description="the query set, as `hvl bugsearch-eval` reads it")
    queries: list[JudgedQuery]


class ReviewVideo(BaseModel):
    video_id: str
    n_frames: int
    metrics: PhaseScores | None = None  # None: no ground truth (`hvl predict` timelines)
    smoothed_metrics: PhaseScores | None = None


class ReviewList(BaseModel):
    """``predictions.json`` as the review page lists it (:class:`~hvl.core.data.predictions.PredictionsManifest`)."""

    classes: list[str]
    level: str
    fps: float
    smoothing: Smoothing
    metrics: PhaseScores | None = None
    videos: list[ReviewVideo]


class ReviewDetail(ReviewVideo):
    """One video's :class:`~hvl.core.data.predictions.VideoPredictions`, without the server's file path."""

    fps: float
    classes: list[str]
    t: list[float]
    truth: list[int] | None = None
    pred: list[int]
    smoothed: list[int]
    probs: list[list[float]]
