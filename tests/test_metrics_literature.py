"""The literature-protocol metrics (OML's definitions): hand-computed rankings, a slow oracle, the split."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

import metric_problems
from macl.metrics import LiteratureReport, literature_metrics, random_query_split
from macl.metrics.literature import EPS

LOG2_3 = math.log2(3)
LOG2_5 = math.log2(5)


def ranked_embeddings(n: int) -> np.ndarray:
    """``n`` 2-D database embeddings whose cosine with the query ``[1, 0]`` strictly falls with the index."""
    angles = 0.2 * np.arange(n)
    return np.stack([np.cos(angles), np.sin(angles)], axis=1)


def multi_hot(label_sets: list[set[int]], n_labels: int) -> np.ndarray:
    out = np.zeros((len(label_sets), n_labels), dtype=np.int64)
    for row, labels in enumerate(label_sets):
        out[row, sorted(labels)] = 1
    return out


def evaluate_ranked(query_sets: list[set[int]], db_sets: list[set[int]], n_labels: int, **kwargs) -> LiteratureReport:
    """Every query is ``[1, 0]``, so every query ranks the database in index order."""
    query_emb = np.tile([1.0, 0.0], (len(query_sets), 1))
    return literature_metrics(
        query_emb,
        multi_hot(query_sets, n_labels),
        ranked_embeddings(len(db_sets)),
        multi_hot(db_sets, n_labels),
        **kwargs,
    )


# --- mAP at Jaccard-distance thresholds, by hand ---------------------------------------------------------

# Query {0, 1}; database in rank order, with the Jaccard distance d = |△| / |∪|:
#   r1 {0, 1, 2}  d = 1/3     r2 {3}  d = 1     r3 {0, 1}  d = 0     r4 {0}  d = 1/2     r5 {2, 3}  d = 1
HAND_QUERY = [{0, 1}]
HAND_DB = [{0, 1, 2}, {3}, {0, 1}, {0}, {2, 3}]


def test_map_is_the_trapezoidal_ap_at_each_distance_threshold():
    report = evaluate_ranked(HAND_QUERY, HAND_DB, 4, ks=(1,))
    # Trapezoid term of the j-th relevant item (0-based) at 0-based position p: (j/p + (j+1)/(p+1)) / 2,
    # with j/p read as 1 at p = 0.
    # d ≤ 0.6: relevant at p = 0, 2, 3 → (1 + (1/2 + 2/3)/2 + (2/3 + 3/4)/2) / 3
    #        = (24/24 + 14/24 + 17/24) / 3 = 55/72   (TREC AP would be (1 + 2/3 + 3/4)/3 = 58/72).
    # d ≤ 0.4: relevant at p = 0, 2 → (1 + 7/12) / 2 = 19/24.
    # d ≤ 0.2: relevant at p = 2 only → (0/2 + 1/3) / 2 / 1 = 1/6   (TREC AP: 1/3).
    assert report.metrics["lit_map_d0.6"] == pytest.approx(55 / 72, abs=1e-15)
    assert report.metrics["lit_map_d0.4"] == pytest.approx(19 / 24, abs=1e-15)
    assert report.metrics["lit_map_d0.2"] == pytest.approx(1 / 6, abs=1e-15)
    assert report.n_map_queries == 1
    assert list(report.metrics)[:3] == ["lit_map_d0.6", "lit_map_d0.4", "lit_map_d0.2"]


def test_threshold_is_a_distance_and_inclusive():
    # Query {0, 1, 2, 3}; database in rank order:
    #   r1 {4}              d = 5/5 = 1
    #   r2 {0, 1, 2, 3, 4}  d = 1/5 = 0.2 exactly (|∩| = 4, |∪| = 5)
    #   r3 {0, 1, 5}        d = 3/5 = 0.6 exactly (|∩| = 2, |∪| = 5)
    report = evaluate_ranked([{0, 1, 2, 3}], [{4}, {0, 1, 2, 3, 4}, {0, 1, 5}], 6, ks=(1,))
    # d ≤ 0.2 and d ≤ 0.4: r2 only, at p = 1 → (0/1 + 1/2) / 2 = 1/4 (with "<" the query would be dropped).
    # d ≤ 0.6: r2 and r3, at p = 1, 2 → ((0 + 1/2)/2 + (1/2 + 2/3)/2) / 2 = (3/12 + 7/12) / 2 = 5/12.
    assert report.metrics["lit_map_d0.2"] == pytest.approx(1 / 4, abs=1e-15)
    assert report.metrics["lit_map_d0.4"] == pytest.approx(1 / 4, abs=1e-15)
    assert report.metrics["lit_map_d0.6"] == pytest.approx(5 / 12, abs=1e-15)
    # A threshold of 0 keeps only identical label sets: none here, so the query leaves mAP.
    strict = evaluate_ranked([{0, 1, 2, 3}], [{4}, {0, 1, 2, 3, 4}, {0, 1, 5}], 6, ks=(1,), distance_thresholds=(0,))
    assert math.isnan(strict.metrics["lit_map_d0"])


def test_queries_without_an_item_at_the_strictest_threshold_leave_every_map():
    # Query 0 is the hand query above. Query 1 = {2}: r1 {0, 1, 2} (d = 2/3), r5 {2, 3} (d = 1/2) are
    # relevant at 0.6, none at 0.2 → OML drops it from all three mAPs, though its AP at 0.6 exists.
    # It still counts in ACG: gains along the ranking are [1, 0, 0, 0, 1] → ACG@1 = 1, ACG@5 = 2/5.
    report = evaluate_ranked([*HAND_QUERY, {2}], HAND_DB, 4, ks=(1, 5))
    assert report.n_queries == 2
    assert report.n_map_queries == 1
    assert report.metrics["lit_map_d0.6"] == pytest.approx(55 / 72, abs=1e-15)
    assert math.isnan(report.per_query["lit_map_d0.6"][1])
    assert math.isnan(report.per_query["lit_map_d0.2"][1])
    # Query 0's gains: [2, 0, 2, 1, 0] → ACG@1 = 2, ACG@5 = 5/5 = 1.
    assert report.per_query["lit_acg@1"].tolist() == [2.0, 1.0]
    assert report.per_query["lit_acg@5"] == pytest.approx([1.0, 2 / 5], abs=1e-15)
    assert report.metrics["lit_acg@5"] == pytest.approx((1 + 2 / 5) / 2, abs=1e-15)


def test_map_is_nan_when_no_query_is_kept():
    report = evaluate_ranked([{2}], HAND_DB, 4, ks=(1,))
    assert report.n_map_queries == 0
    assert all(math.isnan(report.metrics[f"lit_map_d{t}"]) for t in ("0.6", "0.4", "0.2"))
    assert report.metrics["lit_acg@1"] == 1.0


def test_two_empty_label_sets_are_at_distance_zero():
    # scipy's jaccard (OML's relevance) gives 0 for 0/0: an unlabelled query matches unlabelled items.
    # Query {}: r1 {0} d = 1/1 = 1; r2 {} d = 0 → relevant at p = 1 only → AP = (0/1 + 1/2) / 2 = 1/4.
    report = evaluate_ranked([set()], [{0}, set(), {1}], 2, ks=(3,))
    for t in ("0.6", "0.4", "0.2"):
        assert report.metrics[f"lit_map_d{t}"] == pytest.approx(1 / 4, abs=1e-15)
    # Shared-label counts are all 0: ACG = nDCG = wAP = 0 (0 / ε), not undefined.
    assert [report.metrics[f"lit_{m}@3"] for m in ("acg", "ndcg", "wap")] == [0.0, 0.0, 0.0]


# --- ACG, nDCG, wAP by hand --------------------------------------------------------------------------------


def test_acg_ndcg_wap_at_k():
    # Query {0, 1, 2}; database in rank order with shared-label counts g: r1 {0} g = 1, r2 {3} g = 0,
    # r3 {0, 1} g = 2, r4 {0, 1, 2} g = 3.
    report = evaluate_ranked([{0, 1, 2}], [{0}, {3}, {0, 1}, {0, 1, 2}], 4, ks=(1, 3, 4))
    m = report.metrics
    # ACG@1 = 1; ACG@3 = (1 + 0 + 2)/3 = 1; ACG@4 = (1 + 0 + 2 + 3)/4 = 3/2.
    assert m["lit_acg@1"] == 1.0
    assert m["lit_acg@3"] == pytest.approx(1.0, abs=1e-15)
    assert m["lit_acg@4"] == pytest.approx(3 / 2, abs=1e-15)
    # nDCG@1: DCG = (2^1 − 1)/log2(2) = 1, ideal = the retrieved [1] → 1 / (1 + ε).
    assert m["lit_ndcg@1"] == pytest.approx(1 / (1 + EPS), abs=1e-15)
    # nDCG@3: DCG = 1/1 + 0/log2(3) + (2^2 − 1)/log2(4) = 1 + 3/2; the ideal re-sorts the retrieved gains
    # [1, 0, 2] to [2, 1, 0]: 3/1 + 1/log2(3) + 0.
    assert m["lit_ndcg@3"] == pytest.approx((1 + 3 / 2) / (3 + 1 / LOG2_3 + EPS), abs=1e-15)
    # nDCG@4: DCG = 1 + 0 + 3/2 + 7/log2(5); ideal [3, 2, 1, 0]: 7 + 3/log2(3) + 1/2 + 0.
    assert m["lit_ndcg@4"] == pytest.approx((1 + 3 / 2 + 7 / LOG2_5) / (7 + 3 / LOG2_3 + 1 / 2 + EPS), abs=1e-15)
    # wAP: ACG@n at the ranks with g > 0, over their count + ε.
    # @1: ACG@1 = 1 → 1/(1 + ε); @3: (ACG@1 + ACG@3)/(2 + ε) = (1 + 1)/(2 + ε);
    # @4: (1 + 1 + 3/2)/(3 + ε).
    assert m["lit_wap@1"] == pytest.approx(1 / (1 + EPS), abs=1e-15)
    assert m["lit_wap@3"] == pytest.approx(2 / (2 + EPS), abs=1e-15)
    assert m["lit_wap@4"] == pytest.approx(3.5 / (3 + EPS), abs=1e-15)


def test_ndcg_ideal_comes_from_the_retrieved_top_k_only():
    # Query {0, 1}: r1 {0} g = 1, r2 {0, 1} g = 2. At k = 1 the ideal is the retrieved [1], so the
    # better item at rank 2 is ignored: DCG = IDCG = 1 → 1/(1 + ε); the textbook ideal [2] would give 1/3.
    report = evaluate_ranked([{0, 1}], [{0}, {0, 1}], 2, ks=(1, 2))
    assert report.metrics["lit_ndcg@1"] == pytest.approx(1 / (1 + EPS), abs=1e-15)
    # k = 2: DCG = 1 + 3/log2(3); ideal [2, 1]: 3 + 1/log2(3).
    assert report.metrics["lit_ndcg@2"] == pytest.approx((1 + 3 / LOG2_3) / (3 + 1 / LOG2_3 + EPS), abs=1e-15)


def test_queries_without_shared_labels_count_as_zero_in_topk_means():
    # Query 0 {0}: r1 {0} g = 1 → ACG@1 = 1, nDCG@1 = 1/(1+ε), wAP@1 = 1/(1+ε). Query 1 {1}: g = 0 → all 0.
    report = evaluate_ranked([{0}, {1}], [{0}, {0}], 2, ks=(1,))
    assert report.metrics["lit_acg@1"] == pytest.approx(1 / 2, abs=1e-15)
    assert report.metrics["lit_ndcg@1"] == pytest.approx(1 / (1 + EPS) / 2, abs=1e-15)
    assert report.metrics["lit_wap@1"] == pytest.approx(1 / (1 + EPS) / 2, abs=1e-15)
    assert report.per_query["lit_wap@1"][1] == 0.0


def test_ties_break_by_database_index():
    # d0 and d1 have the same embedding; d0 (lower index) must rank first whichever carries the label.
    query = np.array([[1.0, 0.0]])
    db_emb = np.array([[2.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    first = literature_metrics(query, [[1, 0]], db_emb, [[1, 0], [0, 1], [0, 1]], ks=(1,))
    second = literature_metrics(query, [[1, 0]], db_emb, [[0, 1], [1, 0], [0, 1]], ks=(1,))
    assert first.metrics["lit_acg@1"] == 1.0
    assert second.metrics["lit_acg@1"] == 0.0
    # second: the only relevant item sits at p = 1 → AP = (0/1 + 1/2)/2 = 1/4.
    assert second.metrics["lit_map_d0.2"] == pytest.approx(1 / 4, abs=1e-15)


# --- query exclusion ----------------------------------------------------------------------------------------


def test_query_db_index_removes_the_query_from_its_ranking():
    rng = np.random.default_rng(3)
    db_emb = rng.normal(size=(30, 4))
    db_labels = (rng.random((30, 5)) < 0.4).astype(np.int64)
    # Queries 0 and 1 are database items 7 and 12; query 2 is not in the database.
    query_emb = np.vstack([db_emb[7], db_emb[12], rng.normal(size=4)])
    query_labels = np.vstack([db_labels[7], db_labels[12], [1, 1, 0, 0, 0]])
    ks = (1, 5, 29)
    report = literature_metrics(query_emb, query_labels, db_emb, db_labels, ks=ks, query_db_index=np.array([7, 12, -1]))
    for row, removed in ((0, 7), (1, 12), (2, -1)):
        keep = np.arange(30) != removed
        alone = literature_metrics(
            query_emb[row : row + 1], query_labels[row : row + 1], db_emb[keep], db_labels[keep], ks=ks
        )
        for key, values in alone.per_query.items():
            np.testing.assert_allclose(report.per_query[key][row], values[0], rtol=0, atol=1e-12, err_msg=key)
    # Without the exclusion each of the first two queries finds itself first (d = 0 → kept, AP term 1).
    plain = literature_metrics(query_emb[:2], query_labels[:2], db_emb, db_labels, ks=(1,))
    assert plain.per_query["lit_acg@1"].tolist() == query_labels[:2].sum(1).astype(float).tolist()


def test_an_excluded_query_shortens_the_ranking_for_k():
    db_emb, db_labels = ranked_embeddings(3), multi_hot([{0}, {1}, {0}], 2)
    query, labels = np.array([[1.0, 0.0]]), multi_hot([{0}], 2)
    assert literature_metrics(query, labels, db_emb, db_labels, ks=(3,)).metrics["lit_acg@3"] == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="k = 3 exceeds the 2 ranked"):
        literature_metrics(query, labels, db_emb, db_labels, ks=(3,), query_db_index=np.array([0]))


# --- the vectorised function against a slow per-query oracle ---------------------------------------------


def oracle(query_emb, query_labels, db_emb, db_labels, exclude, ks, thresholds):
    """Straight from the formulas: Python floats and sets, one query and one rank at a time."""

    def unit(row):
        norm = math.sqrt(sum(float(x) * float(x) for x in row))
        return [float(x) / norm for x in row]

    db_unit = [unit(row) for row in db_emb]
    db_sets = [{c for c, v in enumerate(row) if v} for row in db_labels]
    per_query = {f"lit_map_d{t:g}": [] for t in thresholds}
    per_query.update({f"lit_{m}@{k}": [] for m in ("acg", "ndcg", "wap") for k in ks})
    for q, row in enumerate(query_emb):
        qv = unit(row)
        y_q = {c for c, v in enumerate(query_labels[q]) if v}
        sims = [sum(a * b for a, b in zip(qv, dv, strict=True)) for dv in db_unit]
        ranking = sorted((n for n in range(len(db_unit)) if n != exclude[q]), key=lambda n: (-sims[n], n))
        for t in thresholds:
            total, found = 0.0, 0
            for p, n in enumerate(ranking):
                union = y_q | db_sets[n]
                distance = len(y_q ^ db_sets[n]) / len(union) if union else 0.0
                if distance <= t:
                    before = 1.0 if p == 0 else found / p
                    total += (before + (found + 1) / (p + 1)) / 2
                    found += 1
            per_query[f"lit_map_d{t:g}"].append(total / found if found else math.nan)
        gains = [len(y_q & db_sets[n]) for n in ranking]
        for k in ks:
            top = gains[:k]
            acg_n = [sum(top[:n]) / n for n in range(1, k + 1)]
            dcg = sum((2**g - 1) / math.log2(1 + n) for n, g in enumerate(top, start=1))
            idcg = sum((2**g - 1) / math.log2(1 + n) for n, g in enumerate(sorted(top, reverse=True), start=1))
            hits = [g > 0 for g in top]
            per_query[f"lit_acg@{k}"].append(sum(top) / k)
            per_query[f"lit_ndcg@{k}"].append(dcg / (idcg + 1e-6))
            per_query[f"lit_wap@{k}"].append(sum(a for a, h in zip(acg_n, hits, strict=True) if h) / (sum(hits) + 1e-6))
    strictest = f"lit_map_d{min(thresholds):g}"
    kept = [not math.isnan(v) for v in per_query[strictest]]
    metrics = {}
    for key, vals in per_query.items():
        if key.startswith("lit_map"):
            vals[:] = [v if keep else math.nan for v, keep in zip(vals, kept, strict=True)]
            chosen = [v for v in vals if not math.isnan(v)]
            metrics[key] = sum(chosen) / len(chosen) if chosen else math.nan
        else:
            metrics[key] = sum(vals) / len(vals)
    return metrics, per_query, sum(kept)


def random_problem(seed: int, n_query: int, n_db: int, tied: bool):
    """The shared random problem with a third of the queries taken from the database."""
    return metric_problems.random_problem(
        seed, n_query, n_db, tied=tied, frequencies=(0.05, 0.5), from_database=n_query // 3
    )


@pytest.mark.parametrize(("seed", "tied"), [(0, False), (1, True), (2, False)])
def test_matches_the_oracle_on_random_data(seed, tied):
    ks, thresholds = (1, 5, 20, 79), (0.6, 0.4, 0.2)
    query_emb, query_labels, db_emb, db_labels, index = random_problem(seed, 300, 80, tied)
    expected_metrics, expected_per_query, expected_kept = oracle(
        query_emb, query_labels, db_emb, db_labels, index, ks, thresholds
    )
    report = literature_metrics(
        query_emb, query_labels, db_emb, db_labels, ks=ks, distance_thresholds=thresholds, query_db_index=index
    )
    # The data exercise every branch: dropped and kept queries, queries without any gain in the top k.
    assert 0 < expected_kept < 300
    assert 0 < sum(v == 0 for v in expected_per_query["lit_acg@5"]) < 300
    assert report.n_queries == 300
    assert report.n_map_queries == expected_kept
    assert list(report.metrics) == list(expected_metrics)
    for key, value in expected_metrics.items():
        assert report.metrics[key] == pytest.approx(value, abs=1e-12, nan_ok=True), key
        np.testing.assert_allclose(report.per_query[key], expected_per_query[key], rtol=0, atol=1e-12, err_msg=key)


def test_chunking_and_input_types_do_not_change_the_result():
    query_emb, query_labels, db_emb, db_labels, index = random_problem(4, 60, 40, tied=False)
    kwargs = {"ks": (1, 10), "query_db_index": index}
    whole = literature_metrics(query_emb, query_labels, db_emb, db_labels, **kwargs)
    one_by_one = literature_metrics(query_emb, query_labels, db_emb, db_labels, max_chunk_bytes=1, **kwargs)
    as_torch = literature_metrics(
        *(torch.from_numpy(a) for a in (query_emb, query_labels, db_emb, db_labels)),
        ks=(1, 10),
        query_db_index=torch.from_numpy(index),
    )
    for other in (one_by_one, as_torch):
        assert other.metrics == pytest.approx(whole.metrics, abs=1e-12, nan_ok=True)
        for key, values in whole.per_query.items():
            np.testing.assert_allclose(other.per_query[key], values, rtol=0, atol=1e-12, err_msg=key)


def test_float32_embeddings_work():
    query_emb, query_labels, db_emb, db_labels, _ = random_problem(5, 20, 120, tied=False)  # default ks need N ≥ 100
    report = literature_metrics(query_emb.astype(np.float32), query_labels, db_emb.astype(np.float32), db_labels)
    assert set(report.metrics) >= {"lit_map_d0.6", "lit_acg@10", "lit_ndcg@20", "lit_wap@20"}
    assert all(v.dtype == np.float64 and v.shape == (20,) for v in report.per_query.values())


def test_report_serialises_to_strict_json():
    report = evaluate_ranked([{2}], HAND_DB, 4, ks=(1,))  # mAP undefined: NaN → None
    data = report.to_dict(include_per_query=True)
    text = json.dumps(data, allow_nan=False)
    assert json.loads(text)["metrics"]["lit_map_d0.6"] is None
    assert data["n_queries"] == 1 and data["n_map_queries"] == 0
    assert "per_query" not in report.to_dict()
    with pytest.raises(AttributeError):
        report.n_queries = 2  # type: ignore[misc]


# --- the split --------------------------------------------------------------------------------------------


def test_split_is_disjoint_covering_sorted_and_twenty_percent():
    query, database = random_query_split(1003, seed=7)
    assert len(query) == int(1003 * 0.2) == 200
    assert len(database) == 803
    assert np.intersect1d(query, database).size == 0
    assert np.array_equal(np.sort(np.concatenate([query, database])), np.arange(1003))
    assert np.all(np.diff(query) > 0) and np.all(np.diff(database) > 0)
    assert query.dtype == np.int64 and database.dtype == np.int64


def test_split_is_deterministic_per_seed_and_differs_across_seeds():
    first, _ = random_query_split(500, 0.3, seed=1)
    again, _ = random_query_split(500, 0.3, seed=1)
    other, _ = random_query_split(500, 0.3, seed=2)
    assert len(first) == 150
    assert np.array_equal(first, again)
    assert not np.array_equal(first, other)


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ((100, 0.0), "fraction"),
        ((100, 1.0), "fraction"),
        ((100, -0.2), "fraction"),
        ((4, 0.2), "both must be non-empty"),  # ⌊0.8⌋ = 0 queries
        ((0, 0.5), "both must be non-empty"),
        ((-3, 0.5), "n_items"),
        ((10.0, 0.5), "n_items"),
    ],
)
def test_split_rejects_bad_input(args, match):
    with pytest.raises(ValueError, match=match):
        random_query_split(*args)


# --- argument checks ------------------------------------------------------------------------------------

GOOD = {
    "query_emb": np.array([[1.0, 0.0], [0.0, 1.0]]),
    "query_labels": np.array([[1, 0], [0, 1]]),
    "db_emb": ranked_embeddings(3),
    "db_labels": np.array([[1, 0], [0, 1], [1, 1]]),
}


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"query_emb": np.ones(2)}, "query_emb must be 2-D"),
        ({"db_emb": np.array([[1.0, np.nan], [0, 1], [1, 1]])}, "db_emb must hold finite"),
        ({"db_emb": np.ones((3, 4))}, "db_emb has 4 dims"),
        ({"query_labels": np.array([[1, 0]])}, "query_labels has 1 rows"),
        ({"db_labels": np.array([[1, 0], [0, 1]])}, "db_labels has 2 rows"),
        ({"db_labels": np.array([[1, 0, 0], [0, 1, 0], [1, 1, 0]])}, "label columns"),
        ({"query_labels": np.array([[2, 0], [0, 1]])}, "multi-hot"),
        ({"query_emb": np.zeros((0, 2)), "query_labels": np.zeros((0, 2))}, "at least one query"),
        ({"ks": (0,)}, "positive integers"),
        ({"ks": (1, 1)}, "distinct"),
        ({"ks": ()}, "positive integers"),
        ({"ks": (4,)}, "k = 4 exceeds the 3 ranked"),
        ({"distance_thresholds": (1.0,)}, r"\[0, 1\)"),
        ({"distance_thresholds": (-0.1,)}, r"\[0, 1\)"),
        ({"distance_thresholds": ()}, "non-empty"),
        ({"distance_thresholds": (0.2, 0.2)}, "distinct"),
        ({"query_db_index": np.array([0])}, "shape"),
        ({"query_db_index": np.array([0, 3])}, r"\[-1, 2\]"),
        ({"query_db_index": np.array([0.0, 1.0])}, "integers"),
        ({"max_chunk_bytes": 0}, "max_chunk_bytes"),
    ],
)
def test_invalid_inputs_name_the_problem(change, match):
    kwargs = {"ks": (1,), **GOOD, **change}
    with pytest.raises(ValueError, match=match):
        literature_metrics(**kwargs)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_tensors_match_cpu():
    query_emb, query_labels, db_emb, db_labels, index = random_problem(6, 30, 50, tied=True)
    cpu = literature_metrics(query_emb, query_labels, db_emb, db_labels, query_db_index=index, ks=(1, 10))
    gpu = literature_metrics(
        *(torch.from_numpy(a).cuda() for a in (query_emb, query_labels, db_emb, db_labels)),
        query_db_index=torch.from_numpy(index).cuda(),
        ks=(1, 10),
    )
    assert gpu.metrics == pytest.approx(cpu.metrics, abs=1e-12, nan_ok=True)


def test_split_is_omls_own_draw() -> None:
    """OML: ``np.random.seed(24)`` then ``np.sort(np.random.choice(range(N), int(N * 0.2), replace=False))``."""
    state = np.random.get_state()  # noqa: NPY002 (OML's legacy global generator, on purpose)
    try:
        np.random.seed(24)  # noqa: NPY002 (OML's legacy global generator, on purpose)
        oml = np.sort(np.random.choice(range(420), int(420 * 0.2), replace=False))  # noqa: NPY002
    finally:
        np.random.set_state(state)  # noqa: NPY002 (OML's legacy global generator, on purpose)
    query, database = random_query_split(420)
    np.testing.assert_array_equal(query, oml)
    assert len(database) == 336
