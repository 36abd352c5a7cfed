"""Label-level anchors, as introduced by MulSupCon and extended by MACL.

Each anchor image ``i`` is expanded into one anchor per label ``c ∈ Y_i``; the positives of ``(i, c)``
are the candidates that carry ``c``:

    L_ic = − Σ_{p∈P_c(i)} w_ip · l_ip / Σ_{p∈P_c(i)} w_ip,     P_c(i) = {p ∈ A(i) : c ∈ Y_p}

Summing over ``p ∈ P_c(i)`` for every ``c`` at once is a matrix product with the candidates' label
matrix, so the cost is ``O(M·R·C)`` with no loop over anchors or labels. The log-probability is never
materialised: with ``l_ip = x_ip − lse_i`` (``x`` the logits, ``lse_i`` the log-normaliser over
``A(i)``), ``Σ_p w_ip l_ip = Σ_p w_ip x_ip − lse_i · Σ_p w_ip``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from macl.losses.base import _EPS, AnchorTerms, PairBatch, contrast_logsumexp

REDUCTIONS = ("label", "sample")


def label_level_terms(
    batch: PairBatch,
    pair_weight: Tensor,
    *,
    logits: Tensor | None = None,
    label_temperature: Tensor | None = None,
    label_weight: Tensor | None = None,
    reduction: str = "label",
) -> AnchorTerms:
    """Terms ``L_ic`` (M, C) and their weights ``v_i · u_c`` for the label-level anchors of a batch.

    Args:
        batch: the paired batch (labels required).
        pair_weight: ``w_ip`` (M, R), positive on every pair that may be a positive (1 without PLR).
        logits: ``s_ia / T_ia`` (M, R) when one softmax serves every label of an anchor (a constant or
            per-pair temperature).
        label_temperature: ``T_c`` (C,) instead of ``logits`` when the temperature depends on the anchor
            label (MACL's ``dts='anchor'``): each label then has its own softmax over ``A(i)``. Only the
            log-normalisers that some label-level anchor uses are computed — one row per (anchor,
            distinct temperature among its labels) — so the cost grows with the labels per image, not C.
        label_weight: ``u_c`` (C,), the weight of every anchor of label ``c`` (weighted MACL); ones if None.
        reduction: ``'label'`` (``v_i = 1``: an image with more labels weighs more, MulSupCon's default) or
            ``'sample'`` (``v_i = 1 / #label-level anchors of i``: every anchor image weighs the same).
    """
    if (logits is None) == (label_temperature is None):
        raise ValueError("pass exactly one of logits and label_temperature")
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}; got {reduction!r}")
    if batch.labels is None or batch.ref_labels is None:
        raise ValueError("label-level anchors need labels")
    ref_labels = batch.ref_labels
    weight = batch.in_contrast(pair_weight)
    denom = weight @ ref_labels  # Σ_{p∈P_c(i)} w_ip, (M, C)
    counted = (batch.labels > 0) & (batch.positives_per_label() > 0)

    if logits is not None:
        lse = contrast_logsumexp(logits, batch.self_index)[:, None]
        numer = (weight * logits) @ ref_labels - lse * denom
    else:
        assert label_temperature is not None
        lse = _per_label_logsumexp(batch, label_temperature, counted)
        numer = ((weight * batch.sim) @ ref_labels) / label_temperature - lse * denom
    raw = -numer / denom.clamp_min(_EPS)
    terms = torch.where(counted, raw, torch.zeros_like(raw))

    weights = counted.to(raw.dtype)
    if label_weight is not None:
        weights = weights * label_weight.to(raw.dtype)
    if reduction == "sample":
        weights = weights / counted.sum(dim=1, keepdim=True).clamp_min(1).to(raw.dtype)
    return AnchorTerms(terms, weights)


def _per_label_logsumexp(batch: PairBatch, label_temperature: Tensor, counted: Tensor) -> Tensor:
    """``lse_ic = log Σ_{a∈A(i)} exp(s_ia / T_c)`` (M, C) where ``(i, c)`` is an anchor, 0 elsewhere.

    Labels that share a temperature share a row, and rows no anchor uses are skipped.
    """
    temps, which = torch.unique(label_temperature, return_inverse=True)
    m = batch.sim.shape[0]
    needed = torch.zeros(m, temps.numel(), dtype=batch.sim.dtype, device=batch.sim.device)
    needed = needed.index_add(1, which, counted.to(batch.sim.dtype)) > 0
    rows, ks = needed.nonzero(as_tuple=True)
    row_lse = contrast_logsumexp(batch.sim[rows] / temps[ks, None], batch.self_index[rows])
    lse = batch.sim.new_zeros(m, temps.numel()).index_put((rows, ks), row_lse)
    return lse[:, which]
