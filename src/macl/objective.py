"""The training objective of one step: the loss of the global batch, on one process or many.

``loss = criterion + λ·BCE`` (λ = ``train.bce_weight``; the BCE baseline is the BCE term alone), every
term a **global mean**: the contrastive term averages the per-anchor terms of every anchor of the global
batch (the batch of all processes together) against every candidate of it, plus the memory when there is
one; the BCE term averages over every (image view, label) of the global batch. The number returned for
logging is that global mean, the same on every process and the same for any number of processes that
share a global batch — never multiplied by the world size.

How the gradient is scaled: process ``r`` computes ``N_r``, the weighted sum of its own anchors' terms
(its embeddings against the gathered global batch), and ``D``, the weights summed over all processes;
it back-propagates ``W · N_r / D``. The gather returns to each process the gradient that all processes'
terms send to its rows, and DDP averages the parameter gradients over the ``W`` processes, so the
factor ``W`` cancels DDP's ``1/W`` and every process applies exactly ``∂(Σ_r N_r / D)/∂θ``: the gradient
one process would compute on the whole global batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from macl import distributed
from macl.losses.base import ContrastiveLoss
from macl.losses.ntxent import NTXentLoss
from macl.memory import MemoryQueue

_EPS = 1e-12


@dataclass(frozen=True)
class StepLoss:
    """What one step computed: the tensor to back-propagate and the loss to log."""

    backward: Tensor  # W · (this process's share); its gradient is the global loss's after DDP averages
    value: float  # the global mean, identical on every process
    images: int  # images (not views) in the global batch


class Objective:
    """``criterion`` (a contrastive loss, or ``BCEWithLogitsLoss`` for the BCE baseline) + λ·BCE head.

    Args:
        criterion: the loss of the head's output.
        bce_weight: λ of the hybrid's BCE head on the extra classifier's logits (0: none).
        n_views: views per image in the batch (view-major: ``cat([view_1, …, view_V])``).
        memory: a cross-batch memory whose rows join every anchor's candidates (contrastive losses only).
    """

    def __init__(
        self, criterion: nn.Module, bce_weight: float = 0.0, n_views: int = 2, memory: MemoryQueue | None = None
    ) -> None:
        if memory is not None and not isinstance(criterion, ContrastiveLoss):
            raise ValueError("a memory holds embeddings for a pair loss; the BCE baseline has no pairs")
        self.criterion, self.bce_weight, self.n_views, self.memory = criterion, bce_weight, n_views, memory

    def __call__(self, output: Tensor, labels: Tensor, logits: Tensor | None = None) -> StepLoss:
        """The step's loss from this process's ``output`` (M, ·), ``labels`` (M, C) and head ``logits``."""
        world = distributed.current_world().size
        if isinstance(self.criterion, ContrastiveLoss):
            terms = [self._contrastive_sums(_full(output), labels)]
        else:
            terms = [_bce_sums(_full(output), labels)]
        if self.bce_weight > 0:
            assert logits is not None, "the hybrid's BCE head needs the classifier's logits"
            numerator, denominator = _bce_sums(_full(logits), labels)
            terms.append((self.bce_weight * numerator, denominator))
        views = torch.tensor(float(labels.shape[0]), dtype=terms[0][1].dtype, device=output.device)
        local = torch.stack([n.detach() for n, _ in terms] + [d for _, d in terms] + [views])
        totals = distributed.all_sum(local)  # one collective: numerators, denominators, views
        denominators = totals[len(terms) : 2 * len(terms)].clamp_min(_EPS)
        backward = torch.stack([world * n / d for (n, _), d in zip(terms, denominators, strict=True)]).sum()
        value = float((totals[: len(terms)] / denominators).sum())
        return StepLoss(backward, value, round(float(totals[-1]) / self.n_views))

    def _contrastive_sums(self, output: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
        """This process's anchors against the gathered global batch (and the memory)."""
        assert isinstance(self.criterion, ContrastiveLoss)
        if not distributed.current_world().distributed and self.memory is None:
            return self.criterion.terms(output, labels).sums()  # the global batch is this batch
        batch = distributed.gather(output)
        labels = labels.to(output.dtype)
        ntxent = isinstance(self.criterion, NTXentLoss)  # its positives are views of one image: ids, not labels
        # the labels of the global batch: the candidates' targets, and what the memory keeps
        batch_labels = distributed.gather(labels, batch.sizes).rows if self.memory is not None or not ntxent else None
        if ntxent:
            ids = self._image_ids(batch.sizes, output.device)
            targets, ref_targets = ids[batch.offset : batch.offset + output.shape[0]], ids
        else:
            assert batch_labels is not None
            targets, ref_targets = labels, batch_labels
        ref_emb = batch.rows
        self_index = batch.offset + torch.arange(output.shape[0], device=output.device)
        if self.memory is not None:
            stored, stored_labels = self.memory.contents()
            if ntxent:  # a remembered view is nobody's positive
                stored_labels = torch.full((stored.shape[0],), -1, dtype=ids.dtype, device=ids.device)
            ref_emb = torch.cat([ref_emb, stored.to(ref_emb)])
            ref_targets = torch.cat([ref_targets, stored_labels.to(ref_targets)])
        sums = self.criterion.terms(output, targets, ref_emb, ref_targets, self_index).sums()
        if self.memory is not None:  # after use: this batch joins the candidates of the next ones
            assert batch_labels is not None
            order = self._view_major(batch.sizes, output.device)  # the order one process would push
            self.memory.push(batch.rows[order], batch_labels[order])
        return sums

    def _image_ids(self, sizes: list[int], device: torch.device) -> Tensor:
        """Global image ids of the gathered views: process ``r``'s views are view-major over its images."""
        ids, first = [], 0
        for size in sizes:
            images = size // self.n_views
            ids.append(first + torch.arange(size, device=device) % images)
            first += images
        return torch.cat(ids)

    def _view_major(self, sizes: list[int], device: torch.device) -> Tensor:
        """Row order turning rank-major gathered views into the global view-major layout."""
        starts = [sum(sizes[:r]) for r in range(len(sizes))]
        order = [
            start + view * (size // self.n_views) + torch.arange(size // self.n_views, device=device)
            for view in range(self.n_views)
            for start, size in zip(starts, sizes, strict=True)
        ]
        return torch.cat(order)


def _full(tensor: Tensor) -> Tensor:
    """Float32 for a loss computed from bfloat16 outputs (autocast); float64 stays float64."""
    return tensor if tensor.dtype == torch.float64 else tensor.float()


def _bce_sums(logits: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
    """Summed binary cross-entropy of every (view, label) and the count of them."""
    total = nn.functional.binary_cross_entropy_with_logits(logits, labels.to(logits.dtype), reduction="sum")
    return total, torch.tensor(float(labels.numel()), dtype=logits.dtype, device=logits.device)
