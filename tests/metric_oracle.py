"""Slow reference retrieval evaluation, written straight from the definitions with explicit loops.

Python floats, sets and ``math`` only, one query and one label at a time: it shares no code and no
vectorisation trick with ``macl.metrics``. Ranking: cosine similarity descending, ties by database index.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def _unit(row: Sequence[float]) -> list[float]:
    norm = math.sqrt(sum(x * x for x in row))
    return [x / norm for x in row] if norm > 0 else [0.0 for _ in row]


def _ap(rel: list[int]) -> float:
    """AP = (1/R) Σ_n rel(n)·P@n over the whole ranking; NaN when R = 0."""
    n_relevant = sum(rel)
    if n_relevant == 0:
        return math.nan
    hits, total = 0, 0.0
    for n, is_rel in enumerate(rel, start=1):
        if is_rel:
            hits += 1
            total += hits / n
    return total / n_relevant


def _dcg(gain: list[float], k: int) -> float:
    return sum((2.0 ** gain[n - 1] - 1.0) / math.log2(1 + n) for n in range(1, k + 1))


def _mean(values: list[float]) -> float:
    kept = [v for v in values if not math.isnan(v)]
    return sum(kept) / len(kept) if kept else math.nan


def oracle_evaluate(
    query_emb: np.ndarray,
    query_labels: np.ndarray,
    db_emb: np.ndarray,
    db_labels: np.ndarray,
    exclude: Sequence[int],
    ks: Sequence[int],
    thresholds: Sequence[float],
    rare_threshold: float,
    label_freq: Sequence[float] | None = None,
) -> dict[str, object]:
    """Per-query values, means, per-label AP and the rare split, for queries against a database.

    ``exclude[q]`` is the database index removed from query ``q``'s ranking, or -1.
    """
    n_labels = query_labels.shape[1]
    db_unit = [_unit(row) for row in db_emb.tolist()]
    db_sets = [{c for c, v in enumerate(row) if v} for row in db_labels.tolist()]
    per_query: dict[str, list[float]] = {}
    label_values: dict[int, list[float]] = {c: [] for c in range(n_labels)}

    def put(key: str, value: float) -> None:
        per_query.setdefault(key, []).append(value)

    for q, row in enumerate(query_emb.tolist()):
        unit = _unit(row)
        y_q = {c for c, v in enumerate(query_labels[q].tolist()) if v}
        items = [i for i in range(len(db_unit)) if i != exclude[q]]
        sim = {i: sum(a * b for a, b in zip(unit, db_unit[i], strict=True)) for i in items}
        ranking = sorted(items, key=lambda i: (-sim[i], i))
        sets = [db_sets[i] for i in ranking]
        shared = [len(y_q & s) for s in sets]
        cos = [len(y_q & s) / math.sqrt(len(y_q) * len(s)) if y_q and s else 0.0 for s in sets]
        jac = [len(y_q & s) / len(y_q | s) if y_q | s else 0.0 for s in sets]
        rel = [1 if r > 0 else 0 for r in shared]
        undefined = sum(rel) == 0
        n_db = len(ranking)

        put("map", _ap(rel))
        for k in ks:
            k_eff = min(k, n_db)
            hits, total = 0, 0.0
            for n in range(1, k_eff + 1):
                if rel[n - 1]:
                    hits += 1
                    total += hits / n
            put(f"map@{k}", math.nan if undefined else (total / hits if hits else 0.0))
            put(f"p@{k}", math.nan if undefined else sum(rel[:k_eff]) / k_eff)
        for suffix, gain in (("", [float(r) for r in shared]), ("_cos", cos), ("_jac", jac)):
            for k in ks:
                k_eff = min(k, n_db)
                put(f"acg{suffix}@{k}", math.nan if undefined else sum(gain[:k_eff]) / k_eff)
                ideal = _dcg(sorted(gain, reverse=True), k_eff)
                put(f"ndcg{suffix}@{k}", _dcg(gain, k_eff) / ideal if ideal > 0 else math.nan)
                hits, total = 0, 0.0
                for n in range(1, k_eff + 1):
                    if rel[n - 1]:
                        hits += 1
                        total += sum(gain[:n]) / n
                put(f"wap{suffix}@{k}", math.nan if undefined else (total / hits if hits else 0.0))
        for t in thresholds:
            put(f"map_jac{t:g}", _ap([1 if j >= t else 0 for j in jac]))
        for c in sorted(y_q):
            label_rel = [1 if c in s else 0 for s in sets]
            if sum(label_rel):
                label_values[c].append(_ap(label_rel))

    per_label = [_mean(label_values[c]) for c in range(n_labels)]
    if label_freq is None:
        label_freq = [sum(1 for s in db_sets if c in s) / len(db_sets) for c in range(n_labels)]
    rare = [c for c in range(n_labels) if label_freq[c] <= rare_threshold]
    metrics = {key: _mean(values) for key, values in per_query.items()}
    metrics["label_map_macro"] = _mean(per_label)
    metrics["label_map_rare"] = _mean([per_label[c] for c in rare])
    metrics["label_map_frequent"] = _mean([per_label[c] for c in range(n_labels) if c not in rare])
    return {
        "metrics": metrics,
        "per_query": per_query,
        "per_label": per_label,
        "rare": rare,
        "n_without": sum(1 for v in per_query["map"] if math.isnan(v)),
    }
