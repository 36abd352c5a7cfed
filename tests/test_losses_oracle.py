"""Every loss equals its slow oracle (tests/loss_oracles.py) on random inputs, with and without ref sets."""

from __future__ import annotations

import pytest
import torch

import loss_oracles as oracle
from macl.losses import (
    JaccardSupConLoss,
    MACLLoss,
    MulSupConLoss,
    NTXentLoss,
    SimilarityDissimilarityLoss,
    SupConLoss,
)

C = 5
COUNTS = [40, 12, 5, 2, 0]  # includes a label absent from training
N_TRAIN = 60


def random_batch(seed: int, m: int = 10, d: int = 6, p: float = 0.4):
    g = torch.Generator().manual_seed(seed)
    emb = torch.randn(m, d, generator=g)
    labels = (torch.rand(m, C, generator=g) < p).int()
    labels[0] = 0  # an unlabelled image: a negative for everyone, never an anchor
    labels[1] = labels[2]  # guarantee some identical label sets for SupCon 'all'
    return emb, labels


REF_MODES = ["batch", "queue", "gathered"]


def call_both(loss, oracle_fn, seed: int, dtype: torch.dtype, ref_mode: str) -> tuple[float, float]:
    emb, labels = random_batch(seed)
    kwargs: dict = {}
    if ref_mode == "queue":  # a disjoint reference set (memory queue)
        ref_emb, ref_labels = random_batch(seed + 100, m=13)
        kwargs = {"ref_emb": ref_emb.to(dtype), "ref_labels": ref_labels}
    elif ref_mode == "gathered":  # the batch sits inside the reference set at offset 4
        other, other_labels = random_batch(seed + 200, m=7)
        ref_emb = torch.cat([other[:4], emb, other[4:]])
        ref_labels = torch.cat([other_labels[:4], labels, other_labels[4:]])
        kwargs = {"ref_emb": ref_emb.to(dtype), "ref_labels": ref_labels, "ref_self_index": torch.arange(10) + 4}
    got = loss(emb.to(dtype), labels, **kwargs).item()
    pairs = oracle.Pairs(emb, labels, kwargs.get("ref_emb"), kwargs.get("ref_labels"), kwargs.get("ref_self_index"))
    return got, oracle_fn(pairs)


MACL_CONFIGS = {
    "suggested": {},
    "weighted": {"weighted": True},
    "plr-off": {"pair_weighting": False},
    "negative-dts": {"alpha": -0.4, "beta": -0.3},
    "dts-anchor": {"dts": "anchor", "beta": 0.8},
    "dts-anchor-negative": {"dts": "anchor", "beta": -0.5, "weighted": True},
    "clamped": {"tau": 0.5, "alpha": 2.0, "beta": 2.0, "t_min": 0.2, "t_max": 0.3},
    "sample-reduction": {"reduction": "sample", "gamma": 1.0},
    "gamma-0": {"gamma": 0.0, "weighted": True},
}

MACL_DEFAULTS = {
    "tau": 0.1,
    "alpha": 0.5,
    "beta": 0.5,
    "gamma": 0.5,
    "pair_weighting": True,
    "weighted": False,
    "dts": "pair",
    "t_min": 0.02,
    "t_max": 1.0,
    "reduction": "label",
}


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("ref_mode", REF_MODES)
@pytest.mark.parametrize("name", sorted(MACL_CONFIGS))
def test_macl_matches_oracle(name: str, ref_mode: str, dtype: torch.dtype) -> None:
    params = {**MACL_DEFAULTS, **MACL_CONFIGS[name]}
    loss = MACLLoss(COUNTS, N_TRAIN, **params)
    for seed in range(3):
        got, want = call_both(loss, lambda p: oracle.macl(p, COUNTS, N_TRAIN, **params), seed, dtype, ref_mode)
        tol = 1e-10 if dtype == torch.float64 else 2e-5
        assert got == pytest.approx(want, rel=tol, abs=tol), (seed, got, want)


BASELINES = {
    "supcon-any": (SupConLoss(tau=0.1, positive="any"), lambda p: oracle.supcon(p, 0.1, "any")),
    "supcon-all": (SupConLoss(tau=0.2, positive="all"), lambda p: oracle.supcon(p, 0.2, "all")),
    "mulsupcon-label": (MulSupConLoss(tau=0.1), lambda p: oracle.mulsupcon(p, 0.1, "label")),
    "mulsupcon-sample": (MulSupConLoss(tau=0.3, reduction="sample"), lambda p: oracle.mulsupcon(p, 0.3, "sample")),
    "jaccard": (JaccardSupConLoss(tau=0.1), lambda p: oracle.jaccard_supcon(p, 0.1, 0.0)),
    "jaccard-threshold": (JaccardSupConLoss(tau=0.1, threshold=0.3), lambda p: oracle.jaccard_supcon(p, 0.1, 0.3)),
    "simdis": (SimilarityDissimilarityLoss(tau=0.15), lambda p: oracle.simdis(p, 0.15)),
}


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("ref_mode", REF_MODES)
@pytest.mark.parametrize("name", sorted(BASELINES))
def test_baseline_matches_oracle(name: str, ref_mode: str, dtype: torch.dtype) -> None:
    loss, oracle_fn = BASELINES[name]
    for seed in range(3):
        got, want = call_both(loss, oracle_fn, seed, dtype, ref_mode)
        tol = 1e-10 if dtype == torch.float64 else 2e-5
        assert got == pytest.approx(want, rel=tol, abs=tol), (seed, got, want)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_ntxent_matches_oracle_layout_and_ids(dtype: torch.dtype) -> None:
    g = torch.Generator().manual_seed(3)
    emb = torch.randn(12, 6, generator=g, dtype=dtype)
    loss = NTXentLoss(tau=0.2, n_views=3)
    layout_ids = [m % 4 for m in range(12)]  # view-major: 3 views of 4 images
    want = oracle.ntxent(oracle.Pairs(emb, None), layout_ids, layout_ids, 0.2)
    tol = 1e-10 if dtype == torch.float64 else 2e-5
    assert loss(emb).item() == pytest.approx(want, rel=tol)
    # Multi-hot labels are ignored; explicit 1-D ids override the layout.
    assert loss(emb, torch.ones(12, 3)).item() == pytest.approx(want, rel=tol)
    ids = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5])
    want_ids = oracle.ntxent(oracle.Pairs(emb, None), ids.tolist(), ids.tolist(), 0.2)
    assert loss(emb, ids).item() == pytest.approx(want_ids, rel=tol)
    # A queue of other images: only negatives, positives come from ... nowhere -> use ids shared with it.
    ref = torch.randn(5, 6, generator=g, dtype=dtype)
    ref_ids = torch.tensor([0, 9, 9, 3, 7])
    pairs = oracle.Pairs(emb, None, ref, None)
    want_ref = oracle.ntxent(pairs, ids.tolist(), ref_ids.tolist(), 0.2)
    assert loss(emb, ids, ref_emb=ref, ref_labels=ref_ids).item() == pytest.approx(want_ref, rel=tol)


def test_ntxent_rejects_incomplete_layout() -> None:
    with pytest.raises(ValueError, match="views of whole images"):
        NTXentLoss(n_views=2)(torch.randn(5, 3))
