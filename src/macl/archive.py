"""The configured archive's splits as the model sees them: opened once, each resized once per side.

Training, validation, evaluation, indexing and every benchmark cell take their images from an
:class:`ArchiveSplits`, so the same image reaches the model as the same tensor whichever of them asks
(:func:`macl.data.cache.resize_image`). ``decode=True`` decodes a split into memory the first time it is
asked for at a side and shares it afterwards (the training loop and the benchmark harness, where the
same images are read every epoch and by every cell); ``decode=False`` resizes image by image with flat
memory (embedding a large archive once).
"""

from __future__ import annotations

from macl.config import DatasetConfig
from macl.data.base import MultiLabelDataset
from macl.data.cache import CachedArchive, ResizedArchive
from macl.data.registry import open_archive


class ArchiveSplits:
    """The splits of the archive a :class:`DatasetConfig` names."""

    def __init__(self, dataset: DatasetConfig, decode: bool = True) -> None:
        self.config, self.decode = dataset, decode
        self._raw: dict[str, MultiLabelDataset] = {}
        self._sized: dict[tuple[str, int], CachedArchive | ResizedArchive] = {}

    def raw(self, split: str) -> MultiLabelDataset:
        """Split ``split`` as the archive stores it (original size, no transform)."""
        if split not in self._raw:
            self._raw[split] = open_archive(self.config.name, split, self.config.root, **self.config.args)
        return self._raw[split]

    def at(self, split: str, side: int) -> CachedArchive | ResizedArchive:
        """Split ``split`` with every image resized to ``side``×``side``, as float [0, 1] samples."""
        if (split, side) not in self._sized:
            sized = CachedArchive if self.decode else ResizedArchive
            self._sized[split, side] = sized(self.raw(split), side)
        return self._sized[split, side]

    def locate(self, splits: list[str]) -> dict[str, tuple[MultiLabelDataset, int]]:
        """Where each image of ``splits`` lives: id → (split dataset, position), to draw a hit by its id."""
        found: dict[str, tuple[MultiLabelDataset, int]] = {}
        for split in splits:
            dataset = self.raw(split)
            found.update({image_id: (dataset, n) for n, image_id in enumerate(dataset.ids)})
        return found

    @property
    def classes(self) -> tuple[str, ...]:
        return self.raw("train").classes
