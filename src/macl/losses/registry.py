"""Build a loss from a name and keyword arguments (what configs, the CLI and benchmarks use)."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from macl.losses.base import ContrastiveLoss
from macl.losses.jaccard import JaccardSupConLoss
from macl.losses.macl import MACLLoss
from macl.losses.mulsupcon import MulSupConLoss
from macl.losses.ntxent import NTXentLoss
from macl.losses.simdis import SimilarityDissimilarityLoss
from macl.losses.supcon import SupConLoss

LOSSES: dict[str, Callable[..., ContrastiveLoss]] = {
    "macl": MACLLoss,
    "weighted-macl": partial(MACLLoss, weighted=True),
    "mulsupcon": MulSupConLoss,
    "supcon": SupConLoss,
    "supcon-any": partial(SupConLoss, positive="any"),
    "supcon-all": partial(SupConLoss, positive="all"),
    "jaccard-supcon": JaccardSupConLoss,
    "simdis": SimilarityDissimilarityLoss,
    "ntxent": NTXentLoss,
}

# Losses whose constructor needs the training set's label statistics.
NEEDS_LABEL_COUNTS = frozenset({"macl", "weighted-macl"})


def build_loss(name: str, **kwargs: Any) -> ContrastiveLoss:
    """``build_loss("macl", label_counts=..., num_samples=..., tau=0.1)`` → a ready loss module.

    Unknown names and unknown keyword arguments raise ``ValueError`` listing what is accepted, so a typo
    in a config file fails at start-up rather than silently training with defaults.
    """
    key = name.lower().replace("_", "-")
    if key not in LOSSES:
        raise ValueError(f"unknown loss {name!r}; choose one of {sorted(LOSSES)}")
    try:
        return LOSSES[key](**kwargs)
    except TypeError as err:
        raise ValueError(f"bad arguments for loss {name!r}: {err}") from err
