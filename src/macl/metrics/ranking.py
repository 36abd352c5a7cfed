"""Per-query ranking metrics on already-ranked relevance and gain arrays.

Every function takes ``(Q, N)`` arrays whose column ``n - 1`` is the item at rank ``n`` (1-based) of
each query's ranking, computes in float64 and returns a ``(Q,)`` float64 tensor. Ranking (sorting by
similarity, excluding the query itself) is :func:`macl.metrics.evaluate_retrieval`'s job; these functions
hold only the definitions, so hand-computed tests can target them directly.

Conventions, for query ``q``, binary relevance ``rel(n)`` and gain ``gain(n)`` at rank ``n``:

- ``k`` beyond the ranking: every @k metric uses ``k_eff = min(k, N)``, so a short database is not
  penalised for items it cannot hold (P@k of a perfect ranking stays 1).
- ``P@k = (1/k_eff) Σ_{n≤k} rel(n)``.
- ``AP = (1/R) Σ_n rel(n)·P@n`` over the whole ranking, ``R`` = number of relevant items in the database
  (passed explicitly, so a truncated ranking can still be scored against the full ``R``); NaN when
  ``R = 0``: such a query has no defined AP and must not count as 0 in a mean.
- ``mAP@k = Σ_{n≤k} rel(n)·P@n / Σ_{n≤k} rel(n)`` (the hashing-retrieval convention of remote-sensing
  retrieval papers: normalised by the relevant items *retrieved*, not by ``R``); 0 when the top ``k``
  holds no relevant item, NaN when the whole row holds none (so ``rel`` must be the full ranking).
- ``ACG@k = (1/k_eff) Σ_{n≤k} gain(n)``.
- ``nDCG@k = DCG@k / IDCG@k`` with ``DCG@k = Σ_{n≤k} (2^gain(n) − 1) / log2(1 + n)`` and ``IDCG@k`` the same
  sum over the ideal gains (all database gains sorted descending, not only the retrieved ones); NaN when
  ``IDCG@k = 0``.
- ``WAP@k = Σ_{n≤k} rel(n)·ACG@n / Σ_{n≤k} rel(n)``; 0 when the top ``k`` holds no relevant item, NaN
  when the whole row holds none.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = [
    "acg_at_k",
    "average_precision",
    "average_precision_at_k",
    "ndcg_at_k",
    "precision_at_k",
    "wap_at_k",
]


def _as_ranked(values: torch.Tensor | np.ndarray, name: str) -> torch.Tensor:
    """Return ``values`` as a 2-D float64 tensor, or raise ``ValueError`` naming the argument."""
    tensor = torch.as_tensor(values, dtype=torch.float64)
    if tensor.ndim != 2:
        raise ValueError(f"{name} must be 2-D (queries, ranks), got shape {tuple(tensor.shape)}")
    return tensor


def _k_eff(k: int, n_items: int) -> int:
    """``min(k, n_items)`` after checking that ``k`` is a positive integer."""
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    return min(int(k), n_items)


def _ranks(n: int, like: torch.Tensor) -> torch.Tensor:
    """The 1-based ranks ``1..n`` as float64 on ``like``'s device."""
    return torch.arange(1, n + 1, dtype=torch.float64, device=like.device)


def _row_sum(values: torch.Tensor, in_place: bool = False) -> torch.Tensor:
    """Sum each row sequentially in rank order (the last column of a cumulative sum).

    torch's vectorised ``sum`` picks its summation order from the tensor's shape, so one row summed within
    a different batch can differ in the last bit; a sequential sum makes evaluation bit-identical however
    the queries are chunked. Sums of 0/1 values are exact in any order and use ``sum``.
    """
    if values.shape[1] == 0:
        return values.new_zeros(values.shape[0])
    cumulative = values.cumsum_(dim=1) if in_place else torch.cumsum(values, dim=1)
    return cumulative[:, -1]


def _nan_where(condition: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """``values`` with NaN where ``condition`` holds (an undefined per-query value)."""
    return torch.where(condition, torch.full_like(values, float("nan")), values)


def precision_at_k(rel: torch.Tensor | np.ndarray, k: int) -> torch.Tensor:
    """Fraction of relevant items among the first ``k_eff`` ranks."""
    rel = _as_ranked(rel, "rel")
    k_eff = _k_eff(k, rel.shape[1])
    return rel[:, :k_eff].sum(1) / max(k_eff, 1)


def average_precision(rel: torch.Tensor | np.ndarray, n_relevant: torch.Tensor | np.ndarray) -> torch.Tensor:
    """AP over the whole ranking, normalised by ``n_relevant`` (``R``, shape ``(Q,)``); NaN where ``R = 0``.

    ``rel`` is 0/1. The cumulative precision is built in place because this function also scores the
    per-label rankings of :func:`evaluate_retrieval`, whose rows number up to ``queries × labels``.
    """
    rel = _as_ranked(rel, "rel")
    n_relevant = torch.as_tensor(n_relevant, dtype=torch.float64, device=rel.device)
    if n_relevant.shape != (rel.shape[0],):
        raise ValueError(f"n_relevant must have shape ({rel.shape[0]},), got {tuple(n_relevant.shape)}")
    precision = torch.cumsum(rel, dim=1)
    precision.div_(_ranks(rel.shape[1], rel)).mul_(rel)
    ap = _row_sum(precision, in_place=True) / n_relevant.clamp_min(1.0)
    return _nan_where(n_relevant <= 0, ap)


def average_precision_at_k(rel: torch.Tensor | np.ndarray, k: int) -> torch.Tensor:
    """mAP@k in the hashing-retrieval convention: mean of P@n over the relevant ranks ``n ≤ k``."""
    rel = _as_ranked(rel, "rel")
    k_eff = _k_eff(k, rel.shape[1])
    top = rel[:, :k_eff]
    hits = top.sum(1)
    precision_sum = _row_sum(top * torch.cumsum(top, dim=1) / _ranks(k_eff, rel))
    # No hit in the top k: the precision sum is 0 too, and 0 / 1 gives the convention's 0.
    return _nan_where(rel.sum(1) <= 0, precision_sum / hits.clamp_min(1.0))


def acg_at_k(gain: torch.Tensor | np.ndarray, k: int) -> torch.Tensor:
    """Average cumulative gain of the first ``k_eff`` ranks."""
    gain = _as_ranked(gain, "gain")
    k_eff = _k_eff(k, gain.shape[1])
    return _row_sum(gain[:, :k_eff]) / max(k_eff, 1)


def _exp2m1(gain: torch.Tensor) -> torch.Tensor:
    """``2^gain − 1``, computed once per distinct value with Python's ``pow``.

    torch's vectorised ``exp2`` rounds the elements that fall in a vector tail differently, so a gain's
    power could depend on its position in the batch and chunked evaluation would differ in the last bit.
    Gains derived from labels take few distinct values (at most ``(C + 1)^3``), so the loop is short.
    """
    distinct, inverse = torch.unique(gain, return_inverse=True)
    powers = [2.0**value - 1.0 for value in distinct.tolist()]
    return torch.tensor(powers, dtype=torch.float64, device=gain.device)[inverse]


def _dcg(gain: torch.Tensor, k_eff: int) -> torch.Tensor:
    """``Σ_{n≤k_eff} (2^gain(n) − 1) / log2(1 + n)``."""
    discount = torch.log2(_ranks(k_eff, gain) + 1.0)
    return _row_sum(_exp2m1(gain[:, :k_eff]) / discount)


def ndcg_at_k(gain: torch.Tensor | np.ndarray, ideal_gain_sorted: torch.Tensor | np.ndarray, k: int) -> torch.Tensor:
    """nDCG@k against the ideal order of the whole database; NaN where the ideal DCG is 0.

    ``ideal_gain_sorted`` holds, per query, the database's gains sorted descending (at least its first
    ``k`` of them; the full sort is not needed). Using the whole database rather than the retrieved list
    for the ideal is what makes a ranking that misses the best items score below 1.
    """
    gain = _as_ranked(gain, "gain")
    ideal = _as_ranked(ideal_gain_sorted, "ideal_gain_sorted").to(gain.device)
    if ideal.shape[0] != gain.shape[0]:
        raise ValueError(f"ideal_gain_sorted has {ideal.shape[0]} rows but gain has {gain.shape[0]}")
    dcg = _dcg(gain, _k_eff(k, gain.shape[1]))
    ideal_dcg = _dcg(ideal, _k_eff(k, ideal.shape[1]))
    return _nan_where(ideal_dcg <= 0, dcg / torch.where(ideal_dcg > 0, ideal_dcg, 1.0))


def wap_at_k(rel: torch.Tensor | np.ndarray, gain: torch.Tensor | np.ndarray, k: int) -> torch.Tensor:
    """Weighted AP@k: mean of ``ACG@n`` over the relevant ranks ``n ≤ k``.

    ``gain`` is the shared-label count for plain WAP, or the cosine/Jaccard gain for its graded variants;
    ``rel`` stays the binary any-overlap relevance in every variant.
    """
    rel = _as_ranked(rel, "rel")
    gain = _as_ranked(gain, "gain").to(rel.device)
    if gain.shape != rel.shape:
        raise ValueError(f"gain has shape {tuple(gain.shape)} but rel has {tuple(rel.shape)}")
    k_eff = _k_eff(k, rel.shape[1])
    top = rel[:, :k_eff]
    hits = top.sum(1)
    acg = torch.cumsum(gain[:, :k_eff], dim=1) / _ranks(k_eff, rel)
    # No hit in the top k: the weighted sum is 0 too, and 0 / 1 gives the convention's 0.
    return _nan_where(rel.sum(1) <= 0, _row_sum(top * acg) / hits.clamp_min(1.0))
