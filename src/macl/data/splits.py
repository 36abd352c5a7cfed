"""Train/val/test membership: official splits where an archive has one, else a seeded split kept on disk.

A split that is re-drawn on every run makes results incomparable between runs and machines, so the
seeded split is written next to the data the first time (``macl_split_seed<S>.json``) and read back
afterwards. The draw is a greedy multi-label stratification: images are assigned rarest-label first to
the split furthest below its share of that label, so a label with ten images still lands in every split
rather than, by bad luck, only in the training set.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from macl.fileio import atomic_write

SPLITS = ("train", "val", "test")
DEFAULT_FRACTIONS = (0.6, 0.2, 0.2)


def stratified_split(labels: np.ndarray, fractions: Sequence[float], seed: int) -> np.ndarray:
    """Split index (0=train, 1=val, 2=test) per row of ``labels`` (N, C), stratified by label.

    Iterative stratification (Sechidis et al., 2011), simplified: repeatedly take the label with the
    fewest unassigned images, and give each of its images to the split with the largest remaining demand
    for that label (ties: the split with the largest remaining overall demand, then at random).
    Unlabelled images are distributed by overall demand at the end.
    """
    rng = np.random.default_rng(seed)
    n = labels.shape[0]
    frac = np.asarray(fractions, dtype=np.float64)
    if frac.shape != (3,) or (frac < 0).any() or not np.isclose(frac.sum(), 1.0):
        raise ValueError(f"fractions must be three non-negative numbers summing to 1; got {fractions}")
    demand = frac * n
    label_demand = frac[:, None] * labels.sum(0)[None, :]
    assignment = np.full(n, -1)
    remaining = labels.astype(bool).copy()
    while remaining.any():
        counts = remaining.sum(0)
        label = int(np.argmin(np.where(counts > 0, counts, np.iinfo(np.int64).max)))
        for i in rng.permutation(np.flatnonzero(remaining[:, label])):
            best = np.lexsort((rng.random(3), -demand, -label_demand[:, label]))[0]
            assignment[i] = best
            demand[best] -= 1
            label_demand[best] -= labels[i]
            remaining[i] = False
    for i in rng.permutation(np.flatnonzero(assignment < 0)):
        best = int(np.argmax(demand))
        assignment[i] = best
        demand[best] -= 1
    return assignment


def load_or_create_split(
    folder: Path,
    ids: Sequence[str],
    labels: np.ndarray,
    seed: int = 0,
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    name: str = "split",
) -> dict[str, list[str]]:
    """The seeded split of ``ids`` stored in ``folder/macl_<name>_seed<seed>.json``, created on first use."""
    path = folder / f"macl_{name}_seed{seed}.json"
    if path.is_file():
        stored = json.loads(path.read_text())
        if "fractions" in stored and stored["fractions"] != list(fractions):  # hand-written files may omit it
            raise ValueError(
                f"{path} was drawn with fractions {stored.get('fractions')}, not {list(fractions)}; "
                "delete the file to draw a new split"
            )
        members = {name: list(stored[name]) for name in SPLITS}
        known = set(ids)
        listed = {i for split in members.values() for i in split}
        if listed == known:
            return members
        raise ValueError(
            f"{path} lists {len(listed)} images but the archive has {len(known)} "
            f"({len(known - listed)} not in the split, {len(listed - known)} no longer in the archive); "
            "delete the file to draw a new split"
        )
    assignment = stratified_split(labels, fractions, seed)
    members = {name: [ids[i] for i in np.flatnonzero(assignment == k).tolist()] for k, name in enumerate(SPLITS)}
    payload = {"seed": seed, "fractions": list(fractions), **members}
    with atomic_write(path) as fh:
        fh.write(json.dumps(payload, indent=1).encode())
    return members
