"""Contrastive losses for multi-label retrieval: MACL, weighted MACL and the baselines it is compared to.

Every loss is called as ``loss(embeddings, labels, ref_emb=None, ref_labels=None)`` with (M, D)
embeddings and (M, C) multi-hot labels, and returns a scalar. See :mod:`macl.losses.base`.
"""

from macl.losses.base import AnchorTerms, ContrastiveLoss, PairBatch, build_pair_batch
from macl.losses.jaccard import JaccardSupConLoss
from macl.losses.macl import MACLLoss
from macl.losses.mulsupcon import MulSupConLoss
from macl.losses.ntxent import NTXentLoss
from macl.losses.registry import LOSSES, NEEDS_LABEL_COUNTS, build_loss
from macl.losses.simdis import SimilarityDissimilarityLoss
from macl.losses.supcon import SupConLoss

__all__ = [
    "LOSSES",
    "NEEDS_LABEL_COUNTS",
    "AnchorTerms",
    "ContrastiveLoss",
    "JaccardSupConLoss",
    "MACLLoss",
    "MulSupConLoss",
    "NTXentLoss",
    "PairBatch",
    "SimilarityDissimilarityLoss",
    "SupConLoss",
    "build_loss",
    "build_pair_batch",
]
