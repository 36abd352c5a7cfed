"""ML-AID (Hua, Mou & Zhu, TGRS 2020): 3000 AID aerial images, 600×600, with 17 object labels.

::

    root/images_tr/<scene>/<name>.jpg     2400 training images, in AID's 30 scene folders
    root/images_test/<scene>/<name>.jpg   600 test images
    root/multilabel.csv                   image name (with or without .jpg), then 17 0/1 label columns

The official split is the two folders: ``test`` is ``images_test``. The archive has no validation set,
so ``val`` is carved out of ``images_tr``: a seeded, label-stratified 20 % (:data:`VAL_FRACTION`) of it,
and ``train`` is the other 80 %. Hyper-parameters are then tuned on ``val`` and the 600 test images are
touched only for the final numbers. The carved split is stored in ``root/macl_split_seed<S>.json`` on
first use (as the seeded split of archives without an official one is), so every run and machine sees
the same one. ``trainval`` is all of ``images_tr``.

Label file and folders must agree exactly: a row whose image is in neither folder, and an image that has
no row, are errors naming the file (a partly extracted archive would otherwise silently shrink the
dataset).
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from macl.data.base import ArchiveIndex, MultiLabelDataset
from macl.data.download import download_and_extract, expected_checksum
from macl.data.errors import DatasetNotFoundError, LabelFileError
from macl.data.images import image_stem, scan_images
from macl.data.splits import load_or_create_split
from macl.data.tables import MultiHotTable

VAL_FRACTION = 0.2


class MLAID(MultiLabelDataset):
    """ML-AID with its official train/test folders and a stored, seeded validation carve (module docstring).

    ``classes`` are the label file's header names (``airplane``, ``bare-soil``, …, ``water``).
    """

    name = "ML-AID"
    FOLDERS: ClassVar[dict[str, str]] = {"train": "images_tr", "test": "images_test"}
    LABEL_FILE: ClassVar[str] = "multilabel.csv"

    # The authors publish the archive only as a Google Drive folder, which plain HTTP cannot fetch; so there
    # is no default URL. Set URL to a zip of the layout above (a mirror) to use download=True.
    SOURCE: ClassVar[str] = "the Google Drive folder linked from https://github.com/Hua-YS/AID-Multilabel-Dataset"
    URL: ClassVar[str | None] = None
    CHECKSUM: ClassVar[str | None] = None  # unverified: no checksum is published

    _folder_ids: dict[str, list[str]]  # image ids per official folder, set by _index

    def _index(self) -> ArchiveIndex:
        self._require_layout()
        folders = {split: self._scan(self.root / folder) for split, folder in self.FOLDERS.items()}
        shared = folders["train"].keys() & folders["test"].keys()
        if shared:
            name = min(shared)
            raise ValueError(f"image {name!r} is in both {folders['train'][name]} and {folders['test'][name]}")
        table = MultiHotTable.read(self.root / self.LABEL_FILE)
        unclaimed = {**folders["train"], **folders["test"]}
        ids = [image_stem(name) for name in table.ids]
        paths = []
        for row, image_id in enumerate(ids):
            path = unclaimed.pop(image_id, None)
            if path is None:
                where = "has a row already" if image_id in ids[:row] else "is in neither image folder"
                raise table.error(row, f"image {image_id!r} {where}")
            paths.append(path)
        if unclaimed:
            orphan = next(iter(unclaimed.values()))
            raise LabelFileError(table.path, f"{len(unclaimed)} image(s) have no row here, such as {orphan}")
        self._folder_ids = {split: [i for i in ids if i in found] for split, found in folders.items()}
        return ArchiveIndex(ids, paths, table.labels, table.classes)

    def _official_split(self, index: ArchiveIndex) -> dict[str, list[str]]:
        """``test`` = images_test; ``train``/``val`` = the stored stratified carve of images_tr."""
        train_ids = self._folder_ids["train"]
        row = {image_id: k for k, image_id in enumerate(index.ids)}
        labels = index.labels[[row[i] for i in train_ids]]
        # A zero test fraction never draws a test image: some split always has positive demand left.
        carve = load_or_create_split(
            self.split_dir,
            train_ids,
            labels,
            seed=self.split_seed,
            fractions=(1 - VAL_FRACTION, VAL_FRACTION, 0.0),
            name="mlaid_val",
        )
        return {"train": carve["train"], "val": carve["val"], "test": self._folder_ids["test"]}

    def _download(self, checksum: bool) -> None:
        """Fetch and extract the archive from :attr:`URL` unless the layout is already in ``root``."""
        if self._layout_present():
            return
        if self.URL is None:
            raise DatasetNotFoundError(
                self.name, self.root, f"{self._expected()}; there is no direct download, get it from {self.SOURCE}"
            )
        download_and_extract(self.URL, self.root, checksum=expected_checksum(self.URL, self.CHECKSUM, checksum))

    def _scan(self, folder: Path) -> dict[str, Path]:
        """The images of one split folder by stem (AID names carry their scene: ``airport_1``)."""
        found: dict[str, Path] = {}
        for (_, stem), path in scan_images(folder).items():
            if stem in found:
                raise ValueError(f"two images share the name {stem!r}: {found[stem]} and {path}")
            found[stem] = path
        return found

    def _layout_present(self) -> bool:
        return all((self.root / p).exists() for p in (*self.FOLDERS.values(), self.LABEL_FILE))

    def _expected(self) -> str:
        train, test = self.FOLDERS["train"], self.FOLDERS["test"]
        return f"{train}/<scene>/*.jpg, {test}/<scene>/*.jpg and {self.LABEL_FILE}"

    def _require_layout(self) -> None:
        if not self._layout_present():
            raise DatasetNotFoundError(self.name, self.root, self._expected(), downloadable=self.URL is not None)
