"""Jaccard-weighted SupCon: every positive pulls in proportion to its label overlap."""

from __future__ import annotations

from macl.labels import jaccard
from macl.losses.base import AnchorTerms, ContrastiveLoss, PairBatch, contrast_log_softmax, weighted_positive_terms


class JaccardSupConLoss(ContrastiveLoss):
    """``−1/|P(i)| Σ_{p∈P(i)} J_ip · log softmax_{a∈A(i)}(s_ia / tau)[p]``, ``P(i) = {p : J_ip > threshold}``.

    The form of pytorch-metric-learning v3's ``MultiSupConLoss``: positives are weighted by the Jaccard
    similarity of the label sets and the sum is divided by the number of positives (not by the sum of
    weights), so a batch of weak positives pulls less than a batch of exact matches. ``threshold=0``
    makes every pair that shares a label a positive.

    Args:
        tau: temperature (0.1).
        threshold: minimum Jaccard (exclusive) for a pair to count as positive, in [0, 1).
    """

    def __init__(self, tau: float = 0.1, threshold: float = 0.0) -> None:
        super().__init__(tau)
        if not 0.0 <= threshold < 1.0:
            raise ValueError(f"threshold must be in [0, 1); got {threshold}")
        self.threshold = threshold

    def anchor_terms(self, batch: PairBatch) -> AnchorTerms:
        assert batch.labels is not None and batch.ref_labels is not None
        log_prob = contrast_log_softmax(batch.sim / self.tau, batch.self_index)
        jac = jaccard(batch.labels, batch.ref_labels)
        weight = batch.in_contrast(jac * (jac > self.threshold))
        return weighted_positive_terms(log_prob, weight, normalise_by="count")

    def extra_repr(self) -> str:
        return f"tau={self.tau}, threshold={self.threshold}"
