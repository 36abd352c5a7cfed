"""WHDLD (Shao et al., JSTARS 2020): 4940 RGB images 256×256 with dense land-cover masks, 6 classes.

::

    root/Images/whXXXX.jpg       the images
    root/ImagesPNG/whXXXX.png    one mask per image

An image's labels are the classes present in its mask. ``min_pixel_fraction`` (default 0: any pixel)
raises the bar to a share of the mask's pixels, to ignore slivers that a retrieval user would not call
"present". Masks come in either of two encodings of the official code, both accepted:

* colour (RGB, or a palette image shown in those colours): building (255, 0, 0), road (255, 255, 0),
  pavement (192, 192, 0), vegetation (0, 255, 0), bare soil (128, 128, 128), water (0, 0, 255);
* index (single-band grey): building 1, road 2, pavement 3, vegetation 4, bare soil 5, water 6.

A pixel of any other colour or value raises :class:`LabelFileError` naming the mask and the colour: a
mask that does not follow the code would otherwise turn into wrong labels without a trace.

Scanning 4940 masks takes a while, so the per-image pixel count of every class is stored once in
``root/macl_whdld_pixel_counts.csv`` (written atomically) and read back afterwards; labels for any
``min_pixel_fraction`` derive from it. Images not in the cache are scanned and added, images no longer
in ``Images/`` dropped; an edited mask is not noticed: delete the cache after editing masks.

WHDLD has no official split: the base class's seeded split is used.
"""

from __future__ import annotations

import csv
import io
import logging
from pathlib import Path
from typing import ClassVar

import numpy as np
from PIL import Image, UnidentifiedImageError

from macl.data.base import ArchiveIndex
from macl.data.download import download_and_extract, expected_checksum
from macl.data.errors import CorruptImageError, DatasetNotFoundError, LabelFileError
from macl.data.images import IMAGE_EXTENSIONS
from macl.data.masks import MaskLabelledDataset, labels_from_counts
from macl.fileio import atomic_write

log = logging.getLogger(__name__)

CLASSES = ("bare soil", "building", "pavement", "road", "vegetation", "water")
COLOURS: dict[tuple[int, int, int], str] = {
    (255, 0, 0): "building",
    (255, 255, 0): "road",
    (192, 192, 0): "pavement",
    (0, 255, 0): "vegetation",
    (128, 128, 128): "bare soil",
    (0, 0, 255): "water",
}
INDEX_VALUES: dict[int, str] = {1: "building", 2: "road", 3: "pavement", 4: "vegetation", 5: "bare soil", 6: "water"}
_SINGLE_BAND = ("L", "I", "I;16", "I;16B", "I;16L")
# Pixel code → column of CLASSES, per encoding; a colour's code is 0xRRGGBB.
_COLUMNS = {
    "colour": {(r << 16) | (g << 8) | b: CLASSES.index(name) for (r, g, b), name in COLOURS.items()},
    "index": {value: CLASSES.index(name) for value, name in INDEX_VALUES.items()},
}


def _decode_mask(path: Path) -> tuple[np.ndarray, str]:
    """The mask's pixels as integer codes (0xRRGGBB, or the grey value) and the encoding they follow."""
    try:
        with Image.open(path) as img:
            img.load()
            if img.mode in _SINGLE_BAND:
                return np.asarray(img).astype(np.int64), "index"
            rgb = np.asarray(img.convert("RGB")).astype(np.int64)
    except FileNotFoundError:
        raise
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as err:
        raise CorruptImageError(path, str(err) or type(err).__name__) from err
    return (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2], "colour"


def mask_pixel_counts(path: Path) -> np.ndarray:
    """Pixels of each class (in :data:`CLASSES` order) in the mask at ``path``; (6,) int64."""
    codes, encoding = _decode_mask(path)
    columns = _COLUMNS[encoding]
    values, counts = np.unique(codes, return_counts=True)
    out = np.zeros(len(CLASSES), dtype=np.int64)
    for value, count in zip(values.tolist(), counts.tolist(), strict=True):
        if value not in columns:
            code: dict[tuple[int, int, int], str] | dict[int, str]  # the code of this encoding
            if encoding == "colour":
                shown, code = f"colour {(value >> 16, (value >> 8) & 255, value & 255)}", COLOURS
            else:
                shown, code = f"value {value}", INDEX_VALUES
            raise LabelFileError(path, f"{count} pixels have {shown}, which is not in the WHDLD {encoding} code {code}")
        out[columns[value]] += count
    return out


class WHDLD(MaskLabelledDataset):
    """WHDLD with labels derived from its masks (module docstring).

    Args:
        root, split, transforms, min_pixel_fraction, **kwargs: as in
            :class:`~macl.data.masks.MaskLabelledDataset`.
    """

    name = "WHDLD"
    IMAGES_DIR: ClassVar[str] = "Images"
    MASKS_DIR: ClassVar[str] = "ImagesPNG"
    CACHE_FILE: ClassVar[str] = "macl_whdld_pixel_counts.csv"

    # The authors share WHDLD through cloud-drive links on their page, not a URL plain HTTP can fetch,
    # so there is no default URL. Set URL to a zip of the layout above (a mirror) to use download=True.
    SOURCE: ClassVar[str] = "the WHDLD page of Zhenfeng Shao's group, Wuhan University (Shao et al., JSTARS 2020)"
    URL: ClassVar[str | None] = None
    CHECKSUM: ClassVar[str | None] = None  # unverified: no checksum is published

    def _index(self) -> ArchiveIndex:
        images_dir, masks_dir = self.root / self.IMAGES_DIR, self.root / self.MASKS_DIR
        if not images_dir.is_dir() or not masks_dir.is_dir():
            raise DatasetNotFoundError(self.name, self.root, self._expected(), downloadable=self.URL is not None)
        paths = sorted(
            p for p in images_dir.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".")
        )
        if not paths:
            raise DatasetNotFoundError(self.name, self.root, self._expected() + f"; {images_dir} holds no image")
        ids = [p.stem for p in paths]
        counts = self._pixel_counts(ids, masks_dir)
        return ArchiveIndex(ids, paths, labels_from_counts(counts, self.min_pixel_fraction), CLASSES)

    def _pixel_counts(self, ids: list[str], masks_dir: Path) -> np.ndarray:
        """(N, 6) pixel counts per class: from the cache, scanning only the masks it does not cover."""
        cache = self.root / self.CACHE_FILE
        counts = _read_counts(cache) if cache.is_file() else {}
        missing = [i for i in ids if i not in counts]
        if missing or counts.keys() != set(ids):
            log.info("deriving WHDLD labels from %d masks (cached in %s)", len(missing), cache)
            counts = {i: counts[i] for i in ids if i in counts}
            counts.update({i: mask_pixel_counts(self._mask(masks_dir, i)) for i in missing})
            _write_counts(cache, ids, np.stack([counts[i] for i in ids]))
        return np.stack([counts[i] for i in ids])

    def _mask(self, masks_dir: Path, image_id: str) -> Path:
        path = masks_dir / f"{image_id}.png"
        if not path.is_file():
            raise LabelFileError(path, f"the mask of image {image_id!r} is missing")
        return path

    def _download(self, checksum: bool) -> None:
        """Fetch and extract the archive from :attr:`URL` unless the layout is already in ``root``."""
        if (self.root / self.IMAGES_DIR).is_dir() and (self.root / self.MASKS_DIR).is_dir():
            return
        if self.URL is None:
            raise DatasetNotFoundError(
                self.name, self.root, f"{self._expected()}; there is no direct download, get it from {self.SOURCE}"
            )
        download_and_extract(self.URL, self.root, checksum=expected_checksum(self.URL, self.CHECKSUM, checksum))

    def _expected(self) -> str:
        return f"{self.IMAGES_DIR}/whXXXX.jpg and {self.MASKS_DIR}/whXXXX.png"


def _read_counts(path: Path) -> dict[str, np.ndarray]:
    """The cached counts by image id; none if the file is not a cache in this code's format."""
    with open(path, newline="") as fh:
        rows = list(csv.reader(fh))
    if not rows or rows[0] != ["id", *CLASSES] or any(len(row) != len(CLASSES) + 1 for row in rows[1:]):
        return {}
    try:
        return {row[0]: np.array([int(v) for v in row[1:]], dtype=np.int64) for row in rows[1:]}
    except ValueError:
        return {}


def _write_counts(path: Path, ids: list[str], counts: np.ndarray) -> None:
    """Write the cache atomically: a killed scan leaves no half-written file that would be trusted."""
    text = io.StringIO(newline="")
    writer = csv.writer(text)
    writer.writerow(["id", *CLASSES])
    writer.writerows([image_id, *row] for image_id, row in zip(ids, counts.tolist(), strict=True))
    with atomic_write(path) as fh:
        fh.write(text.getvalue().encode())
