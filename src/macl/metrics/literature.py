"""The "literature protocol": multi-label retrieval metrics exactly as the published OML code computes them.

Multi-label remote-sensing retrieval papers following Imbriaco, Sebastian, Bondarev and de With ("Towards
multi-label image retrieval for remote sensing", IEEE TGRS; IEEE Xplore document 9491804, as linked from
the OML README) report mAP at three Jaccard-*distance* thresholds and ACG / nDCG / wAP at a cut-off,
computed by the public code of that paper, GitHub ``RImbriaco/OML`` (read at commit ``4998cde``,
September 2021; the evaluation files are unchanged since ``503496d``). Our own metrics
(:mod:`macl.metrics.ranking`, :mod:`macl.metrics.evaluate`) use textbook definitions, which give
different numbers for the same ranking; this module reimplements what OML computes, so that our models
can be put next to published tables. It was written from reading OML, not by copying it, and was checked
once against OML's own ``ucm_retrieval`` on random data without similarity ties (agreement to 2.3e-16).

Notation, for query ``q`` with label set ``Y_q`` and its ranking ``n = 1, 2, …`` of the database
(0-based position ``p = n − 1``): ``g(n) = |Y_q ∩ Y_n|`` (shared-label count) and the Jaccard distance
``d(n) = |Y_q △ Y_n| / |Y_q ∪ Y_n|``, with ``d = 0`` when both sets are empty. ``ε = 1e-6``.

Split — ``src/common/evaluation/image_retrieval.py``, ``ucm_retrieval`` / ``ben_retrieval``:
    ``⌊0.2·N⌋`` items, drawn without replacement, are queries; the rest is the database. The two are
    disjoint, so a query is never in its own database. :func:`random_query_split` draws the same sizes.

Ranking — same file and functions:
    L2-normalised embeddings, descending dot product over the whole database.

Relevance at threshold ``t`` — ``ucm_retrieval`` (``cdist(…, scipy.spatial.distance.jaccard)`` then
``label_distance <= thresh``; ``THRESHOLDS = (0.6, 0.4, 0.2)``):
    ``rel_t(n) = [d(n) ≤ t]`` (less than *or equal*; ``t`` is a distance: 0.2 is the strictest).
    ``d`` is computed as scipy does, ``(|∪| − |∩|) / |∪|`` in float64, so ``d = 0.6`` exactly (e.g.
    ``|∩| = 2, |∪| = 5``) counts at ``t = 0.6``.

mAP at distance ``t`` (``lit_map_d{t}``) — ``compute_ap`` and ``mp_ap`` in the same file (adapted from
cnnimageretrieval-pytorch), driven by ``compute_map`` / ``compute_map_and_print`` from ``ucm_retrieval``:
    With ``R_t`` relevant items at 0-based positions ``p_0 < p_1 < …`` in the *full* ranking,
    ``AP_t = (1/R_t) Σ_j (P0_j + P1_j) / 2``, ``P1_j = (j + 1)/(p_j + 1)``, ``P0_j = j / p_j``
    (``P0_j = 1`` when ``p_j = 0``): the area under the precision-recall curve by the trapezoid rule.
    ``lit_map_d{t}`` is the mean of ``AP_t`` over the *kept* queries: those with at least one database
    item at the strictest distance (``ucm_retrieval``'s ``keep_idxs``, taken on its ``'hard'`` list,
    ``t = 0.2``; here ``min(distance_thresholds)``). The same queries are averaged at every ``t``.
    There is no cut-off mAP in OML, so there is no ``lit_map_d{t}@k``.

ACG@k (``lit_acg@k``) — ``src/common/evaluation/multilabel_metrics.py``, ``MultiLabelMetrics.average_cg``:
    ``ACG@k = (1/k) Σ_{n≤k} g(n)``.

nDCG@k (``lit_ndcg@k``) — same class, ``normalized_discounted_cg`` and ``compute_dcg``:
    ``DCG@k = Σ_{n≤k} (2^{g(n)} − 1) / log2(1 + n)``, ``nDCG@k = DCG@k / (IDCG@k + ε)`` where ``IDCG@k``
    is the DCG of the *retrieved* top-``k`` gains re-sorted in descending order.

wAP@k (``lit_wap@k``) — same class, ``weighted_ap``:
    ``wAP@k = Σ_{n≤k} [g(n) > 0]·ACG@n / (Σ_{n≤k} [g(n) > 0] + ε)``.

ACG, nDCG and wAP are averaged over *all* queries (those without any shared label score 0). OML evaluates
them at ``k ∈ {20, 40, 60, 80, 100}`` (``ucm_retrieval``'s ``range(20, 120, 20)``); pass those ``ks`` to
get every value OML prints.

Where OML departs from textbook definitions (all reproduced here):

- AP is the trapezoidal one, not the TREC one ``(1/R) Σ_j P1_j``. Since ``P0_j ≤ P1_j`` it is never
  larger, and equal only when every relevant item precedes every other: a lone relevant item at rank 2
  gives 1/4 instead of 1/2.
- mAP drops every query with no database item at distance ≤ 0.2 from *all three* mAPs, including the
  0.6 and 0.4 ones for which such a query may well have relevant items.
- nDCG's ideal ranking is the retrieved top ``k`` sorted, not the database's best ``k`` items: it
  scores only the order *within* the top ``k``. Any top ``k`` with some gain, in descending gain
  order, scores ``1 − O(ε)``, however poor the items retrieved.
- ``ε = 1e-6`` is added to the nDCG and wAP denominators: a perfect ranking scores ``IDCG/(IDCG + ε)``,
  slightly below 1, and a query without gain scores 0 instead of being undefined.
- wAP's normaliser is the number of top-``k`` items sharing a label, as in Zhao et al. (CVPR 2015);
  the OML source marks this line as unsure ("Not sure here confirm with Clint").
- Two unlabelled items have Jaccard distance 0 (scipy ≥ 1.2; OML pins scipy 1.4.1), so an unlabelled
  query is relevant to every unlabelled database item at every threshold.
- ACG/nDCG/wAP divide by ``k`` with no ``min(k, N)``; OML fails when ``k`` exceeds the database, and so
  does :func:`literature_metrics` (with a ``ValueError``).

Where this module departs from OML (choices, not definitions):

- Ties: OML sorts with ``np.argsort`` (quicksort; on GPU ``torch.argsort`` for BigEarthNet), whose
  order among equal similarities is unspecified. Here ties go by database index (stable sort), as in
  :mod:`macl.metrics.evaluate`.
- The split uses ``numpy.random.default_rng(seed)``; OML seeds the legacy global generator
  (``np.random.seed(24)`` in its configs) and calls ``np.random.choice(range(N), int(N·0.2),
  replace=False)``. Sizes agree, the drawn items do not.
- ``query_db_index`` removes a query from its own ranking when the query set lies inside the database;
  OML never needs it because its query and database sets are disjoint.
- BigEarthNet (``ben_retrieval``) averages per chunk of 500 queries and then over chunks (a mean of
  chunk means, unweighted by each chunk's kept queries), reads its relevant sets from an HDF5 file
  written by ``src/common/preprocessing/retrieval.py`` (``write_gt_file``) whose ``easy/medium/hard``
  thresholds come from its command line (``write_gt_file``'s default order ``0.2, 0.4, 0.6`` would make
  ``'hard'``, the query filter, the loosest), and also computes ACG/nDCG/wAP per chunk. Here
  every mean is over all queries at once, as in ``ucm_retrieval`` (UC Merced, WHDLD, AID).
- OML also prints a cnnimageretrieval-style ``mP@10`` per threshold; it is not reproduced.

Differences from :mod:`macl.metrics` (see its ``ranking`` and ``evaluate`` docstrings):

- ``map`` there is TREC AP with any-shared-label relevance; ``map_jac{s}`` there is TREC AP with
  ``Jaccard ≥ s``, i.e. ``d ≤ 1 − s`` up to rounding: ``lit_map_d0.6`` has the relevance of
  ``map_jac0.4`` but trapezoidal AP and OML's query filter.
- There, queries without a relevant item are NaN and left out of every mean; here only mAP drops
  queries (by the strictest threshold), and ACG/nDCG/wAP count them as 0.
- There, ``k_eff = min(k, N)``; here ``k > N`` is an error.
- There, nDCG's ideal order comes from the whole database and has no ``ε``; wAP has the same normaliser
  but no ``ε``, and is NaN (not 0) for a query without any relevant database item.
- There, Jaccard of two empty label sets is 0 (distance 1): unrelated; here distance 0: identical.

Memory: queries are processed in chunks of ``max_chunk_bytes // (48 · N)`` queries (at least one); beyond
the chunk, evaluation holds L2-normalised copies of both embedding matrices and float64 labels. Measured
on one CPU thread, 100 000 database items of 128 dims and 17 labels, default 256 MiB budget: about 190 MiB
above the inputs, copies included, whatever the number of queries, and about 20 ms per query (so 20 000
queries take about 7 minutes).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from macl.metrics.evaluate import _as_embeddings, _json_float
from macl.metrics.relevance import as_multi_hot

__all__ = ["LiteratureReport", "literature_metrics", "random_query_split"]

# OML's guard against division by zero in nDCG and wAP; it changes the values, so it is part of the metric.
EPS = 1e-6
# Bytes per (query, database item) alive at once in a chunk (similarity, sort values and indices, then
# shared counts, distances, ranked distances and the three dense AP arrays): ~27 measured, with margin.
_BYTES_PER_ITEM = 48


@dataclass(frozen=True)
class LiteratureReport:
    """Result of :func:`literature_metrics`.

    ``metrics`` holds the means as OML reports them; ``per_query`` the values behind them, in query order
    (``lit_map_d*`` is NaN for the queries OML drops from mAP), for paired tests. ``n_map_queries``
    counts the queries mAP is averaged over, because published mAPs silently leave the others out.
    """

    metrics: dict[str, float]
    per_query: dict[str, np.ndarray]
    n_queries: int
    n_map_queries: int

    def to_dict(self, include_per_query: bool = False) -> dict[str, object]:
        """A JSON-serialisable dict; NaN becomes ``None`` (strict JSON has no NaN)."""
        result: dict[str, object] = {
            "metrics": {key: _json_float(value) for key, value in self.metrics.items()},
            "n_queries": self.n_queries,
            "n_map_queries": self.n_map_queries,
        }
        if include_per_query:
            result["per_query"] = {
                key: [_json_float(value) for value in values.tolist()] for key, values in self.per_query.items()
            }
        return result

    def to_markdown(self) -> str:
        """The metrics as a Markdown table, with how many queries mAP averages over."""
        lines = [
            f"Literature protocol (OML's definitions): {self.n_queries} queries, mAP over {self.n_map_queries}.",
            "",
            "| metric | value |",
            "|---|---|",
        ]
        return "\n".join(lines + [f"| {key} | {value:.4f} |" for key, value in self.metrics.items()]) + "\n"


# The cut-offs OML reports ACG, nDCG and WAP at.
LITERATURE_KS = (20, 40, 60, 80, 100)


def random_query_split(n_items: int, fraction: float = 0.2, seed: int = 24) -> tuple[np.ndarray, np.ndarray]:
    """Seeded query/database split of ``n_items`` items: ``(query indices, database indices)``, both sorted.

    ``⌊n_items · fraction⌋`` queries are drawn without replacement exactly as OML draws them
    (``np.random.seed(seed)`` then ``np.random.choice(range(N), int(N * 0.2), replace=False)``: numpy's
    legacy generator, reproduced with :class:`numpy.random.RandomState`; its configs use seed 24), so the
    same ``N`` items in the same order give OML's very query set. The rest is the database: the two are
    disjoint and cover ``0 … n_items − 1``. Raises ``ValueError`` when
    ``fraction`` is outside (0, 1) or either side would be empty.
    """
    if isinstance(n_items, bool) or not isinstance(n_items, int | np.integer) or n_items < 0:
        raise ValueError(f"n_items must be a non-negative integer, got {n_items!r}")
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"fraction must lie in (0, 1), got {fraction!r}")
    n_query = int(n_items * fraction)
    if n_query == 0 or n_query == n_items:
        raise ValueError(
            f"{n_items} items with fraction {fraction} give {n_query} queries and {n_items - n_query} "
            "database items; both must be non-empty"
        )
    rng = np.random.RandomState(seed)  # OML's legacy global generator, without touching numpy's global state
    query = np.sort(rng.choice(range(n_items), n_query, replace=False)).astype(np.int64)
    database = np.setdiff1d(np.arange(n_items, dtype=np.int64), query)
    return query, database


def _check_ks(ks: Sequence[int], n_ranked: int) -> list[int]:
    """Distinct positive cut-offs no larger than the ranking: OML divides by ``k`` and has no ``k_eff``."""
    values = list(ks)
    if not values or any(isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1 for k in values):
        raise ValueError(f"ks must be a non-empty sequence of positive integers, got {ks!r}")
    if len(set(values)) != len(values):
        raise ValueError(f"ks must be distinct, got {ks!r}")
    if max(values) > n_ranked:
        raise ValueError(
            f"k = {max(values)} exceeds the {n_ranked} ranked database items; OML's ACG/nDCG/wAP divide by k "
            "and are undefined there"
        )
    return [int(k) for k in values]


def _check_thresholds(thresholds: Sequence[float]) -> list[float]:
    """Distance thresholds in [0, 1) (1 would make every item relevant), distinct under their names."""
    values = [float(t) for t in thresholds]
    if not values or any(not 0.0 <= t < 1.0 for t in values):
        raise ValueError(f"distance_thresholds must be a non-empty sequence in [0, 1), got {thresholds!r}")
    if len({f"{t:g}" for t in values}) != len(values):
        raise ValueError(f"distance_thresholds must be distinct, got {thresholds!r}")
    return values


def _query_db_index(index: torch.Tensor | np.ndarray | None, n_queries: int, n_db: int) -> torch.Tensor:
    """The (Q,) position of each query in the database, ``-1`` for none, checked."""
    if index is None:
        return torch.full((n_queries,), -1, dtype=torch.int64)
    tensor = torch.as_tensor(index)
    if tensor.shape != (n_queries,):
        raise ValueError(f"query_db_index must have shape ({n_queries},), got {tuple(tensor.shape)}")
    if tensor.is_floating_point() or tensor.is_complex() or tensor.dtype == torch.bool:
        raise ValueError(f"query_db_index must hold integers, got dtype {tensor.dtype}")
    if int(tensor.min()) < -1 or int(tensor.max()) >= n_db:
        raise ValueError(f"query_db_index values must lie in [-1, {n_db - 1}]")
    return tensor.to(torch.int64).cpu()


def _trapezoid_ap(rel: torch.Tensor) -> torch.Tensor:
    """OML's ``compute_ap`` per row of the 0/1 ranked relevance ``rel`` (B, M); NaN where a row has none.

    At a relevant 0-based position ``p`` holding the ``j``-th relevant item (0-based), ``hits = j + 1``:
    ``P1 = hits/(p + 1)`` and ``P0 = (hits − 1)/p``, or 1 at ``p = 0``. Built in place: three (B, M) arrays.
    """
    positions = torch.arange(rel.shape[1], dtype=torch.float64, device=rel.device)
    hits = torch.cumsum(rel, dim=1)
    terms = (hits - 1.0).div_(positions.clamp_min(1.0))
    terms[:, 0] = 1.0
    terms.add_(hits.div_(positions + 1.0)).mul_(rel)
    n_relevant = rel.sum(1)
    ap = terms.sum(1) / (2.0 * n_relevant.clamp_min(1.0))
    return torch.where(n_relevant > 0, ap, torch.full_like(ap, math.nan))


def _topk_metrics(gain: torch.Tensor, ks: list[int], n_labels: int) -> dict[str, torch.Tensor]:
    """ACG@k, nDCG@k and wAP@k (OML's ``MultiLabelMetrics``) of the ranked shared-label counts ``gain``.

    ``2^g − 1`` is looked up from exact powers of two, so it does not depend on a vectorised ``exp2``.
    """
    powers = torch.tensor([2.0**c - 1.0 for c in range(n_labels + 1)], dtype=torch.float64, device=gain.device)
    out: dict[str, torch.Tensor] = {}
    for k in ks:
        top = gain[:, :k]
        ranks = torch.arange(1, k + 1, dtype=torch.float64, device=gain.device)
        discount = torch.log2(ranks + 1.0)
        exp_gain = powers[top.long()]
        ideal = torch.sort(exp_gain, dim=1, descending=True).values  # 2^g − 1 is increasing in g
        hit = (top > 0).to(torch.float64)
        out[f"lit_acg@{k}"] = top.sum(1) / k
        out[f"lit_ndcg@{k}"] = (exp_gain / discount).sum(1) / ((ideal / discount).sum(1) + EPS)
        out[f"lit_wap@{k}"] = (hit * torch.cumsum(top, dim=1) / ranks).sum(1) / (hit.sum(1) + EPS)
    return out


def _chunk(
    query: torch.Tensor,
    query_labels: torch.Tensor,
    db: torch.Tensor,
    db_labels: torch.Tensor,
    excluded: torch.Tensor | None,
    ks: list[int],
    thresholds: list[float],
) -> dict[str, torch.Tensor]:
    """Every per-query value for one chunk of queries; ``excluded`` (B,) are database rows to leave out.

    An excluded item gets similarity ``-inf`` and sorts last (every other similarity is finite), where it
    is cut off; the others keep the stable database-index order among equal similarities.
    """
    similarity = query @ db.T
    if excluded is not None:
        similarity[torch.arange(query.shape[0], device=query.device), excluded] = -math.inf
    order = torch.sort(similarity, dim=1, descending=True, stable=True).indices
    del similarity
    if excluded is not None:
        order = order[:, :-1]

    shared = query_labels @ db_labels.T
    union = query_labels.sum(1, keepdim=True) + db_labels.sum(1) - shared
    # scipy's jaccard: (|∪| − |∩|) / |∪| in float64; two empty sets give 0 / 1 = 0, as scipy's 0 for 0/0.
    distance = (union - shared).div_(union.clamp_min_(1.0))
    del union
    out = _topk_metrics(shared.gather(1, order[:, : max(ks)]), ks, query_labels.shape[1])
    del shared
    ranked_distance = distance.gather(1, order)
    del distance, order
    for t in thresholds:
        out[f"lit_map_d{t:g}"] = _trapezoid_ap((ranked_distance <= t).to(torch.float64))
    return out


def literature_metrics(
    query_emb: torch.Tensor | np.ndarray,
    query_labels: torch.Tensor | np.ndarray,
    db_emb: torch.Tensor | np.ndarray,
    db_labels: torch.Tensor | np.ndarray,
    *,
    ks: Sequence[int] = (10, 20, 50, 100),
    distance_thresholds: Sequence[float] = (0.6, 0.4, 0.2),
    query_db_index: torch.Tensor | np.ndarray | None = None,
    max_chunk_bytes: int = 256 * 2**20,
) -> LiteratureReport:
    """Rank the database for every query by cosine similarity and compute OML's metrics.

    Args:
        query_emb, query_labels: ``(Q, D)`` embeddings and ``(Q, C)`` multi-hot 0/1 labels of the queries
            (numpy or torch; computation runs on ``query_emb``'s device).
        db_emb, db_labels: ``(N, D)`` and ``(N, C)`` database.
        ks: cut-offs of ``lit_acg@k``, ``lit_ndcg@k`` and ``lit_wap@k``; each at most the number of ranked
            items (``N``, or ``N − 1`` when a query is excluded). OML itself uses 20, 40, 60, 80, 100.
        distance_thresholds: ``t`` of ``lit_map_d{t}`` (relevant when Jaccard distance ≤ t), in [0, 1).
            mAP is averaged over the queries with a relevant item at the smallest ``t``.
        query_db_index: ``(Q,)`` position of each query in the database, ``-1`` if absent; that item is
            removed from the query's ranking.
        max_chunk_bytes: memory budget of one chunk of queries (at least one query per chunk).

    Ranking: L2-normalised embeddings, cosine similarity descending, ties by database index (a stable
    sort). Similarities are float64 when either embedding matrix is, else float32. See the module
    docstring for every definition and its OML source.
    """
    query = _as_embeddings(query_emb, "query_emb")
    device = query.device
    db = _as_embeddings(db_emb, "db_emb").to(device)
    q_labels = as_multi_hot(query_labels, "query_labels").to(device)
    d_labels = as_multi_hot(db_labels, "db_labels").to(device)
    if q_labels.shape[0] != query.shape[0]:
        raise ValueError(f"query_labels has {q_labels.shape[0]} rows but query_emb has {query.shape[0]}")
    if d_labels.shape[0] != db.shape[0]:
        raise ValueError(f"db_labels has {d_labels.shape[0]} rows but db_emb has {db.shape[0]}")
    if db.shape[1] != query.shape[1]:
        raise ValueError(f"db_emb has {db.shape[1]} dims but query_emb has {query.shape[1]}")
    if d_labels.shape[1] != q_labels.shape[1]:
        raise ValueError(f"db_labels has {d_labels.shape[1]} label columns but query_labels has {q_labels.shape[1]}")
    n_queries, n_db = query.shape[0], db.shape[0]
    if n_queries == 0 or n_db == 0:
        raise ValueError(f"need at least one query and one database item, got {n_queries} and {n_db}")
    index = _query_db_index(query_db_index, n_queries, n_db)
    excluded = index >= 0
    cutoffs = _check_ks(ks, n_db - int(bool(excluded.any())))
    thresholds = _check_thresholds(distance_thresholds)
    if max_chunk_bytes < 1:
        raise ValueError(f"max_chunk_bytes must be positive, got {max_chunk_bytes}")

    dtype = torch.float64 if torch.float64 in (query.dtype, db.dtype) else torch.float32
    query_unit = torch.nn.functional.normalize(query.to(dtype), dim=1)
    db_unit = torch.nn.functional.normalize(db.to(dtype), dim=1)
    chunk_size = max(1, max_chunk_bytes // (_BYTES_PER_ITEM * n_db))

    keys = [f"lit_map_d{t:g}" for t in thresholds]
    keys += [f"lit_{family}@{k}" for family in ("acg", "ndcg", "wap") for k in cutoffs]
    per_query = {key: torch.empty(n_queries, dtype=torch.float64) for key in keys}
    # Queries with and without an excluded item have rankings of different lengths: one group each.
    for has_exclusion in (True, False):
        rows = torch.nonzero(excluded == has_exclusion).flatten()
        for start in range(0, rows.numel(), chunk_size):
            sel = rows[start : start + chunk_size]
            values = _chunk(
                query_unit[sel.to(device)],
                q_labels[sel.to(device)],
                db_unit,
                d_labels,
                index[sel].to(device) if has_exclusion else None,
                cutoffs,
                thresholds,
            )
            for key, value in values.items():
                per_query[key][sel] = value.cpu()

    # OML's keep_idxs: a query enters every mAP only if it has a relevant item at the strictest threshold.
    kept = ~per_query[f"lit_map_d{min(thresholds):g}"].isnan()
    for t in thresholds:
        per_query[f"lit_map_d{t:g}"][~kept] = math.nan
    n_kept = int(kept.sum())
    metrics = {key: float(values.mean()) for key, values in per_query.items()}
    for t in thresholds:
        metrics[f"lit_map_d{t:g}"] = float(per_query[f"lit_map_d{t:g}"][kept].mean()) if n_kept else math.nan
    return LiteratureReport(
        metrics=metrics,
        per_query={key: values.numpy() for key, values in per_query.items()},
        n_queries=n_queries,
        n_map_queries=n_kept,
    )
