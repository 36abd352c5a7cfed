"""Chunked, vectorised retrieval evaluation: rank a database by cosine similarity and score every query.

Conventions (the definitions themselves live in :mod:`macl.metrics.ranking` and
:mod:`macl.metrics.relevance`):

- **Ranking.** Embeddings are L2-normalised, the database is sorted by cosine similarity, descending,
  with a *stable* sort, so items with equal similarity keep database-index order (lower index first).
  Rankings, and so every metric, are deterministic even for duplicated embeddings.
- **Chunking** changes nothing: every per-query value is computed row by row with sequential sums, so
  any ``max_chunk_bytes`` gives bit-identical results from the same similarities. (A BLAS may round a
  dot product differently for another batch shape; that could only swap two items whose similarities
  differ in the last bit.)
- **Exclusion.** Without a database the query set is ranked against itself, leave-one-out (each query is
  removed from its own ranking). With ``query_db_index`` the database item at that position (``-1``: none)
  is removed from that query's ranking. An excluded item is gone: it counts neither in ``R`` nor in the
  database size ``N_db`` used for ``k_eff = min(k, N_db)``, nor in nDCG's ideal order.
- **Relevance.** ``r(n)`` = shared-label count, ``rel(n) = [r(n) > 0]``; graded gains are the cosine and
  the Jaccard of the label vectors. Metric names: ``map``, ``map@k``, ``p@k``; ``acg@k``, ``ndcg@k``,
  ``wap@k`` use the count gain, their ``_cos`` / ``_jac`` variants the graded gains (WAP's ``rel`` stays
  binary); ``map_jac{t}`` is AP with ``rel = [Jaccard ≥ t]``.
- **Undefined queries.** A query with no relevant database item (``R = 0``; always the case for a query
  with no label) has no defined AP, so its per-query values are NaN for *every* metric and it is left out
  of every mean; the report counts such queries. ``map_jac{t}`` is also NaN for a query none of whose
  items reaches the threshold. Means are over the queries where a value is defined.
- **Per-label AP.** For each query ``q`` and label ``c ∈ Y_q``: AP over the full ranking with relevance
  ``[c ∈ Y_n]``, skipped when no (non-excluded) database item carries ``c``. Averaged per label over
  queries, then over the labels with a value (macro), and separately over rare labels (frequency ≤
  ``rare_threshold``; frequencies from ``label_freq``, else from the database labels) and frequent ones.

Memory: queries are processed in chunks whose size is chosen from ``max_chunk_bytes`` and the worst-case
per-query footprint, ``N·(128 + 32·C)`` bytes (the dense rank-ordered float64 arrays, plus one ranking row
per query label for per-label AP, as if a query carried every label). Beyond the chunk, evaluation holds
L2-normalised copies of both embedding matrices and float64 copies of the labels. Time is dominated by
one stable sort of ``N`` similarities per query. With the default 512 MiB budget, 100 000 database
items and 17 labels give chunks of 7 queries (see ``benchmarks/metrics_scale.py`` for measured numbers).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from macl.labels import cosine_from_shared, jaccard_from_shared
from macl.metrics.ranking import (
    acg_at_k,
    average_precision,
    average_precision_at_k,
    ndcg_at_k,
    precision_at_k,
    wap_at_k,
)
from macl.metrics.relevance import as_multi_hot, label_frequencies

__all__ = ["RetrievalReport", "evaluate_retrieval"]

# Suffixes of the three gains: shared-label count, cosine and Jaccard of the label vectors.
_GAINS = ("", "_cos", "_jac")
# Bytes per (query, database item) of the dense rank-ordered arrays alive at once in a chunk, and per
# (query, label, database item) of the per-label AP rows; measured peaks with some margin.
_DENSE_BYTES_PER_ITEM = 128
_LABEL_BYTES_PER_ITEM = 32


@dataclass
class RetrievalReport:
    """Result of :func:`evaluate_retrieval`.

    ``metrics`` holds means over the queries where each metric is defined; ``per_query`` holds the
    per-query values behind them (NaN where undefined), in query order, for paired significance tests.
    ``top`` holds, when asked for (``top_k``), each query's first database indices of the very ranking the
    metrics were computed on — what a retrieval grid shows.
    """

    metrics: dict[str, float]
    per_label_ap: dict[str, float]
    rare_labels: list[str]
    n_queries: int
    n_queries_without_relevant: int
    per_query: dict[str, np.ndarray] = field(repr=False)
    top: np.ndarray | None = field(default=None, repr=False)

    def to_dict(self, include_per_query: bool = False) -> dict[str, object]:
        """A JSON-serialisable dict; NaN becomes ``None`` because strict JSON has no NaN.

        Per-query arrays are left out unless asked for: they hold one value per query and metric.
        """
        result: dict[str, object] = {
            "metrics": {key: _json_float(value) for key, value in self.metrics.items()},
            "per_label_ap": {key: _json_float(value) for key, value in self.per_label_ap.items()},
            "rare_labels": list(self.rare_labels),
            "n_queries": self.n_queries,
            "n_queries_without_relevant": self.n_queries_without_relevant,
        }
        if include_per_query:
            result["per_query"] = {
                key: [_json_float(value) for value in values.tolist()] for key, values in self.per_query.items()
            }
        return result

    def to_markdown(self) -> str:
        """Two small Markdown tables: the metrics, then per-label AP with the rare labels marked."""
        lines = [
            f"{self.n_queries} queries, {self.n_queries_without_relevant} without any relevant item "
            "(left out of every mean).",
            "",
            "| metric | value |",
            "|---|---|",
        ]
        lines += [f"| {key} | {value:.4f} |" for key, value in self.metrics.items()]
        lines += ["", "| label | AP | rare |", "|---|---|---|"]
        rare = set(self.rare_labels)
        lines += [
            f"| {name} | {value:.4f} | {'yes' if name in rare else ''} |" for name, value in self.per_label_ap.items()
        ]
        return "\n".join(lines) + "\n"


def _json_float(value: float) -> float | None:
    """``value`` as a plain float, or ``None`` for NaN."""
    return None if math.isnan(value) else float(value)


def _as_embeddings(embeddings: torch.Tensor | np.ndarray, name: str) -> torch.Tensor:
    """Validate a finite 2-D embedding matrix; integer inputs become float32."""
    tensor = torch.as_tensor(embeddings)
    if tensor.ndim != 2:
        raise ValueError(f"{name} must be 2-D (items, dims), got shape {tuple(tensor.shape)}")
    if not tensor.is_floating_point():
        tensor = tensor.to(torch.float32)
    if not bool(torch.isfinite(tensor).all()):
        raise ValueError(f"{name} must hold finite values only")
    return tensor


def _check_rows(embeddings: torch.Tensor, labels: torch.Tensor, emb_name: str, label_name: str) -> None:
    """Embeddings and labels must describe the same items."""
    if embeddings.shape[0] != labels.shape[0]:
        raise ValueError(f"{label_name} has {labels.shape[0]} rows but {emb_name} has {embeddings.shape[0]}")


def _check_query_db_index(
    query_db_index: torch.Tensor | np.ndarray, n_queries: int, n_db: int, device: torch.device
) -> torch.Tensor:
    """Validate the (Q,) positions of the queries inside the database, ``-1`` meaning not there."""
    index = torch.as_tensor(query_db_index)
    if index.shape != (n_queries,):
        raise ValueError(f"query_db_index must have shape ({n_queries},), got {tuple(index.shape)}")
    if index.is_floating_point() or index.is_complex() or index.dtype == torch.bool:
        raise ValueError(f"query_db_index must hold integers, got dtype {index.dtype}")
    if n_queries and (int(index.min()) < -1 or int(index.max()) >= n_db):
        raise ValueError(f"query_db_index values must lie in [-1, {n_db - 1}]")
    return index.to(device=device, dtype=torch.int64)


def _database(
    query: torch.Tensor,
    query_labels: torch.Tensor,
    db_emb: torch.Tensor | np.ndarray | None,
    db_labels: torch.Tensor | np.ndarray | None,
    query_db_index: torch.Tensor | np.ndarray | None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The database embeddings and labels, checked against the queries, and each query's excluded item.

    Without a database the queries are the database and each query excludes itself (leave-one-out).
    """
    device = query.device
    if (db_emb is None) != (db_labels is None):
        raise ValueError("db_emb and db_labels must be given together (or both omitted for leave-one-out)")
    if db_emb is None or db_labels is None:
        if query_db_index is not None:
            raise ValueError("query_db_index needs a database; leave-one-out already excludes each query")
        return query, query_labels, torch.arange(query.shape[0], device=device)
    db = _as_embeddings(db_emb, "db_emb").to(device)
    labels = as_multi_hot(db_labels, "db_labels").to(device)
    _check_rows(db, labels, "db_emb", "db_labels")
    if db.shape[1] != query.shape[1]:
        raise ValueError(f"db_emb has {db.shape[1]} dims but query_emb has {query.shape[1]}")
    if labels.shape[1] != query_labels.shape[1]:
        raise ValueError(f"db_labels has {labels.shape[1]} label columns but query_labels has {query_labels.shape[1]}")
    if query_db_index is None:
        return db, labels, torch.full((query.shape[0],), -1, dtype=torch.int64, device=device)
    return db, labels, _check_query_db_index(query_db_index, query.shape[0], db.shape[0], device)


def _check_ks(ks: Sequence[int]) -> list[int]:
    """Cut-offs must be distinct positive integers: each names its own metric."""
    values = list(ks)
    if not values or any(isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1 for k in values):
        raise ValueError(f"ks must be a non-empty sequence of positive integers, got {ks!r}")
    if len(set(values)) != len(values):
        raise ValueError(f"ks must be distinct, got {ks!r}")
    return [int(k) for k in values]


def _check_thresholds(thresholds: Sequence[float]) -> list[float]:
    """Jaccard thresholds must lie in (0, 1] (0 would make every item relevant) and be distinct."""
    values = [float(t) for t in thresholds]
    if any(not 0.0 < t <= 1.0 for t in values):
        raise ValueError(f"jaccard_thresholds must lie in (0, 1], got {thresholds!r}")
    if len({f"{t:g}" for t in values}) != len(values):
        raise ValueError(f"jaccard_thresholds must be distinct, got {thresholds!r}")
    return values


def _label_names(label_names: Sequence[str] | None, n_labels: int) -> list[str]:
    """The given names, checked, or ``label_0 … label_{C-1}``."""
    if label_names is None:
        return [f"label_{c}" for c in range(n_labels)]
    names = [str(name) for name in label_names]
    if len(names) != n_labels or len(set(names)) != n_labels:
        raise ValueError(f"label_names must be {n_labels} distinct names, got {len(names)}")
    return names


def _frequencies(label_freq: torch.Tensor | np.ndarray | None, db_labels: torch.Tensor) -> torch.Tensor:
    """Label frequencies for the rare/frequent split: given ones (checked) or the database's own."""
    if label_freq is None:
        return label_frequencies(db_labels).cpu()
    freq = torch.as_tensor(label_freq, dtype=torch.float64).cpu()
    if freq.shape != (db_labels.shape[1],):
        raise ValueError(f"label_freq must have shape ({db_labels.shape[1]},), got {tuple(freq.shape)}")
    if not bool(((freq >= 0) & (freq <= 1)).all()):
        raise ValueError("label_freq must hold fractions in [0, 1]")
    return freq


def _metric_keys(ks: list[int], thresholds: list[float]) -> list[str]:
    """Per-query metric names in report order."""
    keys = ["map", *(f"map@{k}" for k in ks), *(f"p@{k}" for k in ks)]
    for family in ("acg", "ndcg", "wap"):
        keys += [f"{family}{suffix}@{k}" for suffix in _GAINS for k in ks]
    return keys + [f"map_jac{t:g}" for t in thresholds]


def _rank(query: torch.Tensor, db: torch.Tensor, excluded: torch.Tensor | None) -> torch.Tensor:
    """Database indices of each query's ranking, best first, ties in database-index order.

    An excluded item gets similarity ``-inf``; every other similarity is finite, so it sorts last and
    is cut off, leaving ``N - 1`` ranks.
    """
    similarity = query @ db.T
    if excluded is not None:
        similarity[torch.arange(query.shape[0], device=query.device), excluded] = -math.inf
    order = torch.sort(similarity, dim=1, descending=True, stable=True).indices
    return order[:, :-1] if excluded is not None else order


def _chunk_metrics(
    order: torch.Tensor,
    query_labels: torch.Tensor,
    db_labels_t: torch.Tensor,
    db_count: torch.Tensor,
    ks: list[int],
    thresholds: list[float],
) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Per-query metrics of one chunk of rankings, and its ``(B, C)`` per-label AP (NaN where none).

    ``order`` holds the database indices in rank order; ``db_labels_t`` is the ``(C, N)`` transposed,
    contiguous database label matrix (one row per label, so a label's relevance row is a plain gather) and
    ``db_count`` the database items' label counts.
    """
    shared = (query_labels @ db_labels_t).gather(1, order)
    n_query = query_labels.sum(1, keepdim=True)
    n_db = db_count.expand(order.shape[0], -1).gather(1, order)
    gains = {
        "": shared,
        "_cos": cosine_from_shared(shared, n_query, n_db),
        "_jac": jaccard_from_shared(shared, n_query, n_db),
    }
    del n_db
    rel = (shared > 0).to(torch.float64)
    n_relevant = rel.sum(1)
    undefined = n_relevant == 0
    nan = torch.tensor(math.nan, dtype=torch.float64, device=rel.device)

    out = {"map": average_precision(rel, n_relevant)}
    for k in ks:
        out[f"map@{k}"] = average_precision_at_k(rel, k)
        out[f"p@{k}"] = torch.where(undefined, nan, precision_at_k(rel, k))
    n_ideal = min(max(ks), order.shape[1])
    for suffix, gain in gains.items():
        ideal = torch.topk(gain, n_ideal, dim=1).values
        for k in ks:
            out[f"acg{suffix}@{k}"] = torch.where(undefined, nan, acg_at_k(gain, k))
            out[f"ndcg{suffix}@{k}"] = ndcg_at_k(gain, ideal, k)
            out[f"wap{suffix}@{k}"] = wap_at_k(rel, gain, k)
    for t in thresholds:
        rel_t = (gains["_jac"] >= t).to(torch.float64)
        out[f"map_jac{t:g}"] = average_precision(rel_t, rel_t.sum(1))
    del gains, shared, rel

    # One ranking row per (query, label of the query): [c ∈ Y_n] in that query's rank order.
    pair_query, pair_label = torch.nonzero(query_labels, as_tuple=True)
    label_rel = db_labels_t[pair_label].gather(1, order[pair_query])
    label_ap = torch.full(query_labels.shape, math.nan, dtype=torch.float64, device=order.device)
    label_ap[pair_query, pair_label] = average_precision(label_rel, label_rel.sum(1))
    return out, label_ap


def evaluate_retrieval(
    query_emb: torch.Tensor | np.ndarray,
    query_labels: torch.Tensor | np.ndarray,
    db_emb: torch.Tensor | np.ndarray | None = None,
    db_labels: torch.Tensor | np.ndarray | None = None,
    *,
    ks: Sequence[int] = (10, 20, 50, 100),
    query_db_index: torch.Tensor | np.ndarray | None = None,
    jaccard_thresholds: Sequence[float] = (0.4, 0.6, 0.8),
    rare_threshold: float = 0.1,
    label_freq: torch.Tensor | np.ndarray | None = None,
    label_names: Sequence[str] | None = None,
    max_chunk_bytes: int = 512 * 2**20,
    top_k: int = 0,
) -> RetrievalReport:
    """Rank the database for every query by cosine similarity and compute every retrieval metric.

    Args:
        query_emb: ``(Q, D)`` query embeddings (numpy or torch; computation runs on its device).
        query_labels: ``(Q, C)`` multi-hot 0/1 query labels.
        db_emb, db_labels: ``(N, D)`` and ``(N, C)`` database; both ``None`` for leave-one-out retrieval
            within the query set.
        ks: cut-offs of the @k metrics; ``k > N_db`` uses ``k_eff = N_db``.
        query_db_index: ``(Q,)`` position of each query inside the database, ``-1`` if absent; that item
            is removed from the query's ranking (a query set that is part of the database).
        jaccard_thresholds: thresholds ``t`` of ``map_jac{t}`` (relevant when Jaccard ≥ t).
        rare_threshold: labels with frequency ≤ this are rare.
        label_freq: ``(C,)`` label frequencies in [0, 1] deciding rarity, e.g. the training set's;
            default: computed from the database labels.
        label_names: ``C`` names for ``per_label_ap``; default ``label_0 …``.
        max_chunk_bytes: memory budget of one chunk of queries (at least one query per chunk).
        top_k: also return each query's first ``top_k`` database indices (``report.top``, (Q, top_k),
            ``-1`` past the end of a short ranking).

    Ranking is by cosine similarity, descending; equal similarities are ordered by database index (a
    stable sort), so results are deterministic. Similarities are computed in float64 when either
    embedding matrix is float64, else float32. Queries without any relevant item are left out of every
    mean and counted in ``n_queries_without_relevant``. See the module docstring for every convention.
    """
    query = _as_embeddings(query_emb, "query_emb")
    device = query.device
    q_labels = as_multi_hot(query_labels, "query_labels").to(device)
    _check_rows(query, q_labels, "query_emb", "query_labels")
    db, d_labels, index = _database(query, q_labels, db_emb, db_labels, query_db_index)
    n_queries, n_db, n_labels = query.shape[0], db.shape[0], q_labels.shape[1]
    excluded = index >= 0
    if n_db == 0 or (n_db == 1 and bool(excluded.any())):
        raise ValueError("the database must hold at least one item besides the query itself")
    cutoffs = _check_ks(ks)
    thresholds = _check_thresholds(jaccard_thresholds)
    if not 0.0 <= rare_threshold <= 1.0:
        raise ValueError(f"rare_threshold must lie in [0, 1], got {rare_threshold}")
    if max_chunk_bytes < 1:
        raise ValueError(f"max_chunk_bytes must be positive, got {max_chunk_bytes}")
    if top_k < 0:
        raise ValueError(f"top_k must not be negative, got {top_k}")
    names = _label_names(label_names, n_labels)
    frequency = _frequencies(label_freq, d_labels)

    dtype = torch.float64 if torch.float64 in (query.dtype, db.dtype) else torch.float32
    query_unit = torch.nn.functional.normalize(query.to(dtype), dim=1)
    db_unit = torch.nn.functional.normalize(db.to(dtype), dim=1)
    footprint = n_db * (_DENSE_BYTES_PER_ITEM + _LABEL_BYTES_PER_ITEM * n_labels)
    chunk_size = max(1, max_chunk_bytes // footprint)

    keys = _metric_keys(cutoffs, thresholds)
    per_query = {key: torch.full((n_queries,), math.nan, dtype=torch.float64, device=device) for key in keys}
    label_ap = torch.full((n_queries, n_labels), math.nan, dtype=torch.float64, device=device)
    db_labels_t = d_labels.T.contiguous()
    db_count = d_labels.sum(1)
    top = torch.full((n_queries, top_k), -1, dtype=torch.int64, device=device)
    # Queries with and without an excluded item have rankings of different lengths: one group each.
    for has_exclusion in (True, False):
        rows = torch.nonzero(excluded == has_exclusion).flatten()
        for start in range(0, rows.numel(), chunk_size):
            sel = rows[start : start + chunk_size]
            order = _rank(query_unit[sel], db_unit, index[sel] if has_exclusion else None)
            top[sel, : min(top_k, order.shape[1])] = order[:, :top_k]
            values, chunk_label_ap = _chunk_metrics(order, q_labels[sel], db_labels_t, db_count, cutoffs, thresholds)
            label_ap[sel] = chunk_label_ap
            for key, value in values.items():
                per_query[key][sel] = value

    per_label = torch.nanmean(label_ap, dim=0).cpu()
    rare = frequency <= rare_threshold
    metrics = {key: float(torch.nanmean(values)) for key, values in per_query.items()}
    metrics["label_map_macro"] = float(torch.nanmean(per_label))
    metrics["label_map_rare"] = float(torch.nanmean(per_label[rare]))
    metrics["label_map_frequent"] = float(torch.nanmean(per_label[~rare]))
    return RetrievalReport(
        metrics=metrics,
        per_label_ap={name: float(value) for name, value in zip(names, per_label, strict=True)},
        rare_labels=[name for name, is_rare in zip(names, rare.tolist(), strict=True) if is_rare],
        n_queries=n_queries,
        n_queries_without_relevant=int(per_query["map"].isnan().sum()),
        per_query={key: values.cpu().numpy() for key, values in per_query.items()},
        top=top.cpu().numpy() if top_k else None,
    )
