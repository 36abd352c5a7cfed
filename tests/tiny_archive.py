"""A minimal MultiLabelDataset over PNG files written into a temporary folder, for base-class tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from macl.data.base import ArchiveIndex, MultiLabelDataset

CLASSES = ("water", "trees", "ship", "cars")


def write_tiny_archive(root: Path, n: int = 24, size: int = 20, seed: int = 0) -> np.ndarray:
    """``n`` random RGB PNGs ``img000.png …`` and their labels (returned), ship only with water."""
    rng = np.random.default_rng(seed)
    labels = (rng.random((n, len(CLASSES))) < [0.5, 0.6, 0.15, 0.3]).astype(np.uint8)
    labels[:, 2] &= labels[:, 0]
    root.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(root / f"img{i:03d}.png")
    np.save(root / "labels.npy", labels)
    return labels


class TinyArchive(MultiLabelDataset):
    name = "tiny"

    def _index(self) -> ArchiveIndex:
        labels = np.load(self.root / "labels.npy")
        ids = [f"img{i:03d}" for i in range(len(labels))]
        return ArchiveIndex(ids, [self.root / f"{i}.png" for i in ids], labels, CLASSES)
