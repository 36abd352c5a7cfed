"""Pair relations between multi-hot label sets.

Every loss and every retrieval metric of the project asks the same few questions of two label sets
``Y_i`` and ``Y_j``: how many labels they share, whether they share any, whether they are identical, their
Jaccard and cosine similarity, and how rare each label is. They live here once, vectorised as matrix
products, so that a loss over ``M`` anchors and ``R`` candidates costs ``O(M·R·C)``.

Labels are multi-hot ``(N, C)`` tensors of 0/1 values (bool, integer or float). An image with no label
is allowed: it shares nothing with anyone, and its Jaccard/cosine with anything is 0.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor


def as_multi_hot(labels: Tensor | np.ndarray, name: str = "labels", dtype: torch.dtype = torch.float32) -> Tensor:
    """Validate a multi-hot label matrix (torch or numpy) and return it as a ``dtype`` tensor.

    Raises ``ValueError`` naming ``name`` when the array is not 2-D or holds values other than 0 and 1,
    because a soft or mis-encoded label would silently change every pair relation below.
    """
    labels = torch.as_tensor(labels)
    if labels.dim() != 2:
        raise ValueError(f"{name} must be 2-D (items, labels); got shape {tuple(labels.shape)}")
    if labels.dtype != torch.bool:
        bad = (labels != 0) & (labels != 1)
        if bool(bad.any()):
            row, col = (int(v) for v in bad.nonzero()[0])
            value = labels[row, col].item()
            raise ValueError(
                f"{name} must be multi-hot with values 0/1 only; found {value!r} at row {row}, column {col}"
            )
    return labels.to(dtype)


def shared_count(a: Tensor, b: Tensor) -> Tensor:
    """``|Y_i ∩ Y_j|`` for every row of ``a`` (N, C) against every row of ``b`` (R, C): (N, R)."""
    return a @ b.T


def overlap_and_union(a: Tensor, b: Tensor, weights: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """``(Σ_{c∈Y_i∩Y_j} w_c, Σ_{c∈Y_i∪Y_j} w_c)`` (N, R) each, with ``w_c = 1`` when ``weights`` is None.

    Both come out of one matrix product each: the union ``|Y_i| + |Y_j| − |Y_i∩Y_j|`` is the product of
    the augmented rows ``[w·y_i, Σw·y_i, 1]`` and ``[−y_j, 1, Σw·y_j]``, so no (N, R) broadcasting
    arithmetic is needed. A tiny constant keeps the union of two empty sets positive, so ratios are 0.
    """
    wa = a if weights is None else a * weights
    wb_sum = (b if weights is None else b * weights).sum(1, keepdim=True)
    tiny = torch.finfo(a.dtype).tiny
    left = torch.cat([wa, wa.sum(1, keepdim=True), a.new_ones(a.shape[0], 1)], dim=1)
    right = torch.cat([-b, b.new_ones(b.shape[0], 1), wb_sum + tiny], dim=1)
    return wa @ b.T, left @ right.T


def any_overlap(a: Tensor, b: Tensor) -> Tensor:
    """Boolean (N, R): the two images share at least one label (SupCon's ``any`` rule)."""
    return shared_count(a, b) > 0


def exact_match(a: Tensor, b: Tensor) -> Tensor:
    """Boolean (N, R): identical, non-empty label sets (SupCon's ``all`` rule).

    Two unlabelled images are *not* a match: an unlabelled image is a negative for everyone.
    """
    shared = shared_count(a, b)
    return (shared == a.sum(1, keepdim=True)) & (shared == b.sum(1)[None, :]) & (shared > 0)


def cosine_from_shared(shared: Tensor, n_a: Tensor, n_b: Tensor) -> Tensor:
    """Cosine of label vectors from the shared count and both set sizes (broadcasting); 0 if a set is empty.

    A non-empty pair has ``sqrt(|Y_i|·|Y_j|) ≥ 1`` and an empty set shares nothing, so clamping the norm
    at 1 gives exactly 0 where the cosine is undefined.
    """
    return shared / torch.sqrt(n_a * n_b).clamp_min(1.0)


def jaccard_from_shared(shared: Tensor, n_a: Tensor, n_b: Tensor) -> Tensor:
    """Jaccard of label sets from the shared count and both set sizes (broadcasting); 0 if both are empty.

    The union is an integer ≥ 1 unless both sets are empty (and then ``shared = 0``): clamping it at 1
    gives exactly 0 there.
    """
    return shared / (n_a + n_b - shared).clamp_min(1.0)


def jaccard(a: Tensor, b: Tensor) -> Tensor:
    """``|Y_i ∩ Y_j| / |Y_i ∪ Y_j|`` (N, R), 0 where both sets are empty."""
    return jaccard_from_shared(shared_count(a, b), a.sum(1, keepdim=True), b.sum(1)[None, :])


def cosine(a: Tensor, b: Tensor) -> Tensor:
    """Cosine of the two multi-hot vectors (N, R), 0 where either set is empty."""
    return cosine_from_shared(shared_count(a, b), a.sum(1, keepdim=True), b.sum(1)[None, :])


def weighted_jaccard(a: Tensor, b: Tensor, weights: Tensor) -> Tensor:
    """``Σ_{c∈Y_i∩Y_j} w_c / Σ_{c∈Y_i∪Y_j} w_c`` (N, R) for positive per-label weights (C,).

    With rarity weights this is MACL's pair weight ``w_ip``: a shared rare label counts for more than a
    shared common one. 0 where both sets are empty.
    """
    shared, union = overlap_and_union(a, b, weights)
    return shared / union


def label_rarity(label_counts: Sequence[float] | Tensor, num_samples: int, gamma: float) -> Tensor:
    """Label rarity ``r_c = ((N + 1) / (n_c + 1))^gamma``, divided by its mean over labels.

    Normalising to mean 1 keeps the overall loss scale independent of ``gamma`` and of the number of
    labels; ``gamma = 0`` gives ``r_c = 1`` for every label (frequency sensitivity off). The ``+1`` keeps a
    label absent from the training set finite.
    """
    counts = torch.as_tensor(label_counts, dtype=torch.float64)
    if counts.dim() != 1 or counts.numel() == 0:
        raise ValueError(f"label_counts must be a non-empty 1-D sequence; got shape {tuple(counts.shape)}")
    if bool((counts < 0).any()):
        raise ValueError(f"label_counts must be non-negative; got {counts.tolist()}")
    if num_samples <= 0 or num_samples < counts.max().item():
        raise ValueError(
            f"num_samples ({num_samples}) must be positive and at least the largest label count "
            f"({int(counts.max().item())})"
        )
    if gamma < 0:
        raise ValueError(f"gamma must be >= 0; got {gamma}")
    rarity = ((num_samples + 1) / (counts + 1)) ** gamma
    return rarity / rarity.mean()
