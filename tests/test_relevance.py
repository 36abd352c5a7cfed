"""Label relations between query and database labels, checked against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from macl.metrics import (
    any_label_overlap,
    as_multi_hot,
    label_cosine,
    label_frequencies,
    label_jaccard,
    shared_label_count,
)

# Queries {0, 1} and {} ; database {0}, {1, 2}, {2}, {}.
QUERY = np.array([[1, 1, 0], [0, 0, 0]])
DB = np.array([[1, 0, 0], [0, 1, 1], [0, 0, 1], [0, 0, 0]])


def test_shared_count_and_any_overlap():
    assert shared_label_count(QUERY, DB).tolist() == [[1, 1, 0, 0], [0, 0, 0, 0]]
    assert any_label_overlap(QUERY, DB).tolist() == [[1, 1, 0, 0], [0, 0, 0, 0]]


def test_cosine_is_zero_when_either_set_is_empty():
    # {0,1}·{0}: 1/sqrt(2·1); {0,1}·{1,2}: 1/sqrt(2·2) = 1/2; empty sets give 0, not NaN.
    expected = [[1 / math.sqrt(2), 1 / 2, 0, 0], [0, 0, 0, 0]]
    np.testing.assert_allclose(label_cosine(QUERY, DB).numpy(), expected, rtol=1e-15)


def test_jaccard_is_zero_when_both_sets_are_empty():
    # {0,1} vs {0}: 1/2; vs {1,2}: 1/3; vs {2}: 0/3; vs {}: 0/2; {} vs {}: 0 by convention.
    expected = [[1 / 2, 1 / 3, 0, 0], [0, 0, 0, 0]]
    np.testing.assert_allclose(label_jaccard(QUERY, DB).numpy(), expected, rtol=1e-15)


def test_identical_sets_give_one():
    labels = np.array([[1, 0, 1]])
    assert label_cosine(labels, labels).item() == pytest.approx(1.0)
    assert label_jaccard(labels, labels).item() == 1.0


def test_accepts_bool_and_torch_and_returns_float64():
    out = label_jaccard(torch.from_numpy(QUERY).bool(), DB.astype(np.float32))
    assert out.dtype == torch.float64
    assert out.shape == (2, 4)


def test_label_frequencies():
    assert label_frequencies(DB).tolist() == [1 / 4, 1 / 4, 2 / 4]
    with pytest.raises(ValueError, match="at least one item"):
        label_frequencies(np.zeros((0, 3)))


@pytest.mark.parametrize(
    ("query", "db", "match"),
    [
        (QUERY[0], DB, "query_labels must be 2-D"),
        (QUERY, DB[:, :2], "db_labels has 2 label columns"),
        (QUERY * 2, DB, "query_labels must be multi-hot"),
        (QUERY, DB * 0.5, "db_labels must be multi-hot"),
    ],
)
def test_validation_names_the_argument(query, db, match):
    with pytest.raises(ValueError, match=match):
        label_jaccard(query, db)


def test_as_multi_hot_names_any_argument():
    with pytest.raises(ValueError, match="train_labels"):
        as_multi_hot(np.array([[0, 3]]), "train_labels")
