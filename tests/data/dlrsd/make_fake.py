"""Write the tiny fake DLRSD archive, in both of its layouts, next to this script (seeded; rerun to regenerate).

``original/``: the release of Shao et al. (2018): ``DLRSD/Images/<scene>/<scene>NN.png`` class-index masks
(1..17, 0 = unlabelled; palette and grayscale PNGs), ``DLRSD/multi-labels.xlsx`` (a header row, then one
row per image: name, 17 0/1 cells) and the RGB images in ``UCMerced_LandUse/Images/<scene>/<scene>NN.tif``.
``torchgeo/``: torchgeo's rehost: RGB ``DLRSD/Images/<scene>/<scene>NN.tif``, masks in ``DLRSD/Labels/``
and ``DLRSD/multilabels.csv`` (comma-separated, names spelled ``baresoil``, ``mobilehome``).

Both hold the same 3 scenes × 3 images at 16×16, and the multi-labels of both are the classes present
in the masks, so the two layouts (and labels derived from the masks alone) must load to the same labels.
``airplane01``'s mask has one ``tanks`` pixel (1/256 of the tile), to test ``min_pixel_fraction``. The
``.xlsx`` bytes change on every run (openpyxl stamps the save time); its cells do not.
"""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
from openpyxl import Workbook
from PIL import Image

HERE = Path(__file__).parent
SIZE = 16
PER_SCENE = 3
CLASSES = (
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
SCENES = {"agricultural": (8, 16), "airplane": (1, 11, 4), "harbor": (14, 7, 17, 3)}  # mask indices used


def mask(rng: np.random.Generator, indices: tuple[int, ...]) -> np.ndarray:
    """Vertical bands of the scene's classes (a random subset, at least two), a corner left unlabelled."""
    chosen = rng.choice(indices, size=int(rng.integers(2, len(indices) + 1)), replace=False)
    bands = np.sort(rng.choice(np.arange(1, SIZE), size=len(chosen) - 1, replace=False))
    m = np.zeros((SIZE, SIZE), dtype=np.uint8)
    for value, columns in zip(chosen, np.split(np.arange(SIZE), bands), strict=True):
        m[:, columns] = value
    m[:2, :2] = 0
    return m


def present(m: np.ndarray) -> list[int]:
    return [int((m == k + 1).any()) for k in range(len(CLASSES))]


def save_mask(m: np.ndarray, path: Path, palette: bool) -> None:
    img = Image.fromarray(m)
    if palette:  # as released: a palette PNG whose indices are the classes
        img = img.convert("P")
        img.putpalette(list(np.random.default_rng(0).integers(0, 256, 768, dtype=np.uint8)))
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)


def main() -> None:
    rng = np.random.default_rng(2018)
    for stale in ("original", "torchgeo"):
        shutil.rmtree(HERE / stale, ignore_errors=True)
    rows = []
    for scene, indices in SCENES.items():
        for k in range(PER_SCENE):
            name = f"{scene}{k:02d}"
            rgb = Image.fromarray(rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8))
            m = mask(rng, indices)
            if name == "airplane01":
                m[8, 8] = 15  # a single tanks pixel
            for rgb_dir, mask_dir in (
                ("original/UCMerced_LandUse/Images", "original/DLRSD/Images"),
                ("torchgeo/DLRSD/Images", "torchgeo/DLRSD/Labels"),
            ):
                (HERE / rgb_dir / scene).mkdir(parents=True, exist_ok=True)
                rgb.save(HERE / rgb_dir / scene / f"{name}.tif")
                save_mask(m, HERE / mask_dir / scene / f"{name}.png", palette=k != 2)
            rows.append([name, *present(m)])
    workbook = Workbook()
    sheet = workbook.active
    sheet.title = "multi-labels"
    sheet.append(["IMAGE\\LABEL", *CLASSES])
    for row in rows:
        sheet.append(row)
    workbook.save(HERE / "original/DLRSD/multi-labels.xlsx")
    with open(HERE / "torchgeo/DLRSD/multilabels.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["image", *(name.replace(" ", "") for name in CLASSES)])
        writer.writerows(rows)


if __name__ == "__main__":
    main()
