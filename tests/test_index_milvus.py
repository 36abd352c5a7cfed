"""The Milvus backend on an embedded milvus-lite database: the index contract, filters inside the
database, agreement with faiss's exact search, reopening from a saved folder, and a second process.

One database (one milvus-lite server, a few seconds to start) serves the whole module; tests that
change what they index use collections of their own.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pymilvus")
pytest.importorskip("milvus_lite")

from macl.errors import ArgumentError, MissingFileError
from macl.index import FaissIndex, LabelFilter, open_index
from macl.index.base import IndexFileError
from macl.index.milvus_index import MilvusIndex

N, D, K = 400, 16, 10
LABELS = ("building", "road", "tree", "water", "grass", "car")
HASH = "f" * 64


def clustered(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Embeddings around 8 centres, and labels that follow the centres (each centre has its own likely
    labels), like a real archive: neighbours share labels more often than not."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(8, D))
    label_rates = rng.uniform(0.05, 0.9, size=(8, len(LABELS)))
    cluster = rng.integers(0, 8, n)
    emb = centres[cluster] + 0.6 * rng.normal(size=(n, D))
    emb[5] = emb[4]  # exact duplicates: tied scores must not break the comparisons
    labels = (rng.random((n, len(LABELS))) < label_rates[cluster]).astype(np.uint8)
    return emb.astype(np.float32), labels


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def assert_same_ranking(scores, ids, ref_scores, ref_ids) -> None:
    """Scores equal within 1e-5; ids equal wherever the score is not tied with another in the row or
    with the last one (where an equal item just outside the top k could take the place)."""
    np.testing.assert_allclose(scores, ref_scores, atol=1e-5)
    for row, ref_row, s in zip(ids, ref_ids, scores, strict=True):
        assert len(row) == len(ref_row)
        for p in range(len(row)):
            others = np.delete(s[: len(row)], p)
            if np.abs(others - s[p]).min(initial=np.inf) > 1e-5 and abs(s[p] - s[len(row) - 1]) > 1e-5:
                assert row[p] == ref_row[p]


def brute_force(queries, emb, ok, k):
    """Exact top-k over the rows where ``ok``: (scores, row numbers)."""
    sims = unit(queries) @ unit(emb).T
    sims[:, ~ok] = -np.inf
    order = np.argsort(-sims, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(sims, order, 1), order


@pytest.fixture(scope="module")
def data():
    emb, labels = clustered(N, seed=0)
    queries, _ = clustered(12, seed=1)
    return emb, labels, [f"img_{i:04d}" for i in range(N)], queries


@pytest.fixture(scope="module")
def db(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("milvus") / "archive.db"


@pytest.fixture(scope="module")
def flat(data, db):
    emb, labels, ids, _ = data
    index = MilvusIndex(D, LABELS, HASH, uri=str(db), collection="flat", index_type="FLAT")
    index.add(emb, ids, labels)
    yield index
    index.close()


@pytest.fixture(scope="module")
def exact(data):
    emb, labels, ids, _ = data
    index = FaissIndex(D, "exact", LABELS, HASH)
    index.add(emb, ids, labels)
    return index


def test_stores_items_and_describes_itself(flat, data):
    emb, labels, ids, _ = data
    assert flat.ntotal == N and ids[7] in flat and "nope" not in flat
    np.testing.assert_array_equal(flat.labels_of([ids[9], ids[2]]), labels[[9, 2]])
    np.testing.assert_allclose(flat.embedding_of(ids[3]), unit(emb[3:4])[0], atol=1e-6)
    info = flat.describe()
    assert info["backend"] == "milvus" and info["index_type"] == "FLAT" and info["ntotal"] == N
    assert info["collection"] == "flat" and info["params"]["index_type"] == "FLAT"
    with pytest.raises(KeyError, match="nope"):
        flat.labels_of([ids[0], "nope"])


def test_flat_search_equals_faiss_exact(flat, exact, data):
    queries = data[3]
    for where in (None, LabelFilter(require=("tree",)), LabelFilter(any_of=("water", "car"))):
        scores, ids = flat.search(queries, K, where)
        ref_scores, ref_ids = exact.search(queries, K, where)
        assert scores.dtype == np.float32 and scores.shape == (len(queries), K)
        assert_same_ranking(scores, ids, ref_scores, ref_ids)
    own_scores, own_ids = flat.search(data[0][:3], K)  # an item finds itself first
    assert [row[0] for row in own_ids] == data[2][:3] and np.all(own_scores[:, 0] <= 1.0)


@pytest.mark.parametrize(
    "where",
    [
        LabelFilter(require=("road", "tree")),
        LabelFilter(any_of=("water", "car")),
        LabelFilter(require=("building",), any_of=("grass", "car")),
    ],
)
def test_filtered_search_returns_only_carriers_and_the_exact_top(flat, data, where):
    emb, labels, ids, queries = data
    ok = where.mask(labels, LABELS)
    scores, found = flat.search(queries, K, where)
    column = {name: c for c, name in enumerate(LABELS)}
    for row in found:
        for image_id in row:
            own = labels[ids.index(image_id)]
            assert all(own[column[name]] for name in where.require)
            assert not where.any_of or any(own[column[name]] for name in where.any_of)
    ref_scores, rows = brute_force(queries, emb, ok, K)
    assert_same_ranking(scores, found, ref_scores, [[ids[r] for r in row] for row in rows])


def test_a_filter_few_pass_pads_with_minus_infinity(flat, data):
    _, labels, _, queries = data
    where = LabelFilter(require=LABELS)  # every label at once: few items, maybe none
    carriers = int(where.mask(labels, LABELS).sum())
    scores, found = flat.search(queries[:2], carriers + 3, where)
    assert all(len(row) == carriers for row in found)
    assert np.isneginf(scores[:, carriers:]).all()


def test_prototype_is_the_mean_of_the_carriers(flat, exact, data):
    emb, labels, _, _ = data
    where = LabelFilter(require=("tree",), any_of=("road", "water"))
    proto, count = flat.prototype(where)
    ok = where.mask(labels, LABELS)
    assert count == ok.sum() and proto.shape == (1, D) and proto.dtype == np.float32
    np.testing.assert_allclose(proto[0], unit(emb)[ok].mean(0), atol=1e-5)
    ref, ref_count = exact.prototype(where)
    assert ref_count == count
    np.testing.assert_allclose(proto, ref, atol=1e-5)


def test_unknown_labels_and_duplicate_ids_are_refused(flat, data):
    emb, labels, ids, queries = data
    with pytest.raises(ArgumentError, match=r"unknown label 'trees'.*did you mean 'tree'"):
        flat.search(queries, K, LabelFilter(require=("trees",)))
    with pytest.raises(ArgumentError, match="unknown label"):
        flat.prototype(LabelFilter(any_of=("lake",)))
    with pytest.raises(ArgumentError, match=f"id '{ids[3]}' is already in the index"):
        flat.add(emb[:2], ["brand_new", ids[3]], labels[:2])
    with pytest.raises(ArgumentError, match="unique"):
        flat.add(emb[:2], ["twice", "twice"], labels[:2])
    assert flat.ntotal == N and "brand_new" not in flat


def test_remove_counts_exactly_and_names_unknown_ids(db, data):
    emb, labels, ids, _ = data
    with MilvusIndex(D, LABELS, HASH, uri=str(db), collection="removal", index_type="FLAT") as index:
        index.add(emb[:50], ids[:50], labels[:50])
        assert index.ntotal == 50
        index.remove([ids[0], ids[1]])
        assert index.ntotal == 48 and ids[0] not in index
        _, found = index.search(emb[:2], 48)
        assert ids[0] not in found[0] and ids[1] not in found[1] and len(found[0]) == 48
        with pytest.raises(KeyError, match="ghost"):
            index.remove([ids[2], "ghost"])
        assert index.ntotal == 48  # nothing removed when one id is unknown
        index.add(emb[:1], ids[:1], labels[:1])  # a removed id may come back, under a new key
        assert index.ntotal == 49 and index.search(emb[:1], 1)[1] == [[ids[0]]]


def test_ids_and_labels_with_quotes_survive_the_filter_expressions(db):
    names = ('say "hi"', "back\\slash", "plain")
    ids = ['a"b', "c\\d", "o'hare", "ünïcode/ß"]
    emb = np.eye(4, dtype=np.float32)
    labels = np.array([[1, 0, 0], [0, 1, 0], [1, 1, 0], [0, 0, 1]], dtype=np.uint8)
    with MilvusIndex(4, names, uri=str(db), collection="quotes", index_type="FLAT") as index:
        index.add(emb, ids, labels)
        assert all(i in index for i in ids) and 'a"' not in index
        np.testing.assert_array_equal(index.labels_of(ids[::-1]), labels[::-1])
        _, found = index.search(np.ones((1, 4)), 4, LabelFilter(require=('say "hi"',)))
        assert sorted(found[0]) == sorted(['a"b', "o'hare"])
        _, found = index.search(np.ones((1, 4)), 4, LabelFilter(any_of=("back\\slash",)))
        assert sorted(found[0]) == sorted(["c\\d", "o'hare"])
        with pytest.raises(ArgumentError, match="cannot be stored"):
            index.add(np.ones((1, 4)), ["tab\tbed"])


@pytest.mark.parametrize(("index_type", "built"), [("HNSW", {"M": 8}), ("IVF_FLAT", {"nlist": 16})])
def test_approximate_indexes_are_built_as_asked(db, data, index_type, built):
    emb, labels, ids, _ = data
    options = {"hnsw_m": 8, "ef_search": 40} if index_type == "HNSW" else {"nlist": 16, "nprobe": 4}
    with MilvusIndex(D, LABELS, uri=str(db), collection=index_type.lower(), index_type=index_type, **options) as index:
        index.add(emb, ids, labels)
        params = index.client.describe_index(index.collection, "vector")["params"]
        assert {key: int(params[key]) for key in built} == built  # milvus-lite read the build parameters
        knob = {"HNSW": ("ef", 40), "IVF_FLAT": ("nprobe", 4)}[index_type]
        assert index._search_params(K)["params"] == dict([knob])
        _, found = index.search(emb[:5], K)
        assert [row[0] for row in found] == ids[:5]


def test_saved_folder_reopens_from_another_directory(tmp_path, monkeypatch, data):
    emb, labels, ids, queries = data
    runs, elsewhere = tmp_path / "runs", tmp_path / "elsewhere"
    runs.mkdir()
    elsewhere.mkdir()
    monkeypatch.chdir(runs)
    with MilvusIndex(D, LABELS, HASH, uri="archive.db", index_type="IVF_FLAT", nlist=8, nprobe=8) as index:
        index.add(emb[:60], ids[:60], labels[:60])
        index.save("archive.index")
        expected = index.search(queries, 5)
    meta = json.loads((runs / "archive.index" / "meta.json").read_text())
    assert meta["uri"] == "archive.db" and meta["backend"] == "milvus"  # relative to the folder's parent
    assert meta["params"] == {"index_type": "IVF_FLAT", "hnsw_m": 32, "ef_search": 128, "nlist": 8, "nprobe": 8}
    monkeypatch.chdir(elsewhere)
    with pytest.raises(IndexFileError, match="built from model"):
        open_index(runs / "archive.index", expected_model_hash="0" * 64)
    reopened = open_index(runs / "archive.index", expected_model_hash=HASH)
    assert isinstance(reopened, MilvusIndex)
    with reopened:
        assert reopened.ntotal == 60 and reopened.label_names == LABELS
        assert_same_ranking(*reopened.search(queries, 5), *expected)


def test_a_collection_is_reused_only_when_it_matches(flat, db, data):
    with MilvusIndex(D, LABELS, HASH, uri=str(db), collection="flat", index_type="FLAT") as again:
        assert again.ntotal == N  # reused, not emptied
    mismatches = [
        ({"label_names": LABELS[:-1]}, "has the labels"),
        ({"model_hash": "0" * 64}, "embeddings of model"),
        ({"index_type": "HNSW"}, "has a FLAT index"),
        ({"dim": D + 1}, f"holds {D}-d vectors"),
    ]
    for change, message in mismatches:
        arguments = {"dim": D, "label_names": LABELS, "model_hash": HASH, "index_type": "FLAT"} | change
        with pytest.raises(IndexFileError, match=message):
            MilvusIndex(uri=str(db), collection="flat", **arguments)
    with pytest.raises(IndexFileError, match="no collection 'absent'"):
        MilvusIndex(D, LABELS, HASH, uri=str(db), collection="absent", create=False)


def test_bad_arguments_are_named(tmp_path):
    with pytest.raises(MissingFileError, match=r"nowhere\.db does not exist"):
        MilvusIndex(D, uri=str(tmp_path / "nowhere.db"), create=False)
    with pytest.raises(ArgumentError, match="index_type"):
        MilvusIndex(D, uri=str(tmp_path / "x.db"), index_type="IVF_PQ")
    with pytest.raises(ArgumentError, match="uri"):
        MilvusIndex(D, uri=str(tmp_path / "x.sqlite"))
    with pytest.raises(ArgumentError, match="label name"):
        MilvusIndex(D, ["ok", "bad\nname"], uri=str(tmp_path / "x.db"))


def test_a_second_process_is_told_the_database_is_in_use(tmp_path):
    db = tmp_path / "held.db"
    probe = textwrap.dedent(
        f"""
        import sys
        from macl.index.base import IndexFileError
        from macl.index.milvus_index import MilvusIndex
        try:
            MilvusIndex(4, uri={str(db)!r}, index_type="FLAT", create=False).close()
        except IndexFileError as err:
            print(err)
            sys.exit(3)
        print("opened")
        """
    )

    def second_process() -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=90)

    index = MilvusIndex(4, uri=str(db), index_type="FLAT")
    index.add(np.eye(4), ["a", "b", "c", "d"])
    try:
        held = second_process()
    finally:
        index.close()
    assert held.returncode == 3, held.stdout + held.stderr
    assert str(db.resolve()) in held.stdout and "in use by another process" in held.stdout
    assert "Traceback" not in held.stderr  # milvus-lite's logged traceback is not shown
    released = second_process()  # closing the last index of this process freed the file
    assert released.returncode == 0 and "opened" in released.stdout, released.stdout + released.stderr
    with pytest.raises(ArgumentError, match="closed"):
        _ = index.ntotal
