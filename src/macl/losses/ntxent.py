"""NT-Xent (SimCLR, Chen et al. 2020): self-supervised, the positives are the other views of an image."""

from __future__ import annotations

from dataclasses import replace

import torch
from torch import Tensor

from macl.losses.base import (
    AnchorTerms,
    ContrastiveLoss,
    PairBatch,
    build_pair_batch,
    contrast_log_softmax,
    weighted_positive_terms,
)


def _image_ids(labels: Tensor | None, n: int, n_views: int, name: str) -> Tensor:
    """Image ids: ``labels`` itself when it is a 1-D id vector, else from the view-major layout."""
    if labels is not None and labels.dim() == 1:
        if labels.shape[0] != n:
            raise ValueError(f"{name} has {labels.shape[0]} image ids but there are {n} embeddings")
        return labels.long()
    if n % n_views:
        raise ValueError(
            f"{n} embeddings are not {n_views} views of whole images; pass 1-D image ids as {name}, "
            f"or order the batch as torch.cat([view_1, ..., view_{n_views}])"
        )
    return torch.arange(n) % (n // n_views)


class NTXentLoss(ContrastiveLoss):
    """``−log softmax_{a∈A(i)}(s_ia / tau)[p]`` averaged over anchors ``i`` and their other views ``p``.

    Labels are not used. Which embeddings are views of the same image comes from either

    * 1-D integer ``labels`` (image ids, the pytorch-metric-learning convention), or
    * the view-major layout ``embeddings = torch.cat([view_1, ..., view_V])`` of ``B`` images, so that
      item ``m`` belongs to image ``m mod B`` — what the training loop produces. Multi-hot labels, if
      passed, are ignored.

    The same applies to ``ref_labels`` for a reference set; ids are compared across the two sets.

    Args:
        tau: temperature (0.1, the default of the SimCLR reference code).
        n_views: views per image for the layout rule.
    """

    def __init__(self, tau: float = 0.1, n_views: int = 2) -> None:
        super().__init__(tau)
        if n_views < 2:
            raise ValueError(f"n_views must be >= 2 for views to be positives; got {n_views}")
        self.n_views = n_views

    def pair_batch(
        self,
        embeddings: Tensor,
        labels: Tensor | None,
        ref_emb: Tensor | None,
        ref_labels: Tensor | None,
        ref_self_index: Tensor | None,
    ) -> PairBatch:
        """Pair the batch, identifying images by id; multi-hot labels are not read."""
        ids = _image_ids(labels, embeddings.shape[0], self.n_views, "labels").to(embeddings.device)
        ref_ids = ids
        if ref_emb is not None:
            ref_ids = _image_ids(ref_labels, ref_emb.shape[0], self.n_views, "ref_labels").to(embeddings.device)
        batch = build_pair_batch(embeddings, None, ref_emb, None, ref_self_index)
        return replace(batch, ids=ids, ref_ids=ref_ids)

    def anchor_terms(self, batch: PairBatch) -> AnchorTerms:
        assert batch.ids is not None and batch.ref_ids is not None
        log_prob = contrast_log_softmax(batch.sim / self.tau, batch.self_index)
        same_image = (batch.ids[:, None] == batch.ref_ids[None, :]).to(log_prob.dtype)
        return weighted_positive_terms(log_prob, batch.in_contrast(same_image))

    def extra_repr(self) -> str:
        return f"tau={self.tau}, n_views={self.n_views}"
