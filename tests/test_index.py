"""RetrievalIndex: exact search equals a numpy ranking, approximate backends, persistence, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from macl.index import IndexFileError, RetrievalIndex

NAMES = ("water", "ship", "trees")


def data(n: int = 300, d: int = 16, seed: int = 0):
    rng = np.random.default_rng(seed)
    emb = rng.normal(size=(n, d)).astype(np.float32)
    labels = (rng.random((n, 3)) < 0.4).astype(np.uint8)
    return emb, [f"im{i}" for i in range(n)], labels


def numpy_ranking(emb: np.ndarray, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    e = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    q = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    sims = q @ e.T
    order = np.argsort(-sims, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(sims, order, 1), order


def test_exact_search_equals_brute_force_tie_tolerant() -> None:
    emb, ids, labels = data()
    emb[10] = emb[11] * 3.0  # an exact tie (same direction) must not break the comparison
    index = RetrievalIndex(16, "exact", NAMES)
    index.add(emb[:150], ids[:150], labels[:150])
    index.add(emb[150:], ids[150:], labels[150:])
    queries = np.random.default_rng(1).normal(size=(20, 16))
    scores, keys = index.search(queries, 25)
    want_scores, want_keys = numpy_ranking(emb, queries, 25)
    np.testing.assert_allclose(scores, want_scores, atol=1e-5)
    for row in range(20):  # same set of items wherever scores differ by more than float noise
        strict = want_scores[row] > want_scores[row, -1] + 1e-5
        assert set(keys[row][strict]) == set(want_keys[row][strict])
    assert scores.max() <= 1.0 and scores.dtype == np.float32


@pytest.mark.parametrize(("backend", "params"), [("hnsw", {}), ("ivf", {"nprobe": 32})])
def test_approximate_backends_have_high_recall(backend: str, params: dict) -> None:
    emb, ids, labels = data(n=2000, d=32)  # unclustered Gaussian data: the hard case for IVF
    index = RetrievalIndex(32, backend, NAMES, **params)
    index.add(emb, ids, labels)
    queries = emb[:50] + 0.05 * np.random.default_rng(2).normal(size=(50, 32)).astype(np.float32)
    _, keys = index.search(queries, 10)
    _, truth = numpy_ranking(emb, queries, 10)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(keys, truth, strict=True)])
    assert recall > 0.9


def test_hits_explain_shared_and_missing_labels() -> None:
    emb = np.array([[1, 0], [0.9, 0.1], [0, 1]], dtype=np.float32)
    index = RetrievalIndex(2, "exact", NAMES)
    index.add(emb, ["a", "b", "c"], np.array([[1, 1, 0], [1, 0, 1], [0, 0, 1]]))
    (hits,) = index.hits(emb[:1], k=2, query_labels=np.array([[1, 1, 0]]), exclude=["a"])
    assert [h.id for h in hits] == ["b", "c"]
    assert hits[0].labels == ("water", "trees") and hits[0].shared == ("water",) and hits[0].missing == ("ship",)
    assert hits[1].shared == () and hits[1].missing == ("water", "ship")


def test_remove_then_search() -> None:
    emb, ids, labels = data(n=50)
    index = RetrievalIndex(16, "exact", NAMES)
    index.add(emb, ids, labels)
    index.remove(["im0", "im7"])
    assert index.ntotal == 48
    _, keys = index.search(emb[:1], 48)
    assert "im0" not in {index.ids[k] for k in keys[0]}
    with pytest.raises(KeyError, match="im0"):
        index.remove(["im0"])


@pytest.mark.parametrize("backend", ["exact", "hnsw"])
def test_save_load_round_trip(tmp_path, backend: str) -> None:
    emb, ids, labels = data(n=200)
    index = RetrievalIndex(16, backend, NAMES, model_hash="abc123")
    index.add(emb, ids, labels)
    path = tmp_path / "archive.index"
    index.save(path)
    loaded = RetrievalIndex.load(path, expected_model_hash="abc123")
    assert loaded.ntotal == 200 and loaded.ids == ids and loaded.label_names == NAMES
    a, b = index.search(emb[:5], 10), loaded.search(emb[:5], 10)
    np.testing.assert_array_equal(a[1], b[1])
    assert (loaded.labels_of("im3") == labels[3]).all()
    with pytest.raises(IndexFileError, match="rebuild the index"):
        RetrievalIndex.load(path, expected_model_hash="other")


def test_killed_save_leaves_previous_index_readable(tmp_path, monkeypatch) -> None:
    emb, ids, labels = data(n=40)
    index = RetrievalIndex(16, "exact", NAMES)
    index.add(emb, ids, labels)
    path = tmp_path / "archive.index"
    index.save(path)
    index.add(emb[:1] * 2, ["new"], labels[:1])

    def die(*args, **kwargs):
        raise KeyboardInterrupt  # the process is interrupted in the middle of writing

    monkeypatch.setattr(np, "savez", die)
    with pytest.raises(KeyboardInterrupt):
        index.save(path)
    monkeypatch.undo()
    assert RetrievalIndex.load(path).ntotal == 40
    assert [p.name for p in tmp_path.iterdir()] == ["archive.index"]


def test_bad_input_gives_clear_errors(tmp_path) -> None:
    index = RetrievalIndex(16, "exact", NAMES)
    with pytest.raises(ValueError, match="empty"):
        index.search(np.zeros((1, 16)), 1)
    emb, ids, labels = data(n=5)
    index.add(emb, ids, labels)
    with pytest.raises(ValueError, match="k must be between 1 and ntotal=5"):
        index.search(emb[:1], 6)
    with pytest.raises(ValueError, match="dimension 8 but the index holds 16"):
        index.search(np.zeros((1, 8)), 1)
    with pytest.raises(ValueError, match="already in the index"):
        index.add(emb[:1], ["im0"], labels[:1])
    with pytest.raises(ValueError, match="backend must be"):
        RetrievalIndex(16, "annoy")
    corrupt = tmp_path / "bad.index"
    corrupt.write_bytes(b"not an index")
    with pytest.raises(IndexFileError, match=r"cannot read index file .*bad\.index"):
        RetrievalIndex.load(corrupt)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        RetrievalIndex.load(tmp_path / "missing.index")
