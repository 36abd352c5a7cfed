"""The evaluation protocol as data: which split queries which database, then every metric, to JSON/Markdown.

``protocol: {queries: test, database: [train, val]}`` is UC Merced's (test images query the train+val
archive); ``{queries: test, database: [train]}`` is ML-AID's official one; ``{queries: val, database:
[val]}`` is leave-one-out within a split (each query is removed from its own ranking, as is any query
that also sits in the database).

``macl evaluate``, the training loop's validation and every benchmark cell go through
:func:`evaluate_protocol`: one embedding path (:func:`macl.embedding.embed`), one ranking (the metrics'
own, whose top-k the retrieval grids show), one set of options (the config's ``evaluate`` section).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from macl.archive import ArchiveSplits
from macl.config import EvaluateConfig
from macl.embedding import Embeddings, embed
from macl.fileio import atomic_write
from macl.metrics import LiteratureReport, RetrievalReport, evaluate_retrieval, literature_metrics, random_query_split
from macl.metrics.literature import LITERATURE_KS
from macl.models import Encoder
from macl.postprocess import PostProcessing, PostProcessor


@dataclass(frozen=True)
class ProtocolResult:
    """Every metric of a protocol, and each query's top database ids from the same ranking; with the
    literature protocol, also the literature's metrics (:mod:`macl.metrics.literature`) of that ranking."""

    report: RetrievalReport
    query_ids: list[str]
    top_ids: list[list[str]]
    literature: LiteratureReport | None = None


def evaluate_protocol(
    model: Encoder,
    splits: ArchiveSplits,
    queries: str,
    database: list[str],
    image_size: int,
    options: EvaluateConfig,
    workers: int = 0,
    top_k: int = 0,
    postprocess: PostProcessing | None = None,
    literature: tuple[float, int] | None = None,
) -> ProtocolResult:
    """Embed ``queries`` and the union of ``database`` splits with ``model``; compute every retrieval metric.

    Rare labels are decided by the training split's label frequencies (the rarity the model saw).
    ``top_k`` > 0 also returns each query's first ``top_k`` database ids. ``postprocess`` is applied
    as the index applies it (learnt on the database, see :func:`score_embeddings`). ``literature =
    (fraction, seed)`` runs the literature protocol instead (:func:`literature_split`; ``database`` unused).
    """
    if literature is not None:
        q, db = literature_split(
            embed_protocol(model, splits, queries, [queries], image_size, workers, postprocess)[0], *literature
        )
        return score_embeddings(q, db, splits, options, top_k, postprocess, literature=True)
    q, db = embed_protocol(model, splits, queries, database, image_size, workers, postprocess)
    return score_embeddings(q, db, splits, options, top_k, postprocess)


def literature_split(emb: Embeddings, fraction: float, seed: int) -> tuple[Embeddings, Embeddings]:
    """The literature protocol's queries and database: a seeded random ``fraction`` of one embedded split
    against the rest of it, drawn as OML draws them (:func:`macl.metrics.random_query_split`)."""
    query, database = random_query_split(len(emb.ids), fraction, seed)
    return _rows(emb, query), _rows(emb, database)


def _rows(emb: Embeddings, rows: np.ndarray) -> Embeddings:
    probs = emb.probabilities[rows] if emb.probabilities is not None else None
    return Embeddings(emb.vectors[rows], emb.labels[rows], [emb.ids[i] for i in rows], probs)


def embed_protocol(
    model: Encoder,
    splits: ArchiveSplits,
    queries: str,
    database: list[str],
    image_size: int,
    workers: int = 0,
    postprocess: PostProcessing | None = None,
) -> tuple[Embeddings, Embeddings]:
    """The query and database embeddings of a protocol; label probabilities too when fusion needs them
    (or, with ``postprocess=None``, whenever the model predicts labels: one embedding pass then serves
    every post-processing a study compares)."""
    probabilities = model.predicts_labels and (postprocess is None or postprocess.fusion > 0)
    q = embed(model, splits.at(queries, image_size), workers=workers, probabilities=probabilities)
    same = list(database) == [queries]
    db = q if same else embed(model, [splits.at(split, image_size) for split in database], workers=workers,
                              probabilities=probabilities)  # fmt: skip
    return q, db


def score_embeddings(
    q: Embeddings,
    db: Embeddings,
    splits: ArchiveSplits,
    options: EvaluateConfig,
    top_k: int = 0,
    postprocess: PostProcessing | None = None,
    literature: bool = False,
) -> ProtocolResult:
    """Every retrieval metric of embedded queries against an embedded database, after ``postprocess``
    (and, with ``literature``, the literature's metrics of the same vectors, at OML's cut-offs).

    Post-processing is learnt on the database only (its mean, whitening, augmentation) and applied to
    the queries as a search would apply it. A query that is also in the database is removed from its
    own ranking; query expansion does not know that, so such a query (leave-one-out protocols only) is
    expanded with itself as its first neighbour, as a search by an archive image would be.
    """
    position = {image_id: k for k, image_id in enumerate(db.ids)}
    query_db_index = np.array([position.get(i, -1) for i in q.ids], dtype=np.int64)
    q_vectors, db_vectors = q.vectors, db.vectors
    if postprocess is not None and not postprocess.is_identity:
        processor = PostProcessor(postprocess).fit(db.vectors, db.probabilities)
        db_vectors = processor.database(db.vectors, db.probabilities)
        q_vectors = processor.queries(q.vectors, q.probabilities, db_vectors)
    report = evaluate_retrieval(
        q_vectors,
        q.labels,
        db_vectors,
        db.labels,
        ks=tuple(options.ks),
        query_db_index=query_db_index,
        rare_threshold=options.rare_threshold,
        label_freq=splits.raw("train").label_frequencies(),
        label_names=splits.classes,
        top_k=top_k,
    )
    top = [[db.ids[k] for k in row if k >= 0] for row in report.top] if report.top is not None else []
    extra = None
    if literature:
        # OML's cut-offs that the database can fill (OML itself fails on a database smaller than k)
        ks = [k for k in LITERATURE_KS if k < len(db.ids)] or [len(db.ids) - 1]
        extra = literature_metrics(q_vectors, q.labels, db_vectors, db.labels, ks=ks, query_db_index=query_db_index)
    return ProtocolResult(report, q.ids, top, extra)


def write_report(
    report: RetrievalReport,
    folder: Path,
    name: str,
    extra: dict[str, Any] | None = None,
    literature: LiteratureReport | None = None,
) -> Path:
    """``<name>.json`` (metrics, per-label AP, per-query values; the literature's metrics under
    ``literature`` when given) and ``<name>.md`` in ``folder``."""
    payload = {**(extra or {}), **report.to_dict(include_per_query=True)}
    if literature is not None:
        payload["literature"] = literature.to_dict(include_per_query=True)
    path = folder / f"{name}.json"
    with atomic_write(path) as fh:
        fh.write(json.dumps(payload, indent=1, allow_nan=False).encode())
    with atomic_write(folder / f"{name}.md") as fh:
        text = report.to_markdown()
        if literature is not None:
            text += "\n" + literature.to_markdown()
        fh.write(text.encode())
    return path
