"""Minimal datasets for tests: PNG files in a temporary folder (base-class tests), tensors in memory (trainer tests)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
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


class LabelledTensors(torch.utils.data.Dataset):
    """Eight random 3×24×24 images with 4 labels: what the trainer needs of a training set."""

    classes = ("a", "b", "c", "d")

    def __init__(self) -> None:
        gen = torch.Generator().manual_seed(0)
        self.images = torch.rand(8, 3, 24, 24, generator=gen)
        self.label_matrix = (torch.rand(8, 4, generator=gen) < 0.5).numpy().astype("uint8")
        self.label_matrix[:, 0] = 1

    def __len__(self) -> int:
        return 8

    def __getitem__(self, i: int) -> dict:
        return {"image": self.images[i], "label": torch.as_tensor(self.label_matrix[i]).float(), "id": str(i)}
