"""Retrieval metrics: label relations, per-query ranking metrics and chunked evaluation.

``relevance`` turns multi-hot labels into relevance and gains, ``ranking`` scores already-ranked arrays
(one definition per metric, tested by hand), and ``evaluate`` ranks a database by cosine similarity and
applies them to every query in memory-bounded chunks.
"""

from macl.metrics.evaluate import RetrievalReport, evaluate_retrieval
from macl.metrics.literature import LiteratureReport, literature_metrics, random_query_split
from macl.metrics.ranking import (
    acg_at_k,
    average_precision,
    average_precision_at_k,
    ndcg_at_k,
    precision_at_k,
    wap_at_k,
)
from macl.metrics.relevance import (
    any_label_overlap,
    as_multi_hot,
    label_cosine,
    label_frequencies,
    label_jaccard,
    shared_label_count,
)

__all__ = [
    "LiteratureReport",
    "RetrievalReport",
    "acg_at_k",
    "any_label_overlap",
    "as_multi_hot",
    "average_precision",
    "average_precision_at_k",
    "evaluate_retrieval",
    "label_cosine",
    "label_frequencies",
    "label_jaccard",
    "literature_metrics",
    "ndcg_at_k",
    "precision_at_k",
    "random_query_split",
    "shared_label_count",
    "wap_at_k",
]
