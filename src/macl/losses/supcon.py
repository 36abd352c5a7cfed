"""Supervised contrastive loss (Khosla et al., NeurIPS 2020) with a multi-label positive rule."""

from __future__ import annotations

from macl.labels import any_overlap, exact_match
from macl.losses.base import AnchorTerms, ContrastiveLoss, PairBatch, contrast_log_softmax, weighted_positive_terms

POSITIVE_RULES = {"any": any_overlap, "all": exact_match}


class SupConLoss(ContrastiveLoss):
    """SupCon, the ``L_out`` form: ``−1/|P(i)| Σ_{p∈P(i)} log softmax_{a∈A(i)}(s_ia / tau)[p]``.

    Args:
        tau: temperature (0.1, the value of the SupCon paper's experiments).
        positive: ``'any'`` — positives share at least one label; ``'all'`` — positives have the
            identical label set. Unlabelled images are never positives.

    There is no hidden ``tau / base_tau`` rescale of the loss (the reference code multiplies by it).
    """

    def __init__(self, tau: float = 0.1, positive: str = "any") -> None:
        super().__init__(tau)
        if positive not in POSITIVE_RULES:
            raise ValueError(f"positive must be one of {sorted(POSITIVE_RULES)}; got {positive!r}")
        self.positive = positive

    def anchor_terms(self, batch: PairBatch) -> AnchorTerms:
        assert batch.labels is not None and batch.ref_labels is not None
        log_prob = contrast_log_softmax(batch.sim / self.tau, batch.self_index)
        pos = POSITIVE_RULES[self.positive](batch.labels, batch.ref_labels).to(log_prob.dtype)
        return weighted_positive_terms(log_prob, batch.in_contrast(pos))

    def extra_repr(self) -> str:
        return f"tau={self.tau}, positive={self.positive!r}"
