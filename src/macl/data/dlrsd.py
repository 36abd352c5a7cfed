"""DLRSD (Shao, Yang, Zhou et al., Remote Sensing 2018): the 2100 UC Merced images, 17 revised labels.

Two layouts are recognised, the torchgeo one first::

    torchgeo rehost                              original release
    root/DLRSD/Images/<scene>/<scene>NN.tif RGB  root/DLRSD/Images/<scene>/<scene>NN.png  masks 1..17, 0 = none
    root/DLRSD/multilabels.csv                   root/DLRSD/multi-labels.xlsx             (optional)
                                                 root/UCMerced_LandUse/Images/<scene>/…   the RGB images

In the original layout the labels come from the spreadsheet; without it they are derived from the masks (a
label is present when its index covers at least ``min_pixel_fraction`` of the mask, and at least one
pixel). Label columns are matched to the 17 class names in mask-index order whatever their spelling
(``bare soil``, ``bare-soil``, ``baresoil``) or order, so ``classes`` is the same for every layout. As for
UC Merced, a label row without its image and an image without labels are errors naming them. DLRSD has no
official split: ``train``/``val``/``test`` are the base class's stored seeded split.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import numpy as np
from PIL import Image, UnidentifiedImageError

from macl.data.base import ArchiveIndex
from macl.data.download import download_and_extract, expected_checksum
from macl.data.errors import CorruptImageError, DatasetNotFoundError, LabelFileError
from macl.data.images import scan_images
from macl.data.masks import MaskLabelledDataset
from macl.data.tables import MultiHotTable
from macl.data.ucm import UCMerced, match_images

DLRSD_CLASSES = (
    "airplane",
    "bare soil",
    "buildings",
    "cars",
    "chaparral",
    "court",
    "dock",
    "field",
    "grass",
    "mobile home",
    "pavement",
    "sand",
    "sea",
    "ship",
    "tanks",
    "trees",
    "water",
)
_MASK_MODES = ("L", "P", "I", "I;16")  # single-channel modes whose values are the class indices


class DLRSD(MaskLabelledDataset):
    """DLRSD multi-labels over the UC Merced images; see the module docstring for layouts and options.

    Args:
        root, split, transforms, min_pixel_fraction, **kwargs: as in
            :class:`~macl.data.masks.MaskLabelledDataset` (``min_pixel_fraction`` applies only when the
            labels are derived from masks).
    """

    name = "DLRSD"
    CLASSES: ClassVar[tuple[str, ...]] = DLRSD_CLASSES
    IMAGES_DIR: ClassVar[str] = "DLRSD/Images"  # masks in the original layout, RGB images in torchgeo's
    XLSX_FILE: ClassVar[str] = "DLRSD/multi-labels.xlsx"
    CSV_FILE: ClassVar[str] = "DLRSD/multilabels.csv"
    label_source: Path | None = None  # the csv, the xlsx or the mask folder, once indexed

    # torchgeo's rehost (torchgeo layout), pinned to a revision; checksum as published by torchgeo.
    URL: ClassVar[str] = (
        "https://hf.co/datasets/calebrob6/dlrsd/resolve/dcd622dd05f327cd0fd10951ad6cd7ba52d0e832/DLRSD.zip"
    )
    CHECKSUM: ClassVar[str | None] = "sha256:cb49d850855a7622c51b5f09dbdf98952e064b661f35cb105e8749513e75796f"

    def _index(self) -> ArchiveIndex:
        images = self.root / self.IMAGES_DIR
        if (self.root / self.CSV_FILE).is_file():
            return self._index_table(MultiHotTable.read(self.root / self.CSV_FILE), images)
        xlsx = self.root / self.XLSX_FILE
        masks = [p for p in scan_images(images).values() if p.suffix.lower() == ".png"] if images.is_dir() else []
        if not xlsx.is_file() and not masks:
            raise DatasetNotFoundError(
                self.name,
                self.root,
                f"torchgeo's {self.IMAGES_DIR}/<scene>/<scene>NN.tif with {self.CSV_FILE}, or the original "
                f"{self.IMAGES_DIR}/<scene>/<scene>NN.png masks and/or {self.XLSX_FILE} with the RGB images in "
                f"{UCMerced.IMAGES_DIR}/<scene>/",
                downloadable=True,
            )
        rgb = self.root / UCMerced.IMAGES_DIR
        if not rgb.is_dir():
            raise DatasetNotFoundError(
                self.name,
                self.root,
                f"the UC Merced RGB images in {UCMerced.IMAGES_DIR}/<scene>/<scene>NN.tif beside {self.IMAGES_DIR} "
                "(the original DLRSD release holds only masks and labels)",
            )
        if xlsx.is_file():
            return self._index_table(MultiHotTable.read_xlsx(xlsx), rgb)
        return self._index_masks(masks, images, rgb)

    def _index_table(self, table: MultiHotTable, folder: Path) -> ArchiveIndex:
        self.label_source = table.path
        ids, paths = match_images(table.ids, scan_images(folder), folder, table.error, table.path)
        return ArchiveIndex(ids, paths, canonical_columns(table, self.CLASSES), self.CLASSES)

    def _index_masks(self, masks: list[Path], masks_dir: Path, folder: Path) -> ArchiveIndex:
        self.label_source = masks_dir
        labels = np.stack([mask_labels(path, len(self.CLASSES), self.min_pixel_fraction) for path in masks])
        ids, paths = match_images(
            [path.stem for path in masks],
            scan_images(folder),
            folder,
            lambda row, problem: LabelFileError(masks[row], problem),
            masks_dir,
        )
        return ArchiveIndex(ids, paths, labels, self.CLASSES)

    def _download(self, checksum: bool) -> None:
        """Fetch torchgeo's rehost unless a DLRSD folder (either layout) is already there."""
        if not (self.root / "DLRSD").is_dir():
            download_and_extract(self.URL, self.root, checksum=expected_checksum(self.URL, self.CHECKSUM, checksum))


def canonical_columns(table: MultiHotTable, classes: tuple[str, ...]) -> np.ndarray:
    """``table.labels`` with its columns put in the order of ``classes``, matching names loosely.

    Releases spell the same label ``bare soil``, ``bare-soil`` or ``baresoil``; case, spaces, hyphens and
    underscores are ignored, and every class must appear exactly once.
    """
    wanted = {_loose(name): k for k, name in enumerate(classes)}
    found = [_loose(name) for name in table.classes]
    if sorted(found) != sorted(wanted):
        raise LabelFileError(
            table.path,
            f"label columns {list(table.classes)}; expected these {len(classes)} (any order, spelling may vary "
            f"in case, spaces and hyphens): {list(classes)}",
            table.header_line,
        )
    labels = np.zeros((len(table.ids), len(classes)), dtype=np.uint8)
    labels[:, [wanted[name] for name in found]] = table.labels
    return labels


def mask_labels(path: Path, n_classes: int, min_fraction: float = 0.0) -> np.ndarray:
    """(C,) 0/1: the classes whose index (1..C; 0 = unlabelled) covers ``min_fraction`` of the mask."""
    try:
        with Image.open(path) as img:
            img.load()
            mode, mask = img.mode, np.asarray(img)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise CorruptImageError(path, str(err) or type(err).__name__) from err
    if mode not in _MASK_MODES:
        raise LabelFileError(path, f"mask has mode {mode}; expected one channel of class indices 1..{n_classes}")
    if mask.min() < 0 or mask.max() > n_classes:
        bad = int(mask.max() if mask.max() > n_classes else mask.min())
        raise LabelFileError(path, f"pixel value {bad} is not a class index (0 = unlabelled, 1..{n_classes})")
    counts = np.bincount(mask.ravel().astype(np.int64), minlength=n_classes + 1)[1:]
    return ((counts > 0) & (counts >= min_fraction * mask.size)).astype(np.uint8)


def _loose(name: str) -> str:
    return "".join(ch for ch in name.lower() if ch.isalnum())
