"""Aggregate benchmark cells: mean ± std over seeds, per-label AP, and paired tests against a reference.

Paired tests (scipy): for retrieval metrics the pairs are (seed, query) — the same query, ranked by the
variant's and by the reference's model trained with the same seed; for rare-label AP the pairs are
(seed, rare label). We report the two-sided Wilcoxon signed-rank test and the paired t-test. Queries of
different seeds are not independent (the same test image recurs), so these p-values are optimistic
about seed-to-seed variation; the per-seed values are kept in the results file for a seed-level test.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

from macl.bench.studies import UNTRAINED, Study
from macl.errors import MaclError

# The metric table: (key, column title). Count-, cosine- and Jaccard-based relevance (method.md).
TABLE_METRICS: tuple[tuple[str, str], ...] = (
    ("map", "mAP"),
    ("wap_cos@10", "WAP-cos@10"),
    ("wap_jac@10", "WAP-jac@10"),
    ("ndcg_cos@10", "nDCG-cos@10"),
    ("ndcg_jac@10", "nDCG-jac@10"),
    ("acg@10", "ACG@10"),
    ("p@10", "P@10"),
    ("map_jac0.4", "mAP J≥0.4"),
    ("map_jac0.6", "mAP J≥0.6"),
    ("label_map_rare", "rare-label AP"),
    ("label_map_frequent", "frequent-label AP"),
)
PAIRED_QUERY_METRICS = ("map", "ndcg_jac@10")


def _mean_std(values: list[float]) -> dict[str, Any]:
    clean = [v for v in values if v is not None and not math.isnan(v)]
    if not clean:
        return {"mean": None, "std": None, "values": values}
    std = float(np.std(clean, ddof=1)) if len(clean) > 1 else 0.0
    return {"mean": float(np.mean(clean)), "std": std, "values": values}


def paired_test(a: np.ndarray, b: np.ndarray) -> dict[str, Any]:
    """Two-sided Wilcoxon signed-rank and paired t-test of ``a`` vs ``b`` (pairs with a NaN are dropped)."""
    keep = ~(np.isnan(a) | np.isnan(b))
    a, b = a[keep], b[keep]
    out: dict[str, Any] = {"n": int(a.size), "mean_difference": float(np.mean(a - b)) if a.size else None}
    if a.size < 2 or np.allclose(a, b):
        return out | {"wilcoxon_p": None, "t_p": None}
    try:
        from scipy import stats
    except ImportError as err:  # scipy is the benchmark's dependency, not the library's
        raise MaclError("the paired tests need scipy: pip install 'macl[bench]'") from err
    out["wilcoxon_p"] = float(stats.wilcoxon(a, b).pvalue)
    out["t_p"] = float(stats.ttest_rel(a, b).pvalue)
    return out


def per_query_values(results: list[dict[str, Any]], split: str, key: str) -> dict[int, np.ndarray]:
    return {r["seed"]: np.array([np.nan if v is None else v for v in r[split]["per_query"][key]]) for r in results}


def rare_label_ap(results: list[dict[str, Any]], split: str) -> dict[int, np.ndarray]:
    out = {}
    for r in results:
        rare, ap = r[split]["rare_labels"], r[split]["per_label_ap"]
        out[r["seed"]] = np.array([np.nan if ap[c] is None else ap[c] for c in rare])
    return out


def compare(variant: dict[int, np.ndarray], reference: dict[int, np.ndarray]) -> dict[str, Any]:
    seeds = sorted(set(variant) & set(reference))
    if not seeds:
        return {"n": 0, "wilcoxon_p": None, "t_p": None, "mean_difference": None}
    return paired_test(np.concatenate([variant[s] for s in seeds]), np.concatenate([reference[s] for s in seeds]))


def summarize_variant(results: list[dict[str, Any]], split: str) -> dict[str, Any]:
    """Mean ± std over seeds of every metric of ``split`` ('val' or 'test'), and mean per-label AP."""
    metrics = results[0][split]["metrics"].keys()
    labels = results[0][split]["per_label_ap"].keys()
    return {
        "seeds": [r["seed"] for r in results],
        "metrics": {k: _mean_std([r[split]["metrics"][k] for r in results]) for k in metrics},
        "per_label_ap": {c: _mean_std([r[split]["per_label_ap"][c] for r in results])["mean"] for c in labels},
        "rare_labels": results[0][split]["rare_labels"],
        "train_seconds": float(np.mean([r["train_seconds"] for r in results])),
    }


def same_run(train_config: dict[str, Any], trained: bool) -> str:
    """What makes two variants one training run: identical settings (and both trained or both not)."""
    return json.dumps([train_config, trained], sort_keys=True)


def relabel(summaries: dict[str, dict[str, Any]], known: dict[str, Study]) -> dict[str, dict[str, Any]]:
    """Summaries read from an older results file with today's study titles and variant labels, and
    ``same_as`` marked where it was not recorded: the numbers are untouched."""
    out = {}
    for name, study in summaries.items():
        definition = known.get(name)
        labels = {v.name: v.label for v in definition.variants} if definition else {}
        runs: dict[str, str] = {}
        variants = []
        for v in study["variants"]:
            first = runs.setdefault(same_run(v["train_config"], v["name"] != UNTRAINED), v["name"])
            variants.append(
                {**v, "label": labels.get(v["name"], v["label"]), "same_as": first if first != v["name"] else None}
            )
        titles = {"title": definition.title, "question": definition.question} if definition else {}
        out[name] = {**study, **titles, "variants": variants}
    return out


def summarize_study(study: Study, results: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Every variant's val and test summaries and its paired tests against the study's reference."""
    reference = results.get(study.reference, [])
    variants = []
    runs: dict[str, str] = {}  # a variant's training settings → the first variant trained with them
    for variant in study.variants:
        cells = results.get(variant.name, [])
        if not cells:
            continue
        same_as = runs.setdefault(same_run(cells[0]["train_config"], cells[0]["trained"]), variant.name)
        entry: dict[str, Any] = {
            "name": variant.name,
            "label": variant.label,
            "coords": variant.coords,
            "train_config": cells[0]["train_config"],
            "same_as": same_as if same_as != variant.name else None,
        }
        for split in ("val", "test"):
            entry[split] = summarize_variant(cells, split)
            if reference and variant.name != study.reference:
                tests = {
                    k: compare(per_query_values(cells, split, k), per_query_values(reference, split, k))
                    for k in PAIRED_QUERY_METRICS
                }
                tests["label_map_rare"] = compare(rare_label_ap(cells, split), rare_label_ap(reference, split))
                entry[split]["vs_reference"] = tests
        variants.append(entry)
    return {
        "name": study.name,
        "title": study.title,
        "question": study.question,
        "reference": study.reference,
        "figure": study.figure,
        "variants": variants,
    }
