"""Shared machinery of every contrastive loss: pair matrices, masked log-softmax, anchor terms, reduction.

A loss in this package is three small decisions on top of this module:

1. **which pairs are positive, and with what weight** (a function of the two label sets);
2. **which temperature each pair gets** (a constant, or per pair/anchor for MACL's DTS);
3. **how anchors are averaged** (per image, or per label-level anchor as in MulSupCon).

Everything else — L2 normalisation, the anchor-vs-reference similarity matrix, excluding an anchor from
its own contrast set, the numerically safe masked ``log_softmax``, and the reduction that never counts an
anchor without positives — is done here once, so each loss file stays short and the formulas can be read
off it.

Numerics. The loss is always computed in at least float32 with autocast disabled (a bfloat16 logit at
temperature 0.01 has a resolution of ~0.4 nats, enough to derail training), and the row maximum is
subtracted (detached) before exponentiating, over the anchor's contrast set only. Anchors without any
positive are excluded from the mean, never counted as zero; if no anchor has a positive, the loss is
``0`` and still differentiable (its gradient is zero), so a training step on a degenerate batch is a
no-op rather than an error.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from macl.labels import as_multi_hot

# Denominators of weighted means are clamped at this value. Real denominators are sums of positive
# weights (>= ~1e-3 in practice), so the clamp only ever touches rows that are masked out afterwards.
_EPS = 1e-12


def exclude_self(matrix: Tensor, self_index: Tensor, value: float) -> Tensor:
    """``matrix`` (M, R) with entry ``(i, self_index[i])`` set to ``value`` wherever ``self_index[i] >= 0``.

    Out of place and ``O(M)``: the contrast set ``A(i)`` differs from "all candidates" in at most one
    entry per row, so it is stored as that entry's position rather than as a dense (M, R) mask.
    """
    rows = (self_index >= 0).nonzero().squeeze(1)
    return matrix.index_put((rows, self_index[rows]), torch.tensor(value, dtype=matrix.dtype, device=matrix.device))


@dataclass(frozen=True)
class PairBatch:
    """The anchors of a batch against their candidates (the batch itself, or a reference set).

    Attributes:
        sim: cosine similarities ``s_ia`` (M, R), float32 or float64.
        self_index: (M,) position of anchor ``i`` among the candidates, ``-1`` where it is not one of them.
            ``A(i)`` is every candidate except that one.
        labels: anchor labels (M, C) as 0/1 floats, or ``None`` for a label-free loss.
        ref_labels: candidate labels (R, C), or ``None``.
        ids, ref_ids: image identities (M,), (R,) for a loss whose positives are views of one image.
    """

    sim: Tensor
    self_index: Tensor
    labels: Tensor | None
    ref_labels: Tensor | None
    ids: Tensor | None = None
    ref_ids: Tensor | None = None

    def in_contrast(self, matrix: Tensor) -> Tensor:
        """``matrix`` restricted to ``A(i)``: each anchor's own entry zeroed (or set False)."""
        return exclude_self(matrix, self.self_index, 0)

    def positives_per_label(self) -> Tensor:
        """``|P_c(i)|`` (M, C): candidates in ``A(i)`` carrying label ``c``, from column sums in ``O(R·C)``."""
        assert self.ref_labels is not None
        counts = self.ref_labels.sum(0).expand(self.sim.shape[0], -1)
        own = torch.where(
            (self.self_index >= 0)[:, None], self.ref_labels[self.self_index.clamp_min(0)], torch.zeros_like(counts)
        )
        return counts - own


@dataclass(frozen=True)
class AnchorTerms:
    """Per-anchor loss terms and the weight each gets in the mean (0 = not an anchor).

    ``terms`` and ``weights`` have the same shape: (M,) for image-level anchors, (M, C) for label-level
    anchors. ``terms`` is finite everywhere, so masked entries cannot leak NaN into the gradient.
    """

    terms: Tensor
    weights: Tensor

    def reduce(self) -> Tensor:
        """``Σ weights · terms / Σ weights``; exactly 0 (with a zero gradient) when nothing counts."""
        numerator, denominator = self.sums()
        return numerator / denominator.clamp_min(_EPS)

    def sums(self) -> tuple[Tensor, Tensor]:
        """``(Σ weights · terms, Σ weights)``: what data-parallel processes add up before dividing.

        The weights of every loss here come from labels only (never from embeddings), so a global mean
        is the sum of the processes' numerators over their summed weights, with no gradient through
        the denominator.
        """
        return (self.weights * self.terms).sum(), self.weights.sum()


def build_pair_batch(
    embeddings: Tensor,
    labels: Tensor | None,
    ref_emb: Tensor | None = None,
    ref_labels: Tensor | None = None,
    ref_self_index: Tensor | None = None,
) -> PairBatch:
    """Normalise, validate and pair the anchors with their candidates.

    Without ``ref_emb`` the candidates are the batch and ``A(i)`` is every item except ``i``. With
    ``ref_emb`` the candidates are the reference set (a memory queue, or embeddings gathered from other
    processes); ``ref_self_index[i]`` (or ``-1``) names anchor ``i``'s own position in it, so that a
    reference set that contains the batch does not contrast an anchor with itself.
    """
    if embeddings.dim() != 2:
        raise ValueError(f"embeddings must be (M, D); got shape {tuple(embeddings.shape)}")
    dtype = torch.float64 if embeddings.dtype == torch.float64 else torch.float32
    z = F.normalize(embeddings.to(dtype), dim=1)
    m = z.shape[0]
    if labels is not None:
        labels = as_multi_hot(labels, "labels", dtype)
        if labels.shape[0] != m:
            raise ValueError(f"labels has {labels.shape[0]} rows but embeddings has {m}")

    if labels is not None and (ref_emb is None) != (ref_labels is None):
        raise ValueError("ref_emb and ref_labels must be given together")
    if ref_emb is None:
        if ref_self_index is not None:
            raise ValueError("ref_self_index only makes sense with ref_emb")
        return PairBatch(z @ z.T, torch.arange(m, device=z.device), labels, labels)

    if ref_emb.dim() != 2 or ref_emb.shape[1] != z.shape[1]:
        raise ValueError(f"ref_emb must be (R, {z.shape[1]}) like embeddings; got shape {tuple(ref_emb.shape)}")
    zr = F.normalize(ref_emb.to(dtype), dim=1)
    if ref_labels is not None:
        ref_labels = as_multi_hot(ref_labels, "ref_labels", dtype)
        if ref_labels.shape[0] != zr.shape[0]:
            raise ValueError(f"ref_labels has {ref_labels.shape[0]} rows but ref_emb has {zr.shape[0]}")
        if labels is not None and ref_labels.shape[1] != labels.shape[1]:
            raise ValueError(f"ref_labels has {ref_labels.shape[1]} label columns but labels has {labels.shape[1]}")
    if ref_self_index is None:
        self_index = torch.full((m,), -1, dtype=torch.long, device=z.device)
    else:
        self_index = torch.as_tensor(ref_self_index, device=z.device).long()
        if self_index.shape != (m,) or bool((self_index >= zr.shape[0]).any()) or bool((self_index < -1).any()):
            raise ValueError(f"ref_self_index must be (M,) positions in ref_emb or -1; got {self_index.tolist()}")
    return PairBatch(z @ zr.T, self_index, labels, ref_labels)


def contrast_logsumexp(logits: Tensor, self_index: Tensor) -> Tensor:
    """``log Σ_{a∈A(i)} exp(logits_ia)`` for every row (M,), stable and NaN-free.

    The maximum is taken over ``A(i)`` only and detached (it cancels analytically). The anchor's own
    entry is replaced by ``-inf`` before ``exp`` rather than multiplied by zero afterwards, because a
    self-similarity ``1/T`` can overflow ``exp`` and ``inf · 0`` is NaN. A row whose ``A(i)`` is empty
    gets a finite value; its terms are always masked out by the caller.
    """
    masked = exclude_self(logits, self_index, float("-inf"))
    row_max = masked.amax(dim=-1, keepdim=True).detach()
    row_max = torch.where(torch.isfinite(row_max), row_max, torch.zeros_like(row_max))
    total = torch.exp(masked - row_max).sum(dim=-1, keepdim=True)
    return (row_max + torch.log(total.clamp_min(torch.finfo(total.dtype).tiny))).squeeze(-1)


def contrast_log_softmax(logits: Tensor, self_index: Tensor) -> Tensor:
    """``l_ia = logits_ia − log Σ_{a'∈A(i)} exp(logits_ia')``; finite everywhere, meaningful on ``A(i)``."""
    return logits - contrast_logsumexp(logits, self_index).unsqueeze(-1)


def weighted_positive_terms(log_prob: Tensor, pos_weight: Tensor, *, normalise_by: str = "weight") -> AnchorTerms:
    """Per-anchor terms ``−Σ_p w_ip l_ip / Z_i`` of the single-level losses (SupCon and relatives).

    ``pos_weight`` (M, R) is zero outside the anchor's positives (and on the anchor itself). ``Z_i`` is
    the sum of the weights (``'weight'``, a weighted mean) or the number of positives (``'count'``, the
    convention of losses whose weights modulate each positive rather than average them).
    """
    positive = pos_weight > 0
    counted = positive.any(dim=1)
    if normalise_by == "weight":
        norm = pos_weight.sum(dim=1)
    elif normalise_by == "count":
        norm = positive.sum(dim=1).to(pos_weight.dtype)
    else:
        raise ValueError(f"normalise_by must be 'weight' or 'count'; got {normalise_by!r}")
    raw = -(pos_weight * log_prob).sum(dim=1) / norm.clamp_min(_EPS)
    return AnchorTerms(torch.where(counted, raw, torch.zeros_like(raw)), counted.to(raw.dtype))


class ContrastiveLoss(nn.Module, ABC):
    """Base class: ``loss(embeddings, labels, ref_emb=None, ref_labels=None, ref_self_index=None)``.

    Args (of ``forward``):
        embeddings: (M, D) float projections; L2-normalised here, so raw outputs may be passed.
            With ``V`` views of ``B`` images, ``M = B·V`` and views share their image's labels.
        labels: (M, C) multi-hot (bool, integer or 0/1 float).
        ref_emb, ref_labels: optional reference set (R, D), (R, C). Anchors come from the batch;
            positives and negatives from the reference set (memory queue, cross-GPU negatives).
        ref_self_index: optional (M,) position of each anchor inside ``ref_emb`` (or -1), for a
            reference set that contains the batch (e.g. an all-gather), so no anchor contrasts itself.

    Returns a scalar: the mean of the per-anchor terms over anchors that have at least one positive.
    The value is comparable across batch sizes (a mean, not a sum) and is not multiplied by any world
    size. Called directly under data parallelism it is the mean over the calling process's anchors; the
    training loop's :class:`macl.objective.Objective` takes :meth:`terms` instead and divides the sum
    over all processes' anchors by their summed weights: the global mean, the same on every process.
    """

    def __init__(self, tau: float) -> None:
        super().__init__()
        if tau <= 0:
            raise ValueError(f"tau must be positive; got {tau}")
        self.tau = tau

    def forward(
        self,
        embeddings: Tensor,
        labels: Tensor | None = None,
        ref_emb: Tensor | None = None,
        ref_labels: Tensor | None = None,
        ref_self_index: Tensor | None = None,
    ) -> Tensor:
        return self.terms(embeddings, labels, ref_emb, ref_labels, ref_self_index).reduce()

    def terms(
        self,
        embeddings: Tensor,
        labels: Tensor | None = None,
        ref_emb: Tensor | None = None,
        ref_labels: Tensor | None = None,
        ref_self_index: Tensor | None = None,
    ) -> AnchorTerms:
        """The per-anchor terms whose weighted mean ``forward`` returns (what a global mean adds up)."""
        with torch.autocast(device_type=embeddings.device.type, enabled=False):
            batch = self.pair_batch(embeddings, labels, ref_emb, ref_labels, ref_self_index)
            return self.anchor_terms(batch)

    def pair_batch(
        self,
        embeddings: Tensor,
        labels: Tensor | None,
        ref_emb: Tensor | None,
        ref_labels: Tensor | None,
        ref_self_index: Tensor | None,
    ) -> PairBatch:
        """Pair the anchors with their candidates; a self-supervised loss overrides this to use views."""
        if labels is None:
            raise ValueError(f"{type(self).__name__} needs labels: a multi-hot (M, C) tensor")
        return build_pair_batch(embeddings, labels, ref_emb, ref_labels, ref_self_index)

    @abstractmethod
    def anchor_terms(self, batch: PairBatch) -> AnchorTerms:
        """The loss's per-anchor terms and anchor weights for one paired batch."""
