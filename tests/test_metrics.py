"""Retrieval metrics: hand-computed rankings, the vectorised evaluation against a slow oracle, chunking."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from macl.metrics import (
    acg_at_k,
    average_precision,
    average_precision_at_k,
    evaluate_retrieval,
    ndcg_at_k,
    precision_at_k,
    wap_at_k,
)
from metric_oracle import oracle_evaluate
from metric_problems import random_problem

NAN = math.nan
LOG2_3 = math.log2(3)


def values(tensor: torch.Tensor) -> list[float]:
    return tensor.tolist()


# --- ranking functions on hand-made rankings -------------------------------------------------------


def test_average_precision_uses_all_relevant_items_of_the_database():
    rel = [[1, 0, 1, 0, 0], [1, 0, 1, 0, 0], [0, 0, 0, 0, 0]]
    # Row 0, R = 2: relevant at ranks 1 and 3 → (1/1 + 2/3) / 2 = 5/6.
    # Row 1, R = 3: a third relevant item lies beyond this truncated list → (1/1 + 2/3) / 3 = 5/9.
    # Row 2, R = 0: undefined.
    ap = values(average_precision(rel, [2, 3, 0]))
    assert ap[:2] == pytest.approx([5 / 6, 5 / 9])
    assert math.isnan(ap[2])


def test_precision_at_k_uses_k_eff_beyond_the_list():
    rel = [[1, 0, 1, 0, 0]]
    assert values(precision_at_k(rel, 1)) == [1.0]
    assert values(precision_at_k(rel, 3)) == pytest.approx([2 / 3])
    # k = 10 > N = 5: k_eff = 5 → 2/5, not 2/10.
    assert values(precision_at_k(rel, 10)) == pytest.approx([2 / 5])


def test_average_precision_at_k_hashing_convention():
    rel = [[1, 0, 1, 0, 0], [0, 0, 1, 1, 0], [0, 0, 0, 0, 0]]
    # Row 0: @1 → P@1 = 1; @3 → (1/1 + 2/3) / 2 = 5/6 (normalised by hits, not by R).
    # Row 1: @2 → no hit in the top 2 but R > 0 → 0; @4 → (1/3 + 2/4) / 2 = 5/12.
    # Row 2: no relevant item anywhere → NaN at every k.
    at2 = values(average_precision_at_k(rel, 2))
    at3 = values(average_precision_at_k(rel, 3))
    at4 = values(average_precision_at_k(rel, 4))
    assert values(average_precision_at_k(rel, 1))[0] == 1.0
    assert at3[0] == pytest.approx(5 / 6)
    assert at2[1] == 0.0
    assert at4[1] == pytest.approx(5 / 12)
    assert all(math.isnan(v[2]) for v in (at2, at3, at4))


def test_acg_at_k():
    gain = [[2, 0, 1, 0, 0]]
    assert values(acg_at_k(gain, 1)) == [2.0]
    assert values(acg_at_k(gain, 3)) == pytest.approx([3 / 3])
    assert values(acg_at_k(gain, 10)) == pytest.approx([3 / 5])  # k_eff = 5


def test_ndcg_uses_the_ideal_order_of_the_whole_database():
    # The whole ranking has gains [1, 0, 2, 1]; the ideal order is [2, 1, 1, 0].
    gain = [[1, 0, 2, 1], [0, 0, 0, 0]]
    ideal = [[2, 1, 1, 0], [0, 0, 0, 0]]
    # @2: DCG = (2^1 − 1)/log2(2) + 0 = 1;  IDCG = (2^2 − 1)/1 + (2^1 − 1)/log2(3) = 3 + 1/log2(3).
    # A truncated ideal (the top 2 retrieved, [1, 0]) would give 1 instead.
    ndcg2 = values(ndcg_at_k(gain, ideal, 2))
    assert ndcg2[0] == pytest.approx(1 / (3 + 1 / LOG2_3))
    assert math.isnan(ndcg2[1])  # ideal DCG 0
    # @4: DCG = 1 + 0 + 3/log2(4) + 1/log2(5);  IDCG = 3 + 1/log2(3) + 1/log2(4) + 0.
    dcg = 1 + 3 / 2 + 1 / math.log2(5)
    assert values(ndcg_at_k(gain, ideal, 4))[0] == pytest.approx(dcg / (3 + 1 / LOG2_3 + 1 / 2))
    # A graded gain: 2^0.5 − 1 at rank 1 over the ideal [1.0, 0.5].
    graded = values(ndcg_at_k([[0.5, 1.0]], [[1.0, 0.5]], 2))[0]
    assert graded == pytest.approx(((2**0.5 - 1) + 1 / LOG2_3) / (1 + (2**0.5 - 1) / LOG2_3))


def test_wap_at_k():
    rel = [[1, 0, 1, 1], [0, 0, 1, 0], [0, 0, 0, 0]]
    gain = [[2, 0, 1, 1], [0, 0, 3, 0], [0, 0, 0, 0]]
    # Row 0: ACG@1 = 2, ACG@3 = 3/3 = 1, ACG@4 = 4/4 = 1 → WAP@4 = (2 + 1 + 1)/3 = 4/3; WAP@2 = 2/1.
    # Row 1: WAP@2 = 0 (no hit in the top 2); WAP@3 = ACG@3 = 3/3 = 1.
    wap2 = values(wap_at_k(rel, gain, 2))
    assert values(wap_at_k(rel, gain, 4))[0] == pytest.approx(4 / 3)
    assert wap2[:2] == [2.0, 0.0]
    assert values(wap_at_k(rel, gain, 3))[1] == pytest.approx(1.0)
    assert math.isnan(wap2[2])


def test_ranking_functions_validate_arguments():
    with pytest.raises(ValueError, match="rel"):
        precision_at_k([1, 0, 1], 2)
    with pytest.raises(ValueError, match="k must"):
        acg_at_k([[1, 0]], 0)
    with pytest.raises(ValueError, match="n_relevant"):
        average_precision([[1, 0]], [1, 1])
    with pytest.raises(ValueError, match="gain"):
        wap_at_k([[1, 0]], [[1, 0, 0]], 1)


# --- evaluate_retrieval on a hand-made database ------------------------------------------------------

# Query 0 is [1, 0] with labels {0, 1}. Database (index: embedding, labels, shared count r):
#   d0: [0, 1]   {0, 1}  r=2      d1: [1, 0] {2}  r=0      d2: [1, 0] {0} r=1
#   d3: [-1, 0]  {1, 2}  r=1      d4: [3, 0] {1}  r=1      (d4 normalises to [1, 0])
# Similarities: d1 = d2 = d4 = 1, d0 = 0, d3 = -1. Ties go by database index, so the ranking is
# d1, d2, d4, d0, d3 with r = [0, 1, 1, 2, 1], rel = [0, 1, 1, 1, 1], R = 4.
# (Reverse-index tie-breaking would give d4, d2, d1 first and rel = [1, 1, 0, 1, 1].)
# Query 1 has no labels: R = 0, excluded from every mean.
HAND_DB_EMB = np.array([[0, 1], [1, 0], [1, 0], [-1, 0], [3, 0]], dtype=np.float64)
HAND_DB_LABELS = np.array([[1, 1, 0], [0, 0, 1], [1, 0, 0], [0, 1, 1], [0, 1, 0]])
HAND_QUERY_EMB = np.array([[1, 0], [0, 1]], dtype=np.float64)
HAND_QUERY_LABELS = np.array([[1, 1, 0], [0, 0, 0]])

# Gains along the ranking d1, d2, d4, d0, d3 (|Y_q| = 2):
#   cosine  r/sqrt(2·|Y_n|): 0, 1/√2, 1/√2, 2/2 = 1, 1/√4 = 1/2
#   Jaccard r/|Y_q ∪ Y_n|:  0, 1/2,  1/2,  1,       1/3
S = 1 / math.sqrt(2)
AP = (1 / 2 + 2 / 3 + 3 / 4 + 4 / 5) / 4  # relevant at ranks 2, 3, 4, 5
HAND_EXPECTED = {
    "map": AP,
    "map@2": (1 / 2) / 1,
    "map@10": AP,  # k_eff = 5 holds every relevant item
    "p@2": 1 / 2,
    "p@10": 4 / 5,  # k_eff = 5
    "acg@2": (0 + 1) / 2,
    "acg@10": (0 + 1 + 1 + 2 + 1) / 5,
    "acg_cos@2": S / 2,
    "acg_cos@10": (2 * S + 1 + 1 / 2) / 5,
    "acg_jac@2": (1 / 2) / 2,
    "acg_jac@10": (1 / 2 + 1 / 2 + 1 + 1 / 3) / 5,
    # nDCG@2: DCG = 0 + (2^1 − 1)/log2(3); ideal order [2, 1, 1, 1, 0] → IDCG = 3 + 1/log2(3).
    "ndcg@2": (1 / LOG2_3) / (3 + 1 / LOG2_3),
    "ndcg@10": (1 / LOG2_3 + 1 / 2 + 3 / math.log2(5) + 1 / math.log2(6)) / (3 + 1 / LOG2_3 + 1 / 2 + 1 / math.log2(5)),
    "ndcg_cos@2": ((2**S - 1) / LOG2_3) / (1 + (2**S - 1) / LOG2_3),
    "ndcg_jac@2": ((2**0.5 - 1) / LOG2_3) / (1 + (2**0.5 - 1) / LOG2_3),
    # WAP: relevant ranks 2..5 with ACG@2 = 1/2, ACG@3 = 2/3, ACG@4 = 4/4, ACG@5 = 5/5.
    "wap@2": 1 / 2,
    "wap@10": (1 / 2 + 2 / 3 + 1 + 1) / 4,
    "wap_cos@2": S / 2,
    "wap_jac@10": ((1 / 2) / 2 + 1 / 3 + 2 / 4 + (2 + 1 / 3) / 5) / 4,
    # Jaccard ≥ 0.4: d2, d4, d0 at ranks 2, 3, 4; ≥ 0.6 and ≥ 0.8: d0 alone at rank 4.
    "map_jac0.4": (1 / 2 + 2 / 3 + 3 / 4) / 3,
    "map_jac0.6": 1 / 4,
    "map_jac0.8": 1 / 4,
    # Label 0 (d2, d0) at ranks 2, 4; label 1 (d4, d0, d3) at ranks 3, 4, 5.
    "label_map_macro": ((1 / 2 + 2 / 4) / 2 + (1 / 3 + 2 / 4 + 3 / 5) / 3) / 2,
    "label_map_rare": (1 / 2 + 2 / 4) / 2,  # label frequencies 2/5, 3/5, 2/5 → labels 0 and 2 rare
    "label_map_frequent": (1 / 3 + 2 / 4 + 3 / 5) / 3,
}


def hand_report(**kwargs):
    return evaluate_retrieval(
        HAND_QUERY_EMB,
        HAND_QUERY_LABELS,
        HAND_DB_EMB,
        HAND_DB_LABELS,
        ks=(2, 10),
        rare_threshold=0.4,
        label_names=["a", "b", "c"],
        **kwargs,
    )


def test_hand_computed_database():
    report = hand_report()
    for key, expected in HAND_EXPECTED.items():
        assert report.metrics[key] == pytest.approx(expected, abs=1e-12), key
    assert report.per_label_ap["a"] == pytest.approx(1 / 2)
    assert report.per_label_ap["b"] == pytest.approx((1 / 3 + 2 / 4 + 3 / 5) / 3)
    assert math.isnan(report.per_label_ap["c"])  # no query carries label c
    assert report.rare_labels == ["a", "c"]
    assert report.n_queries == 2
    assert report.n_queries_without_relevant == 1


def test_query_without_relevant_item_is_nan_for_every_metric():
    report = hand_report()
    for key, per_query in report.per_query.items():
        assert math.isnan(per_query[1]), key
        # The mean is query 0's value alone: the undefined query counts neither as 0 nor in the divisor.
        assert report.metrics[key] == per_query[0], key


def test_ties_break_by_database_index():
    # Reorder the database as d0, d4, d1, d2, d3: the three tied items now rank d4 (r=1), d1 (r=0),
    # d2 (r=1), giving rel = [1, 0, 1, 1, 1] instead of [0, 1, 1, 1, 1]: ties follow database index.
    permutation = [0, 4, 1, 2, 3]
    report = evaluate_retrieval(
        HAND_QUERY_EMB[:1], HAND_QUERY_LABELS[:1], HAND_DB_EMB[permutation], HAND_DB_LABELS[permutation], ks=(2,)
    )
    assert report.metrics["map"] == pytest.approx((1 / 1 + 2 / 3 + 3 / 4 + 4 / 5) / 4)
    assert report.metrics["p@2"] == pytest.approx(1 / 2)
    assert report.metrics["map@2"] == pytest.approx(1.0)
    # Determinism: the same call gives bit-identical per-query values.
    again = evaluate_retrieval(
        HAND_QUERY_EMB[:1], HAND_QUERY_LABELS[:1], HAND_DB_EMB[permutation], HAND_DB_LABELS[permutation], ks=(2,)
    )
    assert report.per_query["map"].tolist() == again.per_query["map"].tolist()


def test_label_freq_decides_the_rare_labels():
    report = hand_report(label_freq=[0.9, 0.05, 0.5])
    assert report.rare_labels == ["b"]
    assert report.metrics["label_map_rare"] == pytest.approx(HAND_EXPECTED["label_map_frequent"])
    assert report.metrics["label_map_frequent"] == pytest.approx(HAND_EXPECTED["label_map_rare"])


# Leave-one-out on three items: a = [1, 0] {0}, b = [1, 0] {1}, c = [0.6, 0.8] {0}.
#   a: ranking without a: b (sim 1), c (0.6) → rel [0, 1] → AP = 1/2.
#   b: a and c carry only label 0 → R = 0 (and label 1 has no other carrier: its per-label AP is skipped).
#   c: a and b tie at 0.6 → a first (index 0) → rel [1, 0] → AP = 1.
LOO_EMB = np.array([[1, 0], [1, 0], [0.6, 0.8]])
LOO_LABELS = np.array([[1, 0], [0, 1], [1, 0]])


def test_leave_one_out_excludes_each_query_from_its_own_ranking():
    report = evaluate_retrieval(LOO_EMB, LOO_LABELS, ks=(1, 5))
    per_query = report.per_query["map"]
    assert per_query[0] == pytest.approx(1 / 2)
    assert math.isnan(per_query[1])
    assert per_query[2] == pytest.approx(1.0)
    assert report.metrics["map"] == pytest.approx(3 / 4)
    assert report.n_queries_without_relevant == 1
    # k = 5 > N_db = 2 (3 items minus the query itself): P@5 = hits / 2.
    assert report.per_query["p@5"][0] == pytest.approx(1 / 2)
    assert report.per_query["p@5"][2] == pytest.approx(1 / 2)
    # Per-label AP: label 0 from a (1/2) and c (1); label 1 has no carrier besides b itself.
    assert report.per_label_ap["label_0"] == pytest.approx(3 / 4)
    assert math.isnan(report.per_label_ap["label_1"])


def test_query_db_index_excludes_the_query_in_the_database():
    # Queries a, c (inside the database at 0 and 2) and an outside query equal to a (index -1).
    queries = LOO_EMB[[0, 2, 0]]
    labels = LOO_LABELS[[0, 2, 0]]
    report = evaluate_retrieval(queries, labels, LOO_EMB, LOO_LABELS, ks=(1,), query_db_index=[0, 2, -1])
    per_query = report.per_query["map"]
    assert per_query[0] == pytest.approx(1 / 2)  # as in leave-one-out
    assert per_query[1] == pytest.approx(1.0)
    # Not excluded: a finds itself first (tie with b, lower index), then b, then c → rel [1, 0, 1].
    assert per_query[2] == pytest.approx((1 / 1 + 2 / 3) / 2)
    assert report.per_query["p@1"].tolist() == [0.0, 1.0, 1.0]


# --- the vectorised evaluation against the slow oracle -----------------------------------------------


KS = (1, 5, 10, 60)  # 60 exceeds the database
THRESHOLDS = (0.4, 0.6, 0.8)


def assert_matches_oracle(report, expected):
    assert set(report.metrics) == set(expected["metrics"])
    for key, value in expected["metrics"].items():
        assert report.metrics[key] == pytest.approx(value, abs=1e-12, nan_ok=True), key
    for key, value in expected["per_query"].items():
        np.testing.assert_allclose(report.per_query[key], value, rtol=0, atol=1e-12, err_msg=key)
    np.testing.assert_allclose(list(report.per_label_ap.values()), expected["per_label"], rtol=0, atol=1e-12)
    assert report.rare_labels == [f"label_{c}" for c in expected["rare"]]
    assert report.n_queries_without_relevant == expected["n_without"]


@pytest.mark.parametrize("tied", [False, True])
@pytest.mark.parametrize("seed", [0, 1])
def test_matches_oracle_with_separate_database(seed, tied):
    query_emb, query_labels, db_emb, db_labels, _ = random_problem(seed, 30, 50, tied=tied)
    exclude = [-1] * 30
    expected = oracle_evaluate(query_emb, query_labels, db_emb, db_labels, exclude, KS, THRESHOLDS, 0.1)
    report = evaluate_retrieval(query_emb, query_labels, db_emb, db_labels, ks=KS)
    assert_matches_oracle(report, expected)


@pytest.mark.parametrize("tied", [False, True])
def test_matches_oracle_leave_one_out(tied):
    emb, labels, _, _, _ = random_problem(2, 40, 10, tied=tied)
    expected = oracle_evaluate(emb, labels, emb, labels, list(range(40)), KS, THRESHOLDS, 0.1)
    assert_matches_oracle(evaluate_retrieval(emb, labels, ks=KS), expected)


def test_matches_oracle_with_query_db_index_and_given_frequencies():
    query_emb, query_labels, db_emb, db_labels, _ = random_problem(3, 30, 50)
    # Half of the queries are database items (their own copy must be excluded), half are not.
    index = np.full(30, -1)
    index[::2] = np.arange(0, 30, 2) + 7
    query_emb[::2] = db_emb[index[::2]]
    query_labels[::2] = db_labels[index[::2]]
    freq = [0.05, 0.3, 0.1, 0.12, 0.5, 0.02]
    expected = oracle_evaluate(
        query_emb, query_labels, db_emb, db_labels, index.tolist(), KS, (0.5,), 0.1, label_freq=freq
    )
    report = evaluate_retrieval(
        query_emb,
        query_labels,
        db_emb,
        db_labels,
        ks=KS,
        query_db_index=index,
        jaccard_thresholds=(0.5,),
        label_freq=np.array(freq),
    )
    assert_matches_oracle(report, expected)


# --- chunking, input types, report ----------------------------------------------------------------------


def test_chunking_gives_identical_results():
    query_emb, query_labels, db_emb, db_labels, _ = random_problem(4, 40, 60)
    index = np.where(np.arange(40) % 3 == 0, np.arange(40), -1)
    kwargs = {"ks": KS, "query_db_index": index}
    default = evaluate_retrieval(query_emb, query_labels, db_emb, db_labels, **kwargs)
    # 1 byte forces one query per chunk; 300 kB gives uneven chunks of a few queries.
    for budget in (1, 300_000):
        chunked = evaluate_retrieval(query_emb, query_labels, db_emb, db_labels, max_chunk_bytes=budget, **kwargs)
        assert chunked.metrics.keys() == default.metrics.keys()
        for key in default.per_query:
            np.testing.assert_array_equal(chunked.per_query[key], default.per_query[key], err_msg=key)
        np.testing.assert_array_equal(list(chunked.metrics.values()), list(default.metrics.values()))
        np.testing.assert_array_equal(list(chunked.per_label_ap.values()), list(default.per_label_ap.values()))


def test_numpy_and_torch_inputs_agree_and_float32_works():
    query_emb, query_labels, db_emb, db_labels, _ = random_problem(5, 20, 30)
    from_numpy = evaluate_retrieval(query_emb, query_labels, db_emb, db_labels, ks=(5,))
    from_torch = evaluate_retrieval(
        torch.from_numpy(query_emb),
        torch.from_numpy(query_labels).bool(),
        torch.from_numpy(db_emb),
        torch.from_numpy(db_labels).float(),
        ks=(5,),
    )
    assert from_numpy.metrics == pytest.approx(from_torch.metrics, nan_ok=True)
    single = evaluate_retrieval(query_emb.astype(np.float32), query_labels, db_emb.astype(np.float32), db_labels)
    assert 0.0 < single.metrics["map"] <= 1.0


def test_report_serialises():
    report = hand_report()
    as_dict = report.to_dict(include_per_query=True)
    text = json.dumps(as_dict, allow_nan=False)  # NaN must have become null
    assert json.loads(text)["metrics"]["map"] == pytest.approx(AP)
    assert as_dict["per_label_ap"]["c"] is None
    assert as_dict["per_query"]["map"][1] is None
    assert "per_query" not in report.to_dict()
    markdown = report.to_markdown()
    assert f"| map | {AP:.4f} |" in markdown
    assert "| a | 0.5000 | yes |" in markdown


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"query_labels": np.array([[1, 2, 0], [0, 0, 0]])}, "query_labels"),
        ({"query_labels": np.array([1, 0, 0])}, "query_labels"),
        ({"db_labels": HAND_DB_LABELS[:, :2]}, "db_labels"),
        ({"db_labels": HAND_DB_LABELS[:4]}, "db_labels"),
        ({"query_emb": HAND_QUERY_EMB[:1]}, "query_labels"),
        ({"db_emb": np.ones((5, 3))}, "db_emb"),
        ({"query_emb": np.array([[np.nan, 0], [0, 1]])}, "query_emb"),
        ({"query_db_index": [0]}, "query_db_index"),
        ({"query_db_index": [0, 5]}, "query_db_index"),
        ({"query_db_index": [0.0, 1.0]}, "query_db_index"),
        ({"label_freq": [0.1, 0.2]}, "label_freq"),
        ({"label_names": ["a", "a", "b"]}, "label_names"),
        ({"ks": (5, 0)}, "ks"),
        ({"jaccard_thresholds": (0.0,)}, "jaccard_thresholds"),
    ],
)
def test_invalid_inputs_name_the_argument(kwargs, match):
    arguments = {
        "query_emb": HAND_QUERY_EMB,
        "query_labels": HAND_QUERY_LABELS,
        "db_emb": HAND_DB_EMB,
        "db_labels": HAND_DB_LABELS,
    }
    arguments.update(kwargs)
    with pytest.raises(ValueError, match=match):
        evaluate_retrieval(**arguments)


def test_missing_half_of_the_database_or_a_lone_query_is_refused():
    with pytest.raises(ValueError, match="db_labels"):
        evaluate_retrieval(HAND_QUERY_EMB, HAND_QUERY_LABELS, HAND_DB_EMB)
    with pytest.raises(ValueError, match="besides the query"):
        evaluate_retrieval(HAND_QUERY_EMB[:1], HAND_QUERY_LABELS[:1])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_tensors_match_cpu():
    query_emb, query_labels, db_emb, db_labels, _ = random_problem(6, 30, 50)
    index = np.where(np.arange(30) % 2 == 0, np.arange(30), -1)
    cpu = evaluate_retrieval(query_emb, query_labels, db_emb, db_labels, ks=KS, query_db_index=index)
    gpu = evaluate_retrieval(
        *(torch.from_numpy(a).cuda() for a in (query_emb, query_labels, db_emb, db_labels)),
        ks=KS,
        query_db_index=torch.from_numpy(index).cuda(),
    )
    assert gpu.metrics == pytest.approx(cpu.metrics, abs=1e-12, nan_ok=True)
    assert gpu.per_label_ap == pytest.approx(cpu.per_label_ap, abs=1e-12, nan_ok=True)


def test_top_k_is_the_ranking_the_metrics_scored():
    # The tied reordering above ranks d0, then d4, d1, d2 (ties by database index), then d3 (see the map).
    permutation = [0, 4, 1, 2, 3]
    db = HAND_DB_EMB[permutation]
    report = evaluate_retrieval(HAND_QUERY_EMB[:1], HAND_QUERY_LABELS[:1], db, HAND_DB_LABELS[permutation], top_k=3)
    scores = np.asarray(db, dtype=np.float64) @ np.asarray(HAND_QUERY_EMB[0], dtype=np.float64)
    expected = np.argsort(-scores / np.linalg.norm(np.asarray(db, dtype=np.float64), axis=1), kind="stable")[:3]
    assert report.top is not None and report.top.shape == (1, 3)
    assert report.top[0].tolist() == expected.tolist()
    assert evaluate_retrieval(HAND_QUERY_EMB[:1], HAND_QUERY_LABELS[:1], db, HAND_DB_LABELS[permutation]).top is None
    # leave-one-out: a query never appears in its own list; past the end of the database, -1
    loo = evaluate_retrieval(LOO_EMB, LOO_LABELS, top_k=4)
    assert all(q not in loo.top[q].tolist() for q in range(len(LOO_LABELS)))
    assert (loo.top[:, 2:] == -1).all()
