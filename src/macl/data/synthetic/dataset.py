""":class:`SyntheticAerial`: the rendered archive as a dataset with the contract of every archive."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from macl.data.base import ArchiveIndex, MultiLabelDataset, Transform
from macl.data.splits import DEFAULT_FRACTIONS, SPLITS, stratified_split
from macl.data.synthetic.palette import CLASSES
from macl.data.synthetic.render import check_size, default_min_pixels, load_or_render

PLACEHOLDER_ROOT = Path("<synthetic>")


class SyntheticAerial(MultiLabelDataset):
    """The synthetic aerial archive as a dataset with the same contract as UC Merced, DLRSD, ….

    Args:
        root: ``None`` (default) keeps everything in memory and writes nothing. A folder caches the
            rendered arrays there (see :func:`~macl.data.synthetic.render.load_or_render`) and reuses them
            when the parameters match.
        split: ``'train'``, ``'val'``, ``'test'`` (a seeded 60/20/20 stratified split), ``'trainval'`` or
            ``'all'``.
        transforms: called on each sample dict.
        num_images: tiles in the whole archive (all splits together).
        image_size: tile side in pixels, 32 to 512. A tile covers the same ground at every size (objects
            keep their size in tile units), only more finely sampled.
        seed: seed of the scenes and of the split.
        min_pixels: visible pixels a label needs; ``None`` scales it with the tile area
            (:func:`~macl.data.synthetic.render.default_min_pixels`).
        fractions: train/val/test shares of the split.
        **kwargs: the remaining arguments of :class:`~macl.data.base.MultiLabelDataset`, passed on unchanged.
            ``download`` and ``checksum`` are accepted for the common signature (there is nothing to
            download); ``split_seed`` is ``seed`` and ``split_dir`` goes unused (the split is drawn, not
            stored).

    Ids are ``syn00042`` (the tile index). ``paths`` are placeholders ``<synthetic>/syn00042`` that name no
    file: :meth:`read` takes the image from the rendered array instead, so ``on_bad='skip'`` (which
    re-reads files) is not offered. ``archive`` holds the rendered arrays of all splits;
    :meth:`class_map` gives the per-pixel classes an item's labels come from.
    """

    name: ClassVar[str] = "synthetic"
    CLASSES: ClassVar[tuple[str, ...]] = CLASSES

    def __init__(
        self,
        root: Path | str | None = None,
        split: str = "train",
        transforms: Transform | None = None,
        *,
        num_images: int = 2000,
        image_size: int = 64,
        seed: int = 0,
        min_pixels: int | None = None,
        fractions: Sequence[float] = DEFAULT_FRACTIONS,
        **kwargs: Any,
    ) -> None:
        if isinstance(num_images, bool) or not isinstance(num_images, (int, np.integer)):
            raise TypeError(f"num_images must be an int; got {type(num_images).__name__}")
        if num_images < 1:
            raise ValueError(f"num_images must be at least 1; got {num_images}")
        check_size(image_size)
        if min_pixels is not None and min_pixels < 1:
            raise ValueError(f"min_pixels must be at least 1; got {min_pixels}")
        if kwargs.get("on_bad", "raise") != "raise":
            raise ValueError("on_bad='skip' is not offered: the tiles are rendered in memory, there is no file to skip")
        self.num_images = int(num_images)
        self.image_size = int(image_size)
        self.seed = int(seed)
        self.min_pixels = default_min_pixels(self.image_size) if min_pixels is None else int(min_pixels)
        self.fractions = tuple(float(f) for f in fractions)
        self.cache_root = None if root is None else Path(root)
        super().__init__(PLACEHOLDER_ROOT if root is None else root, split, transforms, split_seed=seed, **kwargs)
        self._rows = np.array([int(i.removeprefix("syn")) for i in self.ids], dtype=np.int64)

    def _download(self, checksum: bool) -> None:
        """Nothing to fetch: the archive is rendered from its seed."""

    def _index(self) -> ArchiveIndex:
        self.archive = load_or_render(self.num_images, self.image_size, self.seed, self.min_pixels, self.cache_root)
        width = max(5, len(str(self.num_images - 1)))
        ids = [f"syn{i:0{width}d}" for i in range(self.num_images)]
        return ArchiveIndex(ids, [PLACEHOLDER_ROOT / i for i in ids], np.asarray(self.archive.labels), CLASSES)

    def _official_split(self, index: ArchiveIndex) -> dict[str, list[str]]:
        """A stratified split drawn from ``seed``: deterministic, so nothing needs to be stored on disk."""
        assignment = stratified_split(index.labels, self.fractions, self.seed)
        return {name: [index.ids[i] for i in np.flatnonzero(assignment == k)] for k, name in enumerate(SPLITS)}

    def read(self, index: int) -> torch.Tensor:
        """The (3, S, S) uint8 image of item ``index`` of this split (a copy: the archive is shared)."""
        return torch.from_numpy(np.array(self.archive.images[self._rows[index]]))

    def class_map(self, index: int) -> np.ndarray:
        """(S, S) uint8: the index in :attr:`classes` of what is visible at each pixel of item ``index``."""
        return np.array(self.archive.class_maps[self._rows[index]])
