"""The dataset contract every archive follows (modelled on torchgeo's).

``Dataset(root, split='train', transforms=None, download=False, checksum=False)``; a ``classes`` tuple;
items ``{'image': float32 3×H×W in [0, 1], 'label': float32 multi-hot (C,), 'id': str}``; label
statistics of the split; ``plot(sample)`` returning a matplotlib Figure; and errors that name the file at
fault. A subclass only says where its images and labels are (:meth:`MultiLabelDataset._index`) and,
when the archive has an official split, which images are in it (:meth:`MultiLabelDataset._official_split`).
"""

from __future__ import annotations

import hashlib
import logging
import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from matplotlib.figure import Figure
from torch.utils.data import Dataset

from macl.data.errors import CorruptImageError, DatasetNotFoundError
from macl.data.images import read_image
from macl.data.splits import SPLITS, load_or_create_split

log = logging.getLogger(__name__)

Sample = dict[str, Any]
Transform = Callable[[Sample], Sample]
SPLIT_CHOICES = (*SPLITS, "trainval", "all")


@dataclass(frozen=True)
class ArchiveIndex:
    """Every image of an archive: ids, files and the (N, C) 0/1 label matrix, in one order."""

    ids: list[str]
    paths: list[Path]
    labels: np.ndarray
    classes: tuple[str, ...]

    def __post_init__(self) -> None:
        n = len(self.ids)
        if len(self.paths) != n or self.labels.shape != (n, len(self.classes)):
            raise ValueError(
                f"archive index is inconsistent: {n} ids, {len(self.paths)} paths, labels {self.labels.shape}, "
                f"{len(self.classes)} classes"
            )
        if len(set(self.ids)) != n:
            dup = next(i for i in self.ids if self.ids.count(i) > 1)
            raise ValueError(f"image id {dup!r} appears more than once")
        if len(set(self.classes)) != len(self.classes):
            raise ValueError(f"label names must be distinct; got {self.classes}")


class MultiLabelDataset(Dataset[Sample], ABC):
    """Base class of the archives.

    Args:
        root: folder holding the archive in its native layout.
        split: ``'train'``, ``'val'``, ``'test'``, ``'trainval'`` or ``'all'``.
        transforms: called on each sample dict (see :mod:`macl.data.transforms`).
        download: fetch the archive into ``root`` if it is missing (needs internet).
        checksum: verify the downloaded archive's checksum.
        on_bad: ``'raise'`` (default): a corrupt image raises :class:`CorruptImageError` naming it when
            read. ``'skip'``: every image is decoded once at construction and unreadable ones are dropped,
            listed in ``self.skipped`` and logged.
        split_seed: seed of the stored split for archives without an official one.
        split_dir: where that split is stored; default ``root``, or a per-archive folder under
            ``~/.cache/macl/splits`` when ``root`` is read-only (a shared copy of the data).
    """

    name: ClassVar[str] = "archive"

    def __init__(
        self,
        root: Path | str,
        split: str = "train",
        transforms: Transform | None = None,
        download: bool = False,
        checksum: bool = False,
        on_bad: str = "raise",
        split_seed: int = 0,
        split_dir: Path | str | None = None,
    ) -> None:
        if split not in SPLIT_CHOICES:
            raise ValueError(f"split must be one of {SPLIT_CHOICES}; got {split!r}")
        if on_bad not in ("raise", "skip"):
            raise ValueError(f"on_bad must be 'raise' or 'skip'; got {on_bad!r}")
        self.root = Path(root)
        self.split = split
        self.transforms = transforms
        self.split_seed = split_seed
        self.on_bad = on_bad
        self.split_dir = Path(split_dir) if split_dir is not None else _writable_split_dir(self.root)
        try:
            index = self._index()
        except DatasetNotFoundError:
            if not download:
                raise
            self._download(checksum)
            index = self._index()
        members = self._members(index, split)
        keep = [i for i, image_id in enumerate(index.ids) if image_id in members]
        self.classes: tuple[str, ...] = index.classes
        self.ids: list[str] = [index.ids[i] for i in keep]
        self.paths: list[Path] = [index.paths[i] for i in keep]
        self.label_matrix: np.ndarray = index.labels[keep].astype(np.uint8)
        self.skipped: list[tuple[Path, str]] = []
        if on_bad == "skip":
            self._drop_unreadable()

    # --- what a subclass provides -------------------------------------------------------------------
    @abstractmethod
    def _index(self) -> ArchiveIndex:
        """Read the label file(s) and locate every image; raise DatasetNotFoundError if absent."""

    def _official_split(self, index: ArchiveIndex) -> dict[str, list[str]] | None:
        """``{'train': ids, 'val': ids, 'test': ids}`` if the archive defines one; ``None`` otherwise."""
        return None

    def _download(self, checksum: bool) -> None:
        """Fetch the archive into ``root``; called only when ``_index`` found nothing and download=True."""
        raise NotImplementedError(f"{type(self).__name__} has no public download; put the files in {self.root}")

    # --- the contract ---------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: int) -> Sample:
        sample: Sample = {
            "image": self.read(index).float().div_(255.0),
            "label": torch.from_numpy(self.label_matrix[index].astype(np.float32)),
            "id": self.ids[index],
        }
        return self.transforms(sample) if self.transforms is not None else sample

    def read(self, index: int) -> torch.Tensor:
        """The decoded (3, H, W) ``uint8`` image at ``index`` (no transforms)."""
        return read_image(self.paths[index])

    def label_counts(self) -> np.ndarray:
        """Images per label in this split, (C,)."""
        return self.label_matrix.sum(0).astype(np.int64)

    def label_frequencies(self) -> np.ndarray:
        """Fraction of this split's images carrying each label, (C,)."""
        return self.label_counts() / max(len(self), 1)

    def cooccurrence(self) -> np.ndarray:
        """(C, C) images carrying both labels; the diagonal is :meth:`label_counts`."""
        m = self.label_matrix.astype(np.int64)
        return m.T @ m

    def plot(self, sample: Sample, show_titles: bool = True, suptitle: str | None = None) -> Figure:
        """The sample's image with its label names (and predicted ones, if ``sample['prediction']``)."""
        from macl.data.plotting import plot_sample

        return plot_sample(sample, self.classes, show_titles=show_titles, suptitle=suptitle)

    def __repr__(self) -> str:
        size = f"images={len(self)}, labels={len(self.classes)}"
        return f"{type(self).__name__}(root={str(self.root)!r}, split={self.split!r}, {size})"

    # --- internals ------------------------------------------------------------------------------------
    def _members(self, index: ArchiveIndex, split: str) -> set[str]:
        if split == "all":
            return set(index.ids)
        splits = self._official_split(index)
        if splits is None:
            splits = load_or_create_split(self.split_dir, index.ids, index.labels, seed=self.split_seed)
        names: Sequence[str] = ("train", "val") if split == "trainval" else (split,)
        return {image_id for name in names for image_id in splits.get(name, [])}

    def _drop_unreadable(self) -> None:
        good = []
        for i, path in enumerate(self.paths):
            try:
                read_image(path)
                good.append(i)
            except (CorruptImageError, FileNotFoundError) as err:
                self.skipped.append((path, str(err)))
        if self.skipped:
            log.warning(
                "skipped %d unreadable images: %s", len(self.skipped), ", ".join(str(p) for p, _ in self.skipped)
            )
        self.ids = [self.ids[i] for i in good]
        self.paths = [self.paths[i] for i in good]
        self.label_matrix = self.label_matrix[good]


def _writable_split_dir(root: Path) -> Path:
    """``root`` if the split file can be written there, else a folder in the user's cache keyed by ``root``."""
    if not root.exists() or os.access(root, os.W_OK):
        return root
    key = hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:12]
    folder = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "macl" / "splits" / f"{root.name}-{key}"
    folder.mkdir(parents=True, exist_ok=True)
    log.info("%s is read-only: the seeded split is stored in %s", root, folder)
    return folder


class ArchiveView(Dataset[Sample]):
    """Another dataset's items seen differently (resized, cached, augmented): the same ``classes``,
    ``ids``, labels and length as ``dataset``, which is never modified.

    Samplers and losses read the labels of whatever they are given, so every wrapper must expose them
    exactly as the wrapped archive does; subclasses only define ``__getitem__``.
    """

    def __init__(self, dataset: Any) -> None:
        self.dataset = dataset

    @property
    def classes(self) -> tuple[str, ...]:
        return tuple(self.dataset.classes)

    @property
    def ids(self) -> list[str]:
        return list(self.dataset.ids)

    @property
    def label_matrix(self) -> np.ndarray:
        return np.asarray(self.dataset.label_matrix)

    def label_counts(self) -> np.ndarray:
        """Images per label, (C,), as :meth:`MultiLabelDataset.label_counts`."""
        return self.label_matrix.sum(0).astype(np.int64)

    def __len__(self) -> int:
        return len(self.dataset)
