"""UC Merced multi-label (Chaudhuri, Demir, Chaudhuri & Bruzzone, TGRS 2018) in its distributed layout.

::

    root/UCMerced_LandUse/Images/<scene>/<scene>NN.tif   2100 images, 21 scenes × 100 (44 not 256×256)
    root/LandUse_Multilabeled.txt                        tab-separated, CRLF: IMAGE\\LABEL, 17 labels
    root/splits/ucmercedmultilabel_{train,val,test}.csv  optional: the AiTLAS split, same format

Images are looked up by stem, so a copy re-encoded to another format (lossless WebP, PNG) loads as the
official ``.tif`` does. Label file and image folder must agree exactly: a row whose image is missing and an
image without a row are both errors naming the file (a partly extracted archive or a mismatched label file
would otherwise silently shrink the dataset and shift every number computed on it). With the AiTLAS split
files present, ``train``/``val``/``test`` follow them; without, the base class's seeded split is used.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

from torchvision.datasets.utils import extract_archive

from macl.data.base import ArchiveIndex, MultiLabelDataset
from macl.data.download import download, download_and_extract, expected_checksum
from macl.data.errors import DatasetNotFoundError, LabelFileError
from macl.data.images import IMAGE_EXTENSIONS, ImageKey, image_stem, scan_images
from macl.data.splits import SPLITS
from macl.data.tables import MultiHotTable

log = logging.getLogger(__name__)


def scene_of(image_id: str) -> str | None:
    """The scene of a UC Merced name (``harbor07`` → ``harbor``), or None if it is not ``<scene>NN``."""
    return image_id[:-2] if len(image_id) > 2 and image_id[-2:].isdigit() else None


def match_images(
    names: list[str],
    images: dict[ImageKey, Path],
    folder: Path,
    row_error: Callable[[int, str], Exception],
    source: Path,
) -> tuple[list[str], list[Path]]:
    """The id (stem) and image file of each label row, in order; every row needs an image, every image a row.

    ``row_error(row, problem)`` builds the error for a bad row (so it can name the row's line);
    ``source`` is the label file named when an image has no row.
    """
    unclaimed = dict(images)
    ids = [image_stem(name) for name in names]
    paths = []
    for row, image_id in enumerate(ids):
        scene = scene_of(image_id)
        if scene is None:
            raise row_error(row, f"image name {image_id!r} is not <scene>NN (such as harbor07)")
        path = unclaimed.pop((scene, image_id), None)
        if path is None:
            tried = "/".join(ext.lstrip(".") for ext in IMAGE_EXTENSIONS)
            raise row_error(row, f"no image {folder / scene / image_id}.<{tried}> for {image_id!r}")
        paths.append(path)
    if unclaimed:
        orphan = next(iter(unclaimed.values()))
        raise LabelFileError(
            source, f"{len(unclaimed)} image(s) are not listed here, such as {orphan}; list them or move them away"
        )
    return ids, paths


class UCMerced(MultiLabelDataset):
    """UC Merced Land Use with the 17 multi-labels of Chaudhuri et al. (2018); see the module docstring.

    ``classes`` are the label file's header names (``airplane``, ``bare-soil``, …, ``water``).
    """

    name = "UC Merced multi-label"
    IMAGES_DIR: ClassVar[str] = "UCMerced_LandUse/Images"
    LABEL_FILE: ClassVar[str] = "LandUse_Multilabeled.txt"
    SPLIT_FILE: ClassVar[str] = "splits/ucmercedmultilabel_{split}.csv"

    # The UC Merced vision lab's archive; torchgeo publishes the same MD5 for it and for its mirror
    # https://hf.co/datasets/torchgeo/ucmerced/resolve/main/UCMerced_LandUse.zip.
    IMAGES_URL: ClassVar[str] = "http://weegee.vision.ucmerced.edu/datasets/UCMerced_LandUse.zip"
    IMAGES_CHECKSUM: ClassVar[str | None] = "md5:5b7ec56793786b6dc8a908e8854ac0e4"
    # The authors' page (bigearth.eu/datasets) links this zip holding LandUse_Multilabeled.txt.
    LABELS_URL: ClassVar[str] = "http://bigearth.eu/assets/docs/multilabels.zip"
    LABELS_CHECKSUM: ClassVar[str | None] = None  # unverified: no checksum is published for it

    @property
    def label_file(self) -> Path:
        return self.root / self.LABEL_FILE

    def _index(self) -> ArchiveIndex:
        folder = self.root / self.IMAGES_DIR
        missing = [str(p.relative_to(self.root)) for p in (folder, self.label_file) if not p.exists()]
        if missing:
            raise DatasetNotFoundError(
                self.name,
                self.root,
                f"{self.IMAGES_DIR}/<scene>/<scene>NN.tif (any image extension) and {self.LABEL_FILE}, optionally "
                f"{self.SPLIT_FILE.format(split='{train,val,test}')}; missing: {', '.join(missing)}",
                downloadable=True,
            )
        table = MultiHotTable.read(self.label_file)
        ids, paths = match_images(table.ids, scan_images(folder), folder, table.error, table.path)
        return ArchiveIndex(ids, paths, table.labels, table.classes)

    def _official_split(self, index: ArchiveIndex) -> dict[str, list[str]] | None:
        """The AiTLAS split if all three files are there; each row must match the label file's."""
        files = {split: self.root / self.SPLIT_FILE.format(split=split) for split in SPLITS}
        present = [split for split, path in files.items() if path.is_file()]
        if not present:
            return None
        if len(present) < len(SPLITS):
            absent = [str(path) for split, path in files.items() if split not in present]
            raise FileNotFoundError(f"incomplete official split: {', '.join(absent)} missing (or remove all three)")
        labels = dict(zip(index.ids, index.labels.tolist(), strict=True))
        owner: dict[str, Path] = {}
        members = {}
        for split, path in files.items():
            table = MultiHotTable.read(path)
            _check_split_table(table, index.classes, labels, owner, self.label_file)
            members[split] = [image_stem(name) for name in table.ids]
        if len(owner) < len(labels):
            log.warning("%d images of %s are in no split file", len(labels) - len(owner), self.label_file)
        return members

    def _download(self, checksum: bool) -> None:
        """Fetch the images (UC Merced vision lab) and the multi-labels (the authors' page) if absent."""
        if not (self.root / self.IMAGES_DIR).is_dir():
            expected = expected_checksum(self.IMAGES_URL, self.IMAGES_CHECKSUM, checksum)
            download_and_extract(self.IMAGES_URL, self.root, checksum=expected)
        if not self.label_file.is_file():
            expected = expected_checksum(self.LABELS_URL, self.LABELS_CHECKSUM, checksum)
            archive = download(self.LABELS_URL, self.root, checksum=expected)
            _install_label_file(archive, self.label_file)


def _check_split_table(
    table: MultiHotTable,
    classes: tuple[str, ...],
    labels: dict[str, list[int]],
    owner: dict[str, Path],
    label_file: Path,
) -> None:
    """A split file must have the label file's columns and rows, each image in one split only."""
    if table.classes != classes:
        problem = f"label columns {table.classes} differ from {label_file}'s {classes}"
        raise LabelFileError(table.path, problem, table.header_line)
    for row, image_id in enumerate(map(image_stem, table.ids)):
        if image_id not in labels:
            raise table.error(row, f"image {image_id!r} is not in {label_file}")
        if image_id in owner:
            raise table.error(row, f"image {image_id!r} is also in {owner[image_id]}")
        if table.labels[row].tolist() != labels[image_id]:
            raise table.error(row, f"the labels of {image_id!r} differ from those in {label_file}")
        owner[image_id] = table.path


def _install_label_file(download_path: Path, target: Path) -> None:
    """Put the label file at ``target``, whether the host served it bare or inside an archive."""
    if download_path.suffix.lower() == ".txt":
        os.replace(download_path, target)
        return
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        extract_archive(str(download_path), tmp)
        found = sorted(Path(tmp).rglob(target.name))
        if not found:
            raise FileNotFoundError(f"{download_path} holds no {target.name}")
        os.replace(found[0], target)
