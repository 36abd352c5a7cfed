"""MulSupCon (Zhang & Wu, AAAI 2024), in-batch form."""

from __future__ import annotations

import torch

from macl.losses.base import AnchorTerms, ContrastiveLoss, PairBatch
from macl.losses.label_level import label_level_terms


class MulSupConLoss(ContrastiveLoss):
    """Multi-label supervised contrastive loss: one anchor per (image, label), positives share that label.

    ``L_ic = − mean_{p∈P_c(i)} log softmax_{a∈A(i)}(s_ia / tau)[p]``, averaged over label-level anchors.

    The authors' code contrasts against a MoCo queue of momentum-encoder keys; this is the in-batch form
    (the candidates are the other items of the batch). Pass ``ref_emb``/``ref_labels`` to contrast
    against a queue instead. ``reduction='sample'`` is the reference code's ``with_weight=True``.

    Args:
        tau: temperature (0.1 in the authors' configuration).
        reduction: ``'label'`` (default, as the reference code) or ``'sample'``.
    """

    def __init__(self, tau: float = 0.1, reduction: str = "label") -> None:
        super().__init__(tau)
        self.reduction = reduction

    def anchor_terms(self, batch: PairBatch) -> AnchorTerms:
        ones = torch.ones_like(batch.sim)
        return label_level_terms(batch, ones, logits=batch.sim / self.tau, reduction=self.reduction)

    def extra_repr(self) -> str:
        return f"tau={self.tau}, reduction={self.reduction!r}"
