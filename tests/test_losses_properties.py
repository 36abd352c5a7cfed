"""Loss behaviour beyond the oracle: equivalences, independent cross-checks, gradients, degenerate batches."""

from __future__ import annotations

import pytest
import torch
from pytorch_metric_learning import losses as pml

from macl.losses import (
    LOSSES,
    NEEDS_LABEL_COUNTS,
    MACLLoss,
    MulSupConLoss,
    NTXentLoss,
    SupConLoss,
    build_loss,
)

COUNTS = [30, 10, 4, 1]
N = 40


def make(name: str, **kwargs) -> torch.nn.Module:
    if name in NEEDS_LABEL_COUNTS:
        kwargs = {"label_counts": COUNTS, "num_samples": N, **kwargs}
    return build_loss(name, **kwargs)


def batch(seed: int = 0, m: int = 16, d: int = 8, c: int = 4, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(m, d, generator=g, dtype=dtype), (torch.rand(m, c, generator=g) < 0.4).float()


@pytest.mark.parametrize("reduction", ["label", "sample"])
def test_macl_with_every_part_off_is_mulsupcon(reduction: str) -> None:
    macl = MACLLoss(COUNTS, N, tau=0.2, alpha=0, beta=0, pair_weighting=False, weighted=False, reduction=reduction)
    mulsupcon = MulSupConLoss(tau=0.2, reduction=reduction)
    for seed in range(5):
        emb, labels = batch(seed)
        assert macl(emb, labels).item() == pytest.approx(mulsupcon(emb, labels).item(), abs=1e-6)


def test_macl_parts_change_the_loss() -> None:
    """Each switch must actually act: a part that silently does nothing would pass the equivalence test."""
    emb, labels = batch(1)
    base = dict(alpha=0.0, beta=0.0, pair_weighting=False, weighted=False)
    reference = MACLLoss(COUNTS, N, **base)(emb, labels).item()
    for change in ({"alpha": 0.5}, {"beta": 0.5}, {"pair_weighting": True}, {"weighted": True}):
        value = MACLLoss(COUNTS, N, **{**base, **change})(emb, labels).item()
        assert abs(value - reference) > 1e-4, change


def test_supcon_equals_pytorch_metric_learning_on_one_hot() -> None:
    g = torch.Generator().manual_seed(0)
    classes = torch.randint(0, 5, (32,), generator=g)
    emb = torch.randn(32, 16, generator=g)
    ours = SupConLoss(tau=0.1)(emb, torch.nn.functional.one_hot(classes, 5))
    theirs = pml.SupConLoss(temperature=0.1)(emb, classes)
    assert ours.item() == pytest.approx(theirs.item(), rel=1e-5)
    # 'all' and 'any' agree on one-hot labels.
    assert SupConLoss(tau=0.1, positive="all")(emb, torch.eye(5)[classes]).item() == (
        pytest.approx(ours.item(), rel=1e-6)
    )


def test_ntxent_equals_pytorch_metric_learning() -> None:
    g = torch.Generator().manual_seed(1)
    view1, view2 = torch.randn(20, 16, generator=g), torch.randn(20, 16, generator=g)
    emb = torch.cat([view1, view2])
    ids = torch.arange(20).repeat(2)
    theirs = pml.NTXentLoss(temperature=0.1)(emb, ids)
    assert NTXentLoss(tau=0.1)(emb).item() == pytest.approx(theirs.item(), rel=1e-5)
    assert NTXentLoss(tau=0.1)(emb, ids).item() == pytest.approx(theirs.item(), rel=1e-5)


GRAD_CONFIGS = [
    ("macl", {}),
    ("macl", {"dts": "anchor", "beta": -0.5}),
    ("weighted-macl", {"reduction": "sample"}),
    ("mulsupcon", {}),
    ("supcon-any", {}),
    ("supcon-all", {}),
    ("jaccard-supcon", {"threshold": 0.2}),
    ("simdis", {}),
    ("ntxent", {}),
]


@pytest.mark.parametrize(("name", "kwargs"), GRAD_CONFIGS, ids=[f"{n}{k}" for n, k in GRAD_CONFIGS])
def test_gradcheck(name: str, kwargs: dict) -> None:
    loss = make(name, **kwargs)
    emb, labels = batch(2, m=6, d=3, dtype=torch.float64)
    labels[0:2] = torch.tensor([1.0, 1.0, 0.0, 0.0])  # ensure identical sets for supcon-all
    emb.requires_grad_(True)
    ref = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    ref_labels = (torch.rand(4, 4, generator=torch.Generator().manual_seed(5)) < 0.5).float()
    assert torch.autograd.gradcheck(lambda e: loss(e, labels), (emb,))
    if name != "ntxent":
        assert torch.autograd.gradcheck(lambda e, r: loss(e, labels, r, ref_labels), (emb, ref))


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_tiny_temperature_stays_finite(name: str) -> None:
    kwargs = {"tau": 0.01}
    if name in NEEDS_LABEL_COUNTS:
        kwargs |= {"t_min": 0.005}
    loss = make(name, **kwargs)
    emb, labels = batch(3, m=64, d=16)
    emb.requires_grad_(True)
    value = loss(emb * 100, labels)  # large raw projections: normalisation happens inside
    value.backward()
    assert torch.isfinite(value) and value > 0
    assert torch.isfinite(emb.grad).all() and emb.grad.abs().sum() > 0


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_bfloat16_autocast(name: str) -> None:
    loss = make(name)
    layer = torch.nn.Linear(8, 16)
    x, labels = batch(4, m=32, d=8)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        emb = layer(x)
        assert emb.dtype == torch.bfloat16
        value = loss(emb, labels)
    value.backward()
    assert value.dtype == torch.float32 and torch.isfinite(value)
    assert torch.isfinite(layer.weight.grad).all() and layer.weight.grad.abs().sum() > 0
    # The loss is computed in float32, so it matches the float32 loss on the same bf16 embeddings.
    assert value.item() == pytest.approx(loss(emb.float(), labels).item(), rel=1e-5)


LABEL_LOSSES = sorted(set(LOSSES) - {"ntxent"})


@pytest.mark.parametrize("name", LABEL_LOSSES)
def test_no_anchor_with_positive_gives_zero_with_gradient(name: str) -> None:
    """All labels disjoint (or absent): nothing to pull together. Documented: loss 0, zero gradient."""
    emb = torch.randn(4, 8, requires_grad=True)
    labels = torch.tensor([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 0]])
    value = make(name)(emb, labels)
    value.backward()
    assert value.item() == 0.0
    assert emb.grad is not None and torch.equal(emb.grad, torch.zeros_like(emb))


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_one_sample(name: str) -> None:
    emb = torch.randn(1, 8, requires_grad=True)
    labels = torch.tensor([[1, 1, 0, 0]])
    loss = make(name, n_views=2) if name == "ntxent" else make(name)
    value = loss(emb, torch.zeros(1, dtype=torch.long)) if name == "ntxent" else loss(emb, labels)
    value.backward()
    assert value.item() == 0.0 and torch.isfinite(emb.grad).all()


@pytest.mark.parametrize("name", LABEL_LOSSES)
def test_unlabelled_images_are_negatives_only(name: str) -> None:
    """An unlabelled image is never an anchor, but it is a negative for everyone: it gets a gradient."""
    emb, labels = batch(5, m=10)
    labels[3] = 0
    emb.requires_grad_(True)
    value = make(name)(emb, labels)
    value.backward()
    assert torch.isfinite(value) and torch.isfinite(emb.grad).all()
    assert emb.grad[3].abs().sum() > 0


@pytest.mark.parametrize("name", LABEL_LOSSES)
def test_all_identical_labels(name: str) -> None:
    emb, _ = batch(6, m=8)
    emb.requires_grad_(True)
    value = make(name)(emb, torch.ones(8, 4))
    value.backward()
    assert torch.isfinite(value) and value > 0 and torch.isfinite(emb.grad).all()


def test_loss_falls_when_positives_align() -> None:
    """Sanity of sign: collapsing each label group onto one direction lowers every label loss."""
    labels = torch.tensor([[1, 0, 0, 0]] * 4 + [[0, 1, 0, 0]] * 4).float()
    aligned = labels @ torch.randn(4, 8) + 0.01 * torch.randn(8, 8)
    scattered = torch.randn(8, 8)
    for name in LABEL_LOSSES:
        loss = make(name)
        assert loss(aligned, labels) < loss(scattered, labels), name


def test_bad_inputs_name_the_culprit() -> None:
    loss = MulSupConLoss()
    with pytest.raises(ValueError, match="labels must be multi-hot with values 0/1 only; found 2"):
        loss(torch.randn(3, 4), torch.tensor([[0, 1], [2, 0], [1, 1]]))
    with pytest.raises(ValueError, match="labels has 2 rows but embeddings has 3"):
        loss(torch.randn(3, 4), torch.ones(2, 2))
    with pytest.raises(ValueError, match="ref_emb and ref_labels must be given together"):
        loss(torch.randn(3, 4), torch.ones(3, 2), ref_emb=torch.randn(2, 4))
    with pytest.raises(ValueError, match="ref_labels has 3 label columns"):
        loss(torch.randn(3, 4), torch.ones(3, 2), torch.randn(2, 4), torch.ones(2, 3))
    with pytest.raises(ValueError, match="needs labels"):
        loss(torch.randn(3, 4))
    with pytest.raises(ValueError, match="built with 4 label counts"):
        MACLLoss(COUNTS, N)(torch.randn(3, 4), torch.ones(3, 5))
    with pytest.raises(ValueError, match="non-positive"):
        MACLLoss(COUNTS, N, alpha=-0.7, beta=-0.4)
    with pytest.raises(ValueError, match="num_samples"):
        MACLLoss(COUNTS, 10)
    with pytest.raises(ValueError, match="unknown loss 'macl2'"):
        build_loss("macl2")
    with pytest.raises(ValueError, match="bad arguments for loss 'supcon'"):
        build_loss("supcon", temperature=0.1)


def test_registry_builds_every_loss() -> None:
    assert build_loss("weighted_macl", label_counts=COUNTS, num_samples=N).weighted
    assert build_loss("supcon-all").positive == "all"
    for name in LOSSES:
        assert isinstance(make(name), torch.nn.Module)
