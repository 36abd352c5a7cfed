"""The JSON the API reads and writes, as pydantic models: validated on the way in, documented in OpenAPI.

Limits live here (``k`` ≤ :data:`MAX_K`, ``offset`` ≤ :data:`MAX_OFFSET`, short label lists), so a
request outside them is refused before any work is done, with a message naming the field.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

MAX_K = 200
MAX_OFFSET = 10_000
DEFAULT_K = 24

LabelName = Annotated[str, Field(min_length=1, max_length=100)]
LabelList = Annotated[list[LabelName], Field(max_length=64)]


class SearchRequest(BaseModel):
    """A query by archive id or by label names (exactly one), with an optional label filter and paging."""

    model_config = ConfigDict(extra="forbid")

    id: str | None = Field(None, min_length=1, max_length=500, description="id of an indexed image")
    labels: LabelList | None = Field(
        None, min_length=1, description="label names: search near the images that carry all of them"
    )
    require: LabelList = Field(default_factory=list, description="only hits carrying every one of these labels")
    any_of: LabelList = Field(
        default_factory=list, alias="any", description="only hits carrying at least one of these labels"
    )
    k: int = Field(DEFAULT_K, ge=1, le=MAX_K, description="hits per page")
    offset: int = Field(0, ge=0, le=MAX_OFFSET, description="hits to skip (paging)")
    min_score: float | None = Field(None, allow_inf_nan=False, description="drop hits whose cosine is below this")
    dedupe: bool = Field(False, description="hide hits nearly identical (cosine ≥ 0.995) to a hit already shown")


class QueryOut(BaseModel):
    kind: Literal["id", "labels", "image"]
    id: str | None
    labels: list[str] = Field(description="the query item's labels, the asked labels, or [] for an image")


class HitOut(BaseModel):
    rank: int = Field(description="1-based position in the whole (filtered) result list")
    id: str
    score: float = Field(description="cosine similarity to the query")
    labels: list[str]
    shared: list[str] = Field(description="query labels the hit also carries")
    missing: list[str] = Field(description="query labels the hit lacks")
    thumbnail: str = Field(description="URL of the hit's thumbnail")


class SearchResponse(BaseModel):
    query: QueryOut
    hits: list[HitOut]
    offset: int
    k: int
    has_more: bool = Field(description="whether a next page exists")


class Health(BaseModel):
    status: Literal["ok"]
    items: int
    backend: str


class RunConfig(BaseModel):
    dataset: str
    queries: str
    database: list[str]
    loss: str
    backbone: str
    image_size: int = Field(description="side the model sees images at (query images are resized to it)")


class ModelInfo(BaseModel):
    checkpoint: str = Field(description="file name of the checkpoint")
    hash: str = Field(description="first 12 hex digits of the checkpoint's SHA-256")
    normalization: dict[str, list[float]] | None


class IndexInfo(BaseModel):
    backend: str
    items: int
    path: str = Field(description="file name of the index")


class RunInfo(BaseModel):
    config: RunConfig
    model: ModelInfo
    index: IndexInfo
    metrics: dict[str, float | None] | None = Field(description="the run's metrics_trained.json metrics, if any")
    per_label_ap: dict[str, float | None] | None
    rare_labels: list[str]
    writable: bool = Field(description="always served read-only; records how the server was started")


class LabelInfo(BaseModel):
    name: str
    count: int = Field(description="indexed items carrying the label")
    frequency: float = Field(description="count / indexed items")
    rare: bool
    ap: float | None = Field(description="the label's AP in the run's evaluation, if any")


class LabelsResponse(BaseModel):
    labels: list[LabelInfo]


class Item(BaseModel):
    id: str
    labels: list[str]
    thumbnail: str


class ErrorOut(BaseModel):
    """Every error answer: one message naming what is wrong (and, for a mistyped label, the closest one)."""

    detail: str


def errors(**described: str) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` of a route taking input, e.g. ``errors(e404="no such id")``: those statuses and
    422 (FastAPI would otherwise document its list-shaped validation error, which this API never sends)."""
    described = {"e422": "a field is missing or invalid, or the body is not JSON", **described}
    return {int(key[1:]): {"model": ErrorOut, "description": text} for key, text in described.items()}
