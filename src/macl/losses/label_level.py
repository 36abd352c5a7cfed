"""Label-level anchors, as introduced by MulSupCon and extended by MACL.

Each anchor image ``i`` is expanded into one anchor per label ``c ∈ Y_i``; the positives of ``(i, c)``
are the candidates that carry ``c``:

    L_ic = − Σ_{p∈P_c(i)} w_ip · l_ip / Σ_{p∈P_c(i)} w_ip,     P_c(i) = {p ∈ A(i) : c ∈ Y_p}

Summing over ``p ∈ P_c(i)`` for every ``c`` at once is a matrix product with the candidates' label
matrix, so the cost is ``O(M·R·C)`` with no loop over anchors or labels.
"""

from __future__ import annotations

import torch
from torch import Tensor

from macl.losses.base import _EPS, AnchorTerms, PairBatch, masked_logsumexp

REDUCTIONS = ("label", "sample")


def label_level_terms(
    batch: PairBatch,
    pair_weight: Tensor,
    *,
    log_prob: Tensor | None = None,
    label_temperature: Tensor | None = None,
    label_weight: Tensor | None = None,
    reduction: str = "label",
) -> AnchorTerms:
    """Terms ``L_ic`` (M, C) and their weights ``v_i · u_c`` for the label-level anchors of a batch.

    Args:
        batch: the paired batch (labels required).
        pair_weight: ``w_ip`` (M, R), positive on every pair that may be a positive (1 without PLR).
        log_prob: ``l_ip`` (M, R) when one softmax serves every label of an anchor (a constant or
            per-pair temperature).
        label_temperature: ``T_c`` (C,) instead of ``log_prob`` when the temperature depends on the anchor
            label (MACL's ``dts='anchor'``): each label then has its own softmax over ``A(i)``. Only the
            log-normaliser is recomputed per distinct temperature, since ``Σ_p w l`` splits into
            ``(1/T_c) Σ_p w s − lse_c(i) Σ_p w``.
        label_weight: ``u_c`` (C,), the weight of every anchor of label ``c`` (weighted MACL); ones if None.
        reduction: ``'label'`` (``v_i = 1``: an image with more labels weighs more, MulSupCon's default) or
            ``'sample'`` (``v_i = 1 / #label-level anchors of i``: every anchor image weighs the same).
    """
    if (log_prob is None) == (label_temperature is None):
        raise ValueError("pass exactly one of log_prob and label_temperature")
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}; got {reduction!r}")
    if batch.labels is None or batch.ref_labels is None:
        raise ValueError("label-level anchors need labels")
    ref_labels = batch.ref_labels
    weight = pair_weight * batch.contrast
    denom = weight @ ref_labels  # Σ_{p∈P_c(i)} w_ip, (M, C)
    n_pos = batch.contrast.to(ref_labels.dtype) @ ref_labels  # |P_c(i)|
    counted = (batch.labels > 0) & (n_pos > 0)

    if log_prob is not None:
        numer = (weight * log_prob) @ ref_labels
    else:
        assert label_temperature is not None
        temps, which = torch.unique(label_temperature, return_inverse=True)
        # One log-normaliser per distinct temperature: (K, M) -> (M, C) by label.
        lse = masked_logsumexp(batch.sim.unsqueeze(0) / temps.view(-1, 1, 1), batch.contrast.unsqueeze(0))
        numer = ((weight * batch.sim) @ ref_labels) / label_temperature - lse[which].T * denom
    raw = -numer / denom.clamp_min(_EPS)
    terms = torch.where(counted, raw, torch.zeros_like(raw))

    weights = counted.to(raw.dtype)
    if label_weight is not None:
        weights = weights * label_weight.to(raw.dtype)
    if reduction == "sample":
        weights = weights / counted.sum(dim=1, keepdim=True).clamp_min(1).to(raw.dtype)
    return AnchorTerms(terms, weights)
