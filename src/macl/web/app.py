"""The HTTP API of one run: search its index by archive id, by labels or by an uploaded image, read-only.

:func:`create_app` loads the checkpoint's model and opens the index once (refusing an index built by
another model), and precomputes what never changes while serving: the label statistics, the run's
evaluation, the id → archive-image map of the thumbnails. Only image queries run the network; a query
by id searches with the embedding stored in the index. Nothing here writes to the index or takes a
file path from a request: items and thumbnails are looked up by id in the run's own archive.

Every error a client can cause is a 4xx answer ``{"detail": "<one clear sentence>"}`` (a bad field,
an unknown id or label, an oversized or non-image upload); anything else is a 500 with a generic
message, the traceback going to the server's log only.
"""

from __future__ import annotations

import json
import logging
import math
import threading
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import FastAPI, File, Form, HTTPException, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles

from macl.config import Config
from macl.errors import MaclError
from macl.fileio import file_digest
from macl.index import LabelFilter, VectorIndex, open_index
from macl.pipeline import load_model
from macl.web.schemas import (
    DEFAULT_K,
    MAX_K,
    MAX_OFFSET,
    Health,
    HitOut,
    IndexInfo,
    Item,
    LabelInfo,
    LabelsResponse,
    ModelInfo,
    QueryOut,
    RunConfig,
    RunInfo,
    SearchRequest,
    SearchResponse,
    errors,
)
from macl.web.search import Page, PageOptions, Searcher
from macl.web.thumbs import Thumbnails
from macl.web.uploads import FORMATS, MAX_PIXELS, MAX_UPLOAD_BYTES, BodyLimit, UploadRejected, decode_upload

STATIC = Path(__file__).parent / "static"
JSON_BODY_LIMIT = 64 * 1024  # a search request is a few hundred bytes
FORM_OVERHEAD = 64 * 1024  # multipart boundaries, headers and the small form fields beside the image
MAX_CONCURRENT_DECODES = 2
log = logging.getLogger(__name__)


def create_app(config: Config, index_path: Path, checkpoint: Path, writable: bool = False) -> FastAPI:
    """The API over ``index_path`` searched with ``checkpoint``'s model, for the run ``config`` describes.

    ``writable`` is recorded in ``/api/run`` only: no endpoint modifies the index.
    """
    index_path, checkpoint = Path(index_path), Path(checkpoint)
    model, state = load_model(checkpoint)
    model_hash = file_digest(checkpoint)
    index = open_index(index_path, expected_model_hash=model_hash)
    searcher = Searcher(index, model, int(state["config"]["image_size"]))
    thumbs = Thumbnails(config)
    metrics, per_label_ap, rare_labels = _read_evaluation(config.run_dir / "metrics_trained.json")
    labels = LabelsResponse(labels=_label_table(index, searcher.total, per_label_ap, rare_labels, config))
    run = RunInfo(
        config=RunConfig(
            dataset=config.dataset.name,
            queries=config.protocol.queries,
            database=list(config.protocol.database),
            loss=config.train.loss,
            backbone=config.train.backbone,
            image_size=searcher.image_size,
        ),
        model=ModelInfo(checkpoint=checkpoint.name, hash=model_hash[:12], normalization=model.config["normalization"]),
        index=IndexInfo(backend=index.backend, items=searcher.total, path=index_path.name),
        metrics=metrics,
        per_label_ap=per_label_ap,
        rare_labels=rare_labels,
        writable=writable,
    )
    health = Health(status="ok", items=searcher.total, backend=index.backend)
    # A 40-megapixel upload decodes to hundreds of MB: bound how many are held at once.
    decoding = threading.BoundedSemaphore(MAX_CONCURRENT_DECODES)

    app = FastAPI(
        title="macl retrieval",
        summary="Search a remote-sensing archive by image, by archive id or by labels (read-only).",
    )
    upload_limit = MAX_UPLOAD_BYTES + FORM_OVERHEAD
    app.add_middleware(BodyLimit, default=JSON_BODY_LIMIT, limits={"/api/search/image": upload_limit})
    app.state.searcher, app.state.thumbnails = searcher, thumbs
    _add_error_handlers(app)

    @app.get("/api/health")
    def get_health() -> Health:
        """Liveness, and how many items the index serves."""
        return health

    @app.get("/api/run")
    def get_run() -> RunInfo:
        """What is being served: the run's configuration, model, index and evaluation."""
        return run

    @app.get("/api/labels")
    def get_labels() -> LabelsResponse:
        """The index's labels in its order, with their counts, rarity and evaluated AP."""
        return labels

    @app.get("/api/items/{item_id:path}", responses=errors(e404="no indexed item has this id"))
    def get_item(item_id: str) -> Item:
        """One indexed item: its labels and its thumbnail's URL."""
        if item_id not in index:
            raise HTTPException(404, _unknown_id(item_id))
        own = index.labels_of([item_id])[0]
        names = [index.label_names[c] for c in range(len(own)) if own[c]]
        return Item(id=item_id, labels=names, thumbnail=_thumbnail_url(item_id))

    @app.get(
        "/thumbs/{item_id:path}",
        response_class=Response,
        responses={200: {"content": {"image/png": {}}}, **errors(e404="no archive item has this id")},
    )
    def get_thumbnail(item_id: str) -> Response:
        """PNG thumbnail (longest side 160 px) of an archive item of the run's database."""
        if item_id not in thumbs:
            raise HTTPException(404, _unknown_id(item_id))
        return Response(thumbs.png(item_id), media_type="image/png", headers={"Cache-Control": "max-age=86400"})

    @app.post("/api/search", responses=errors(e400="unknown label, or not exactly one of id/labels", e404="unknown id"))
    def search(query: SearchRequest) -> SearchResponse:
        """Top hits for an archive id (its stored embedding) or a set of labels (their images' mean)."""
        if (query.id is None) == (query.labels is None):
            raise HTTPException(400, "give exactly one of 'id' (an archive id) or 'labels' (label names)")
        where = LabelFilter(require=tuple(query.require), any_of=tuple(query.any_of))
        options = PageOptions(query.k, query.offset, query.min_score, query.dedupe)
        if query.id is not None:
            if query.id not in index:
                raise HTTPException(404, _unknown_id(query.id))
            return _response(searcher.by_id(query.id, where, options))
        assert query.labels is not None
        return _response(searcher.by_labels(query.labels, where, options))

    @app.post(
        "/api/search/image",
        responses=errors(
            e400="unknown label, or an empty upload",
            e413="upload over 10 MB, or image over 40 megapixels",
            e415="not an image in a supported format, or a corrupt one",
        ),
    )
    def search_image(
        file: Annotated[
            UploadFile,
            File(
                description=f"the query image ({', '.join(FORMATS)}; at most {MAX_UPLOAD_BYTES // 2**20} MB "
                f"and {MAX_PIXELS // 1_000_000} megapixels)"
            ),
        ],
        require: Annotated[str, Form(max_length=2000, description="comma-separated labels every hit carries")] = "",
        any_of: Annotated[
            str, Form(alias="any", max_length=2000, description="comma-separated labels; hits carry one")
        ] = "",
        k: Annotated[int, Form(ge=1, le=MAX_K)] = DEFAULT_K,
        offset: Annotated[int, Form(ge=0, le=MAX_OFFSET)] = 0,
        min_score: Annotated[float | None, Form(allow_inf_nan=False)] = None,
        dedupe: Annotated[bool, Form()] = False,
    ) -> SearchResponse:
        """Top hits for an uploaded image, embedded by the run's model exactly as archive images are."""
        where = LabelFilter(require=_names(require), any_of=_names(any_of))
        where.check(searcher.names)  # before decoding: a typo costs no decoding
        with decoding:
            image = decode_upload(file.file.read(MAX_UPLOAD_BYTES + 1))
            page = searcher.by_image(image, where, PageOptions(k, offset, min_score, dedupe))
        return _response(page)

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        if not (STATIC / "index.html").is_file():
            raise HTTPException(404, f"the page is not installed: {STATIC.name}/index.html is missing")
        return FileResponse(STATIC / "index.html")

    app.mount("/static", StaticFiles(directory=STATIC, check_dir=False), name="static")
    return app


def _response(page: Page) -> SearchResponse:
    hits = [
        HitOut(
            rank=page.offset + rank,
            id=hit.id,
            score=hit.score,
            labels=list(hit.labels),
            shared=list(hit.shared),
            missing=list(hit.missing),
            thumbnail=_thumbnail_url(hit.id),
        )
        for rank, hit in enumerate(page.hits, 1)
    ]
    query = QueryOut(kind=page.kind, id=page.query_id, labels=list(page.query_labels))
    return SearchResponse(query=query, hits=hits, offset=page.offset, k=page.k, has_more=page.has_more)


def _thumbnail_url(image_id: str) -> str:
    return f"/thumbs/{quote(image_id, safe='')}"


def _unknown_id(image_id: str) -> str:
    shown = image_id if len(image_id) <= 80 else image_id[:80] + "…"
    return f"no indexed item has the id {shown!r}"


def _names(text: str) -> tuple[str, ...]:
    """``"ship, water"`` → ``("ship", "water")``."""
    return tuple(name.strip() for name in text.split(",") if name.strip())


def _label_table(
    index: VectorIndex,
    total: int,
    per_label_ap: dict[str, float | None] | None,
    rare_labels: list[str],
    config: Config,
) -> list[LabelInfo]:
    """Per label: indexed carriers and their share, rarity, and evaluated AP.

    Counted through the backend's own label filter (``prototype``), the one query every backend answers.
    Rarity is the evaluation's (the share of *training* images) when the run was evaluated, else the
    share of indexed items against the same ``evaluate.rare_threshold``.
    """
    out = []
    for name in index.label_names:
        count = index.prototype(LabelFilter(require=(name,)))[1]
        frequency = count / max(total, 1)
        rare = name in rare_labels if per_label_ap is not None else frequency <= config.evaluate.rare_threshold
        ap = per_label_ap.get(name) if per_label_ap is not None else None
        out.append(LabelInfo(name=name, count=count, frequency=frequency, rare=rare, ap=ap))
    return out


def _read_evaluation(
    path: Path,
) -> tuple[dict[str, float | None] | None, dict[str, float | None] | None, list[str]]:
    """The run's metrics, per-label AP and rare labels from ``metrics_trained.json`` (nothing if absent).

    NaN (a label no query carries) becomes ``None``: JSON has no NaN.
    """
    if not path.is_file():
        return None, None, []
    try:
        data = json.loads(path.read_text())
        metrics = {str(k): _finite(v) for k, v in data["metrics"].items()}
        per_label = {str(k): _finite(v) for k, v in data.get("per_label_ap", {}).items()}
        rare = [str(name) for name in data.get("rare_labels", [])]
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
        log.warning("ignoring the evaluation in %s: %s", path, err)
        return None, None, []
    return metrics, per_label, rare


def _finite(value: Any) -> float | None:
    number = float(value) if isinstance(value, int | float) else math.nan
    return number if math.isfinite(number) else None


def _add_error_handlers(app: FastAPI) -> None:
    """Every error answer is ``{"detail": "<message>"}`` with a string message, whatever raised it
    (FastAPI's own handler already answers ``HTTPException`` so)."""

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": _validation_message(exc)}, status_code=422)

    @app.exception_handler(UploadRejected)
    async def rejected_upload(request: Request, exc: UploadRejected) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=exc.status)

    @app.exception_handler(MaclError)
    async def bad_query(request: Request, exc: MaclError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=400)

    @app.exception_handler(Exception)
    async def server_error(request: Request, exc: Exception) -> JSONResponse:
        # No message or traceback reaches the client; the server logs the exception after this answer.
        return JSONResponse({"detail": "internal server error; the server's log has the details"}, status_code=500)


def _validation_message(exc: RequestValidationError) -> str:
    """One sentence per invalid field, e.g. ``k: Input should be less than or equal to 200``."""
    parts = []
    for error in exc.errors():
        if error.get("type") == "json_invalid":
            parts.append(f"the body is not valid JSON ({error.get('ctx', {}).get('error', 'cannot parse it')})")
            continue
        where = ".".join(str(p) for p in error.get("loc", ()) if p != "body") or "the body"
        parts.append(f"{where}: {error.get('msg', 'invalid value')}")
    return "; ".join(parts) or "invalid request"
