"""Similarity–Dissimilarity loss (Huang, Long & Luo, arXiv 2410.13439)."""

from __future__ import annotations

from macl.labels import shared_count
from macl.losses.base import AnchorTerms, ContrastiveLoss, PairBatch, contrast_log_softmax, weighted_positive_terms


class SimilarityDissimilarityLoss(ContrastiveLoss):
    """SupCon whose positives are re-weighted by a similarity and a dissimilarity factor.

    ``K_ip = |Y_i∩Y_p| / |Y_i| · 1 / (1 + |Y_p \\ Y_i|)``: the share of the anchor's labels that the
    positive covers, discounted by how many labels the positive has that the anchor lacks. Positives are
    the pairs with ``K_ip > 0`` (at least one shared label); the per-anchor term is
    ``−1/|P(i)| Σ_p K_ip · l_ip`` (the paper's normalisation by the number of positives).

    Args:
        tau: temperature (0.1, the SupCon value the paper builds on).
    """

    def __init__(self, tau: float = 0.1) -> None:
        super().__init__(tau)

    def anchor_terms(self, batch: PairBatch) -> AnchorTerms:
        assert batch.labels is not None and batch.ref_labels is not None
        log_prob = contrast_log_softmax(batch.sim / self.tau, batch.self_index)
        shared = shared_count(batch.labels, batch.ref_labels)
        similarity = shared / batch.labels.sum(1, keepdim=True).clamp_min(1)
        dissimilarity = 1.0 / (1.0 + batch.ref_labels.sum(1)[None, :] - shared)
        weight = batch.in_contrast(similarity * dissimilarity)
        return weighted_positive_terms(log_prob, weight, normalise_by="count")

    def extra_repr(self) -> str:
        return f"tau={self.tau}"
