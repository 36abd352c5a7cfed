"""Decode an archive once and serve resized ``uint8`` tensors from memory or a memory-mapped file.

Decoding a 256 px TIFF/WebP and resizing it costs more CPU than a small network's forward pass on it,
so re-decoding every epoch makes data loading the bottleneck of CPU training on small archives. The
cache holds every image of a split at a fixed side (e.g. 128 px for 96 px crops) as one
(N, 3, S, S) ``uint8`` array: 2100 UC Merced images at 128 px are 100 MB. ``folder=None`` keeps it in
memory (shared copy-on-write with DataLoader workers); with a folder it is written once as a ``.npy``
file (atomically: a killed build leaves no half-written cache) and memory-mapped afterwards.

**One way to size an image for the model.** :func:`resize_image` (antialiased resize of the decoded
``uint8`` image, then scaling to [0, 1]) is what every evaluation-time input goes through: the decoded
cache, :class:`ResizedArchive` (the same, one image at a time, for archives too large to hold), and a
query image given by file. An image therefore has bit-identical embeddings whichever path embedded it.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch
from torchvision.transforms.v2 import functional as F

from macl.data.base import ArchiveView, MultiLabelDataset, Sample
from macl.fileio import atomic_write


def _key(dataset: MultiLabelDataset, size: int) -> str:
    digest = hashlib.sha256("\n".join(map(str, dataset.paths)).encode()).hexdigest()[:16]
    return f"{type(dataset).__name__.lower()}_{dataset.split}_{size}px_{digest}"


def resize_image(image: torch.Tensor, size: int) -> torch.Tensor:
    """A decoded (3, H, W) ``uint8`` image resized (antialiased) to ``size``×``size``, still ``uint8``."""
    if image.shape[-2:] != (size, size):
        image = F.resize(image, [size, size], antialias=True)
    return image


def model_input(image: torch.Tensor) -> torch.Tensor:
    """A ``uint8`` image as the float [0, 1] tensor the encoder takes (it normalises it itself)."""
    return image.float().div_(255.0)


def decode_all(dataset: MultiLabelDataset, size: int) -> np.ndarray:
    """Every image of ``dataset`` resized (antialiased) to ``size``×``size``: (N, 3, S, S) uint8."""
    out = np.empty((len(dataset), 3, size, size), dtype=np.uint8)
    for i in range(len(dataset)):
        out[i] = resize_image(dataset.read(i), size).numpy()
    return out


class ResizedArchive(ArchiveView):
    """``dataset`` with every image resized to ``size`` px on the fly, exactly as the decoded cache does.

    For embedding archives too large to decode into memory: items equal :class:`CachedArchive`'s.
    """

    def __init__(self, dataset: MultiLabelDataset, size: int) -> None:
        super().__init__(dataset)
        self.size = size

    def __getitem__(self, index: int) -> Sample:
        return {
            "image": model_input(resize_image(self.dataset.read(index), self.size)),
            "label": torch.from_numpy(self.dataset.label_matrix[index].astype(np.float32)),
            "id": self.dataset.ids[index],
        }


class CachedArchive(ArchiveView):
    """A :class:`MultiLabelDataset` whose images are decoded once, at ``size`` px.

    Items are :func:`model_input` tensors (the wrapped dataset's own ``transforms`` are not applied; wrap
    the cache in :class:`~macl.data.transforms.Transformed` to augment); ``classes``, ``ids``,
    ``label_matrix`` and the label statistics are those of the wrapped dataset.
    """

    def __init__(self, dataset: MultiLabelDataset, size: int, folder: Path | None = None) -> None:
        super().__init__(dataset)
        self.size = size
        self.images = self._load(folder) if folder is not None else decode_all(dataset, size)

    def _load(self, folder: Path) -> np.ndarray:
        path = Path(folder) / f"{_key(self.dataset, self.size)}.npy"
        if not path.is_file():
            with atomic_write(path) as fh:
                np.save(fh, decode_all(self.dataset, self.size))
        images = np.load(path, mmap_mode="r")
        if images.shape != (len(self.dataset), 3, self.size, self.size):
            raise ValueError(f"cache {path} has shape {images.shape}; delete it to rebuild")
        return images

    def __getitem__(self, index: int) -> Sample:
        return {
            "image": model_input(torch.from_numpy(np.array(self.images[index]))),
            "label": torch.from_numpy(self.dataset.label_matrix[index].astype(np.float32)),
            "id": self.dataset.ids[index],
        }
