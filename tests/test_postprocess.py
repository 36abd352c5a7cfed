"""macl.postprocess: each step against its definition, hand-written loop oracles for αQE and DBA, the state
round trip, and every error a caller can cause."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from macl import postprocess
from macl.errors import ArgumentError, ConfigError
from macl.postprocess import PostProcessing, PostProcessor


def unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def relu_features(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    """Like pooled ReLU features: non-negative, with a large common component, so every cosine is ≈ 1."""
    return (1.0 + np.abs(rng.normal(scale=0.15, size=(n, dim)))).astype(np.float32)


def probabilities(rng: np.random.Generator, n: int, labels: int) -> np.ndarray:
    return (1 / (1 + np.exp(-rng.normal(scale=2.0, size=(n, labels))))).astype(np.float32)


def expand_oracle(x: np.ndarray, y: np.ndarray, k: int, alpha: float, exclude_self: bool) -> np.ndarray:
    """αQE / DBA one row at a time: normalise(x_i + Σ_{top-k j, j ≠ i for DBA} max(s_ij, 0)^α y_j)."""
    out = []
    for i, row in enumerate(x.astype(np.float64)):
        sims = y.astype(np.float64) @ row
        order = [j for j in np.argsort(-sims, kind="stable") if not (exclude_self and j == i)][:k]
        total = row.copy()
        for j in order:
            total += max(sims[j], 0.0) ** alpha * y[j]
        out.append(total / np.linalg.norm(total))
    return np.array(out)


# ---------------------------------------------------------------- options


def test_default_options_are_the_identity() -> None:
    assert PostProcessing().is_identity
    for change in ({"center": True}, {"whiten": 2}, {"fusion": 0.5}, {"qe_k": 1}, {"dba_k": 1}):
        assert not PostProcessing(**change).is_identity  # type: ignore[arg-type]
    assert PostProcessing(qe_alpha=1.0, dba_alpha=0.0).is_identity


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"whiten": -1}, "postprocess.whiten must not be negative; got -1"),
        ({"qe_k": -1}, "postprocess.qe_k must not be negative; got -1"),
        ({"dba_k": -3}, "postprocess.dba_k must not be negative; got -3"),
        ({"whiten": 2.5}, "postprocess.whiten must be an integer; got 2.5"),
        ({"qe_k": True}, "postprocess.qe_k must be an integer; got True"),
        ({"center": "yes"}, "postprocess.center must be true or false; got 'yes'"),
        ({"fusion": 1.0}, "postprocess.fusion must lie in [0, 1); got 1.0"),
        ({"fusion": -0.1}, "postprocess.fusion must lie in [0, 1); got -0.1"),
        ({"fusion": "0.5"}, "postprocess.fusion must be a finite number; got '0.5'"),
        ({"qe_alpha": -1.0}, "postprocess.qe_alpha must not be negative; got -1.0"),
        ({"dba_alpha": math.nan}, "postprocess.dba_alpha must be a finite number; got nan"),
    ],
)
def test_invalid_options_name_the_field(change: dict, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        PostProcessing(**change)
    assert str(err.value) == message


def test_numpy_integers_are_accepted() -> None:
    assert PostProcessing(whiten=np.int64(3), qe_k=np.int32(2)).whiten == 3  # type: ignore[arg-type]


# ---------------------------------------------------------------- per-item steps


def test_identity_only_normalises_and_needs_no_fit() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(20, 8)).astype(np.float32)
    processor = PostProcessor(PostProcessing())
    assert processor.dim is None
    out = processor.transform(x)
    assert out.dtype == np.float32 and out.flags.c_contiguous
    np.testing.assert_allclose(out, unit(x), atol=1e-6)
    np.testing.assert_allclose(processor.database(x), out, atol=0)
    np.testing.assert_allclose(processor.queries(x[:3], None, out), out[:3], atol=0)
    assert processor.fit(x).dim == 8
    np.testing.assert_array_equal(processor.transform(x), out)
    units = unit(x).astype(np.float32)
    np.testing.assert_allclose(processor.transform(units), units, atol=1e-6)


def test_zero_rows_stay_zero() -> None:
    x = np.array([[0.0, 0.0], [3.0, 4.0]], dtype=np.float32)
    out = PostProcessor(PostProcessing()).transform(x)
    np.testing.assert_allclose(out, [[0, 0], [0.6, 0.8]], atol=1e-7)


def test_centring_zeroes_the_database_mean_and_spreads_the_cosines() -> None:
    rng = np.random.default_rng(1)
    db, queries = relu_features(rng, 300, 32), relu_features(rng, 20, 32)
    raw = unit(db) @ unit(db).T
    off_diagonal = ~np.eye(len(db), dtype=bool)
    assert raw[off_diagonal].min() > 0.97  # the problem: every cosine reads ≈ 1

    processor = PostProcessor(PostProcessing(center=True)).fit(db)
    np.testing.assert_allclose(processor.project(db).mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(processor.project(queries), queries - db.mean(axis=0), atol=1e-5)
    out = processor.transform(db)
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1, atol=1e-6)
    centred = (out @ out.T)[off_diagonal]
    assert abs(centred.mean()) < 0.05 and centred.std() > 0.1
    assert processor.dim == 32


def test_whitening_gives_identity_covariance_on_the_fit_set() -> None:
    rng = np.random.default_rng(2)
    scales = np.geomspace(10, 0.1, 12)
    mixing = np.linalg.qr(rng.normal(size=(12, 12)))[0]
    db = (rng.normal(size=(500, 12)) * scales @ mixing + 5).astype(np.float32)
    processor = PostProcessor(PostProcessing(whiten=6)).fit(db)
    z = processor.project(db)
    assert z.shape == (500, 6)
    np.testing.assert_allclose(z.mean(axis=0), 0, atol=1e-4)
    np.testing.assert_allclose(np.cov(z, rowvar=False), np.eye(6), atol=1e-3)
    assert processor.transform(db).shape == (500, 6) and processor.dim == 6
    # The kept components are the top ones: what z cannot explain is the variance of the 6 smallest.
    centred = db.astype(np.float64) - db.mean(axis=0)
    residual = centred - z @ np.linalg.lstsq(z, centred, rcond=None)[0]
    smallest = np.linalg.eigvalsh(np.cov(centred, rowvar=False))[:6].sum()
    np.testing.assert_allclose((residual**2).sum() / (len(db) - 1), smallest, rtol=1e-3)


def test_whitening_rank_deficient_data_stays_finite() -> None:
    """Directions of (numerically) zero variance are amplified by at most 1/sqrt(ε), not divided by zero."""
    rng = np.random.default_rng(3)
    db = np.zeros((50, 8), dtype=np.float32)
    db[:, :3] = rng.normal(size=(50, 3))  # rank 3 after centring, whitened to 8
    processor = PostProcessor(PostProcessing(whiten=8)).fit(db)
    z = processor.project(rng.normal(size=(10, 8)).astype(np.float32))
    assert np.isfinite(z).all() and np.abs(z).max() < 1e6
    assert np.isfinite(processor.transform(db)).all()
    constant = PostProcessor(PostProcessing(whiten=2)).fit(np.ones((5, 4), dtype=np.float32))
    assert np.isfinite(constant.transform(rng.normal(size=(3, 4)))).all()


@pytest.mark.parametrize("w", [0.0, 0.3, 0.7])
@pytest.mark.parametrize("center", [False, True])
def test_fusion_cosine_is_the_weighted_sum(w: float, center: bool) -> None:
    rng = np.random.default_rng(4)
    x, p = relu_features(rng, 40, 16), probabilities(rng, 40, 5)
    fused = PostProcessor(PostProcessing(center=center, fusion=w)).fit(x, p)
    plain = PostProcessor(PostProcessing(center=center)).fit(x)
    f, e = fused.transform(x, p), plain.transform(x)
    expected = (1 - w) * (e @ e.T) + w * (unit(p) @ unit(p).T)
    np.testing.assert_allclose(f @ f.T, expected, atol=2e-6)
    np.testing.assert_allclose(np.linalg.norm(f, axis=1), 1, atol=1e-6)
    assert f.shape[1] == fused.dim == (16 + 5 if w > 0 else 16)


def test_fusion_with_a_zero_probability_row_keeps_it_zero() -> None:
    x = np.array([[3.0, 4.0], [1.0, 0.0]], dtype=np.float32)
    p = np.array([[0.0, 0.0, 0.0], [0.5, 0.0, 0.5]], dtype=np.float32)
    out = PostProcessor(PostProcessing(fusion=0.36)).transform(x, p)
    np.testing.assert_allclose(out[0], [0.6, 0.8, 0, 0, 0], atol=1e-6)  # the embedding part alone, unit
    np.testing.assert_allclose(out[1], [0.8, 0, 0.6 / math.sqrt(2), 0, 0.6 / math.sqrt(2)], atol=1e-6)


def test_probabilities_are_checked_but_unused_without_fusion() -> None:
    rng = np.random.default_rng(5)
    x, p = rng.normal(size=(6, 4)), probabilities(rng, 6, 3)
    processor = PostProcessor(PostProcessing(center=True)).fit(x, p)
    assert processor.dim == 4
    np.testing.assert_array_equal(processor.transform(x, p), processor.transform(x))


# ---------------------------------------------------------------- αQE and DBA


def test_three_point_example_by_hand() -> None:
    """y = (1, 0), (0.6, 0.8), (0, 1): similarities y0·y1 = 0.6, y0·y2 = 0, y1·y2 = 0.8."""
    y = np.array([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0]], dtype=np.float32)
    dba = PostProcessor(PostProcessing(dba_k=1, dba_alpha=1.0)).database(y)
    expected = unit([[1 + 0.6 * 0.6, 0.6 * 0.8], [0.6, 0.8 + 0.8 * 1], [0.8 * 0.6, 1 + 0.8 * 0.8]])
    np.testing.assert_allclose(dba, expected, atol=1e-6)
    # q = (0.8, 0.6): q·y = 0.8, 0.96, 0.6; top-2 are y1 (0.96) and y0 (0.8); weights 0.96², 0.8².
    qe = PostProcessor(PostProcessing(qe_k=2, qe_alpha=2.0))
    out = qe.queries(np.array([[0.8, 0.6]]), None, y)
    np.testing.assert_allclose(out, unit([[0.8 + 0.9216 * 0.6 + 0.64, 0.6 + 0.9216 * 0.8]]), atol=1e-6)
    # A negative similarity weighs 0: (1, 0) and (−1, 0) expand q = (0.6, 0.8) by 0.6³·(1, 0) only.
    opposite = np.array([[1.0, 0.0], [-1.0, 0.0]], dtype=np.float32)
    out = PostProcessor(PostProcessing(qe_k=2)).queries(np.array([[0.6, 0.8]]), None, opposite)
    np.testing.assert_allclose(out, unit([[0.6 + 0.216, 0.8]]), atol=1e-6)


@pytest.mark.parametrize(("k", "alpha"), [(1, 3.0), (4, 3.0), (5, 1.0), (3, 0.0)])
def test_query_expansion_matches_the_loop_oracle(k: int, alpha: float) -> None:
    rng = np.random.default_rng(6)
    db, queries = rng.normal(size=(60, 10)), rng.normal(size=(15, 10))
    processor = PostProcessor(PostProcessing(qe_k=k, qe_alpha=alpha))
    y = processor.database(db)
    expected = expand_oracle(unit(queries), y, k, alpha, exclude_self=False)
    np.testing.assert_allclose(processor.queries(queries, None, y), expected, atol=1e-5)


@pytest.mark.parametrize(("k", "alpha"), [(1, 3.0), (4, 3.0), (5, 1.0), (3, 0.0)])
def test_database_augmentation_matches_the_loop_oracle(k: int, alpha: float) -> None:
    rng = np.random.default_rng(7)
    db = rng.normal(size=(60, 10))
    expected = expand_oracle(unit(db), unit(db), k, alpha, exclude_self=True)
    out = PostProcessor(PostProcessing(dba_k=k, dba_alpha=alpha)).database(db)
    np.testing.assert_allclose(out, expected, atol=1e-5)


def test_full_pipeline_matches_the_oracles_across_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Centring, whitening, fusion, DBA then αQE; tiny chunks exercise every chunk boundary."""
    rng = np.random.default_rng(8)
    db, db_p = relu_features(rng, 80, 12), probabilities(rng, 80, 4)
    q, q_p = relu_features(rng, 9, 12), probabilities(rng, 9, 4)
    options = PostProcessing(whiten=8, fusion=0.3, qe_k=3, qe_alpha=2.0, dba_k=2, dba_alpha=3.0)
    whole = PostProcessor(options).fit(db, db_p)
    y = whole.database(db, db_p)
    out = whole.queries(q, q_p, y)
    x = whole.transform(db, db_p)
    np.testing.assert_allclose(y, expand_oracle(x, x, 2, 3.0, exclude_self=True), atol=1e-5)
    np.testing.assert_allclose(out, expand_oracle(whole.transform(q, q_p), y, 3, 2.0, exclude_self=False), atol=1e-5)
    monkeypatch.setattr(postprocess, "CHUNK_BYTES", 4 * 12 * 7)  # 7 rows at a time
    chunked = PostProcessor(options).fit(db, db_p)
    np.testing.assert_allclose(chunked.database(db, db_p), y, atol=1e-6)
    np.testing.assert_allclose(chunked.queries(q, q_p, y), out, atol=1e-6)


def test_augmentation_excludes_the_item_itself_but_not_its_duplicate() -> None:
    """Items 0 and 1 are equal: item 0's 2 neighbours are 1 and 2, and its own row counts once."""
    x = unit([[1.0, 0.0], [1.0, 0.0], [0.8, 0.6], [-1.0, 0.1]]).astype(np.float32)
    out = PostProcessor(PostProcessing(dba_k=2, dba_alpha=1.0)).database(x)
    np.testing.assert_allclose(out[0], unit(x[0] + x[1] + 0.8 * x[2]), atol=1e-6)
    sims = np.array([[1.0, 1.0, 0.5]], dtype=np.float32)
    ids = np.array([[1, 2, 3]])  # the row, 0, was pushed out of its k + 1 by duplicates: the last is dropped
    kept_sims, kept_ids = postprocess._drop_self(sims, ids, np.array([0]), 2)
    np.testing.assert_array_equal(kept_ids, [[1, 2]])
    np.testing.assert_array_equal(kept_sims, [[1.0, 1.0]])


def test_k_zero_is_a_no_op_and_k_is_capped_by_the_database() -> None:
    rng = np.random.default_rng(9)
    db, q = rng.normal(size=(5, 4)), rng.normal(size=(3, 4))
    plain = PostProcessor(PostProcessing(center=True)).fit(db)
    off = PostProcessor(PostProcessing(center=True, qe_alpha=1.0, dba_alpha=1.0)).fit(db)
    np.testing.assert_array_equal(off.database(db), plain.transform(db))
    np.testing.assert_array_equal(off.queries(q, None, off.database(db)), plain.transform(q))
    big = PostProcessor(PostProcessing(center=True, qe_k=50, dba_k=50, qe_alpha=1.0, dba_alpha=1.0)).fit(db)
    everything = PostProcessor(PostProcessing(center=True, qe_k=5, dba_k=4, qe_alpha=1.0, dba_alpha=1.0)).fit(db)
    y = big.database(db)
    np.testing.assert_allclose(y, everything.database(db), atol=1e-6)
    np.testing.assert_allclose(big.queries(q, None, y), everything.queries(q, None, y), atol=1e-6)
    single = PostProcessor(PostProcessing(dba_k=3)).database(db[:1])  # no neighbour other than itself
    np.testing.assert_allclose(single, unit(db[:1]), atol=1e-6)


# ---------------------------------------------------------------- state


@pytest.mark.parametrize(
    "options",
    [
        PostProcessing(),
        PostProcessing(center=True, dba_k=2),
        PostProcessing(whiten=5, fusion=0.4, qe_k=3, qe_alpha=2.0, dba_k=2),
    ],
)
def test_state_round_trip_through_json_is_exact(options: PostProcessing) -> None:
    rng = np.random.default_rng(10)
    db, db_p = relu_features(rng, 40, 8), probabilities(rng, 40, 3)
    q, q_p = relu_features(rng, 6, 8), probabilities(rng, 6, 3)
    saved = PostProcessor(options).fit(db, db_p)
    restored = PostProcessor.from_state(json.loads(json.dumps(saved.state())))
    assert restored.options == options and restored.dim == saved.dim
    y = saved.database(db, db_p)
    np.testing.assert_array_equal(restored.database(db, db_p), y)
    np.testing.assert_array_equal(restored.queries(q, q_p, y), saved.queries(q, q_p, y))


def test_state_of_an_unfitted_processor_round_trips() -> None:
    state = PostProcessor(PostProcessing(center=True)).state()
    restored = PostProcessor.from_state(json.loads(json.dumps(state)))
    assert restored.dim is None
    with pytest.raises(ArgumentError, match="call fit"):
        restored.transform(np.ones((2, 3)))


def fitted_state() -> dict:
    rng = np.random.default_rng(11)
    db, p = rng.normal(size=(10, 4)), probabilities(rng, 10, 2)
    return PostProcessor(PostProcessing(whiten=2, fusion=0.5)).fit(db, p).state()


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda s: s.pop("mean"), "must be a mapping with keys"),
        (lambda s: s.update(version=99), "version 99 is not 1"),
        (lambda s: s["options"].update(typo=1), "invalid options"),
        (lambda s: s["options"].update(whiten=-1), "postprocess.whiten must not be negative"),
        (lambda s: s.update(input_dim=0), "input_dim must be a positive integer"),
        (lambda s: s.update(n_labels=None), "n_labels None must be an integer"),
        (lambda s: s.update(mean=[0.0, 0.0]), r"mean has shape \(2,\), but the options need \(4,\)"),
        (lambda s: s.update(projection=None), r"projection has shape None, but the options need \(4, 2\)"),
    ],
)
def test_from_state_rejects_a_damaged_state(edit, match: str) -> None:
    state = fitted_state()
    edit(state)
    with pytest.raises(ValueError, match=match):
        PostProcessor.from_state(state)


def test_from_state_rejects_a_non_mapping() -> None:
    with pytest.raises(ArgumentError, match="got list"):
        PostProcessor.from_state([])  # type: ignore[arg-type]


# ---------------------------------------------------------------- errors


def test_fit_errors_name_the_problem() -> None:
    rng = np.random.default_rng(12)
    x = rng.normal(size=(10, 4))
    processor = PostProcessor(PostProcessing(center=True))
    with pytest.raises(ArgumentError, match="empty database"):
        processor.fit(np.zeros((0, 4)))
    with pytest.raises(ArgumentError, match="database vectors contain NaN or inf"):
        processor.fit(np.where(np.eye(10, 4) > 0, np.nan, x))
    with pytest.raises(ArgumentError, match="database vectors must be a 2-D"):
        processor.fit(np.ones(4))
    with pytest.raises(ArgumentError, match=r"database label probabilities must be an \(10, C\) array"):
        processor.fit(x, probabilities(rng, 9, 3))
    with pytest.raises(ArgumentError, match="database label probabilities contain NaN"):
        processor.fit(x, np.full((10, 3), np.nan))
    with pytest.raises(ArgumentError, match=r"must lie in \[0, 1\] \(sigmoid outputs, not logits\)"):
        processor.fit(x, rng.normal(size=(10, 3)))
    with pytest.raises(ArgumentError, match=r"postprocess\.whiten = 5 exceeds the embedding dimension 4"):
        PostProcessor(PostProcessing(whiten=5)).fit(x)
    with pytest.raises(ArgumentError, match=r"postprocess\.whiten = 3 needs at least 4 database items"):
        PostProcessor(PostProcessing(whiten=3)).fit(x[:3])
    with pytest.raises(ArgumentError, match=r"postprocess.fusion = 0.5 .* none were given to fit"):
        PostProcessor(PostProcessing(fusion=0.5)).fit(x)


def test_transform_errors_name_the_problem() -> None:
    rng = np.random.default_rng(13)
    x, p = rng.normal(size=(10, 4)), probabilities(rng, 10, 3)
    with pytest.raises(ArgumentError, match=r"call fit\(database vectors\) before transforming"):
        PostProcessor(PostProcessing(whiten=2)).transform(x)
    with pytest.raises(ArgumentError, match=r"call fit\(database vectors\) before transforming"):
        PostProcessor(PostProcessing(center=True)).project(x)
    with pytest.raises(ArgumentError, match=r"call fit\(database vectors\) before transforming"):
        PostProcessor(PostProcessing(center=True)).transform(np.zeros((0, 4)))
    fused = PostProcessor(PostProcessing(center=True, fusion=0.5)).fit(x, p)
    with pytest.raises(ArgumentError, match="vectors have dimension 5, but post-processing was fitted on 4"):
        fused.transform(rng.normal(size=(2, 5)), p[:2])
    with pytest.raises(ArgumentError, match=r"none were given to transform \(pass probs\)"):
        fused.transform(x)
    with pytest.raises(ArgumentError, match="label probabilities have 2 labels, but post-processing was fitted with 3"):
        fused.transform(x, p[:, :2])
    with pytest.raises(ArgumentError, match="vectors contain NaN or inf"):
        fused.transform(np.full((1, 4), np.inf), p[:1])
    with pytest.raises(ArgumentError, match=r"none were given to transform"):
        PostProcessor(PostProcessing(fusion=0.2)).transform(x)
    expanding = PostProcessor(PostProcessing(qe_k=2)).fit(x)
    with pytest.raises(ArgumentError, match="post-processed database vectors have dimension 3"):
        expanding.queries(x[:2], None, rng.normal(size=(5, 3)).astype(np.float32))


def test_an_empty_batch_transforms_to_an_empty_matrix() -> None:
    processor = PostProcessor(PostProcessing(whiten=2, fusion=0.5)).fit(np.eye(4) + 1, np.full((4, 3), 0.5))
    assert processor.transform(np.zeros((0, 4)), np.zeros((0, 3))).shape == (0, 5)
