"""Label relations between query items and database items, from multi-hot labels.

Retrieval in this project is judged by labels, not by classes: a database item is relevant to a query
when the two share at least one label, and graded metrics weigh it by *how much* they share. Every
function here takes query labels ``(Q, C)`` and database labels ``(N, C)``, multi-hot with values 0/1
(bool, integer or float arrays, numpy or torch), and returns a ``(Q, N)`` float64 tensor on the query
labels' device, so the result plugs straight into :mod:`macl.metrics.ranking` as relevance or gain.

Conventions (``Y_q``, ``Y_n`` are the two label sets):

- shared count ``r = |Y_q ∩ Y_n|``;
- any-overlap ``[r > 0]`` (binary relevance);
- cosine ``r / sqrt(|Y_q|·|Y_n|)``, **0 when either set is empty** (the limit is undefined; an unlabelled
  item is relevant to nothing);
- Jaccard ``r / |Y_q ∪ Y_n|``, **0 when both sets are empty** for the same reason.

All three graded relations are positive exactly when ``r > 0``, so "has a relevant item" means the same
under every gain.
"""

from __future__ import annotations

from functools import partial

import numpy as np
import torch

from macl.labels import as_multi_hot as _as_multi_hot
from macl.labels import cosine_from_shared, jaccard_from_shared

# Metrics accumulate in float64: AP over 100 000 items sums many small precision terms.
as_multi_hot = partial(_as_multi_hot, dtype=torch.float64)

__all__ = [
    "any_label_overlap",
    "as_multi_hot",
    "label_cosine",
    "label_frequencies",
    "label_jaccard",
    "shared_label_count",
]


def _check_pair(
    query_labels: torch.Tensor | np.ndarray, db_labels: torch.Tensor | np.ndarray
) -> tuple[torch.Tensor, torch.Tensor]:
    """Validate both label matrices and put the database labels on the query labels' device."""
    query = as_multi_hot(query_labels, "query_labels")
    db = as_multi_hot(db_labels, "db_labels").to(query.device)
    if query.shape[1] != db.shape[1]:
        raise ValueError(f"db_labels has {db.shape[1]} label columns but query_labels has {query.shape[1]}")
    return query, db


def shared_label_count(query_labels: torch.Tensor | np.ndarray, db_labels: torch.Tensor | np.ndarray) -> torch.Tensor:
    """``r[q, n] = |Y_q ∩ Y_n|``, the gain of ACG and of the default nDCG/WAP."""
    query, db = _check_pair(query_labels, db_labels)
    return query @ db.T


def any_label_overlap(query_labels: torch.Tensor | np.ndarray, db_labels: torch.Tensor | np.ndarray) -> torch.Tensor:
    """``[|Y_q ∩ Y_n| > 0]`` as 0./1.: the binary relevance of P@k, mAP and mAP@k."""
    return (shared_label_count(query_labels, db_labels) > 0).to(torch.float64)


def label_cosine(query_labels: torch.Tensor | np.ndarray, db_labels: torch.Tensor | np.ndarray) -> torch.Tensor:
    """Cosine of the two label vectors (the "cosine-based" graded relevance); 0 if either set is empty."""
    query, db = _check_pair(query_labels, db_labels)
    return cosine_from_shared(query @ db.T, query.sum(1, keepdim=True), db.sum(1)[None, :])


def label_jaccard(query_labels: torch.Tensor | np.ndarray, db_labels: torch.Tensor | np.ndarray) -> torch.Tensor:
    """Jaccard of the two label sets (the "Jaccard-based" graded relevance); 0 if both sets are empty."""
    query, db = _check_pair(query_labels, db_labels)
    return jaccard_from_shared(query @ db.T, query.sum(1, keepdim=True), db.sum(1)[None, :])


def label_frequencies(labels: torch.Tensor | np.ndarray) -> torch.Tensor:
    """Fraction of items carrying each label, ``(C,)`` float64 in [0, 1].

    This is the rarity scale of the rare/frequent split: a label is *rare* when its frequency is at most
    a threshold (10 % by default in :func:`macl.metrics.evaluate_retrieval`).
    """
    tensor = as_multi_hot(labels, "labels")
    if tensor.shape[0] == 0:
        raise ValueError("labels must hold at least one item to define label frequencies")
    return tensor.mean(0)
