"""Archives whose labels come from segmentation masks: a class is a label when it covers enough pixels.

DLRSD (when it ships masks rather than a label table) and WHDLD derive an image's multi-label vector
from its mask. Both take the same option, ``min_pixel_fraction``, checked once here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from macl.data.base import MultiLabelDataset, Transform


def labels_from_counts(counts: np.ndarray, min_pixel_fraction: float) -> np.ndarray:
    """(N, C) 0/1 from per-class pixel counts (N, C): a class is present when it covers at least
    ``min_pixel_fraction`` of its mask (and at least one pixel)."""
    total = counts.sum(1, keepdims=True)
    return ((counts > 0) & (counts >= min_pixel_fraction * total)).astype(np.uint8)


class MaskLabelledDataset(MultiLabelDataset):
    """A :class:`MultiLabelDataset` whose labels are derived from masks.

    Args:
        root, split, transforms: as in :class:`~macl.data.base.MultiLabelDataset`.
        min_pixel_fraction: the share of a mask's pixels a class must cover to be a label, in [0, 1];
            0 (default) counts any pixel. Small objects (cars, a ship) cover well under 1 % of a
            256×256 tile, so raise it with care.
        **kwargs: the remaining arguments of :class:`~macl.data.base.MultiLabelDataset` (``download``,
            ``checksum``, ``on_bad``, ``split_seed``, ``split_dir``), passed on unchanged.
    """

    def __init__(
        self,
        root: Path | str,
        split: str = "train",
        transforms: Transform | None = None,
        *,
        min_pixel_fraction: float = 0.0,
        **kwargs: Any,
    ) -> None:
        if not 0.0 <= min_pixel_fraction <= 1.0:
            raise ValueError(f"min_pixel_fraction must be in [0, 1]; got {min_pixel_fraction}")
        self.min_pixel_fraction = min_pixel_fraction
        super().__init__(root, split, transforms, **kwargs)
