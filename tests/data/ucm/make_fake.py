"""Write the tiny fake UC Merced multi-label archive next to this script (seeded; rerun to regenerate).

The real layout and label-file format at 16×16: 5 scenes × 4 images, ``LandUse_Multilabeled.txt``
tab-separated with CRLF and the real 17-label header, and the AiTLAS split files (tab-separated, LF,
same header) with 12 / 4 / 4 rows. Formats are mixed as real copies are: official ``.tif`` in most scenes,
``beach`` as PNG and ``harbor`` as lossless WebP; among them a grayscale, a 16-bit, an RGBA, a palette and
an odd-sized (17 wide × 15 high) image, all of which a loader must convert rather than reject.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
from PIL import Image

HERE = Path(__file__).parent
SIZE = 16
PER_SCENE = 4
CLASSES = (
    "airplane",
    "bare-soil",
    "buildings",
    "cars",
    "chaparral",
    "court",
    "dock",
    "field",
    "grass",
    "mobile-home",
    "pavement",
    "sand",
    "sea",
    "ship",
    "tanks",
    "trees",
    "water",
)
# scene -> (file extension, labels its images usually carry)
SCENES = {
    "agricultural": (".tif", ("field", "trees")),
    "airplane": (".tif", ("airplane", "pavement", "cars")),
    "beach": (".png", ("sand", "sea")),
    "harbor": (".webp", ("ship", "dock", "water")),
    "tenniscourt": (".tif", ("court", "grass", "trees")),
}
# image -> the unusual form it is stored in
ODD = {
    "agricultural01": "L",
    "agricultural02": "I;16",
    "airplane03": "odd-size",
    "beach02": "RGBA",
    "tenniscourt01": "P",
}
SPLIT = {"train": 12, "val": 4, "test": 4}


def image(rng: np.random.Generator, form: str | None) -> Image.Image:
    if form == "L":
        return Image.fromarray(rng.integers(0, 256, (SIZE, SIZE), dtype=np.uint8))
    if form == "I;16":
        return Image.fromarray(rng.integers(0, 65536, (SIZE, SIZE), dtype=np.uint16))
    if form == "RGBA":
        return Image.fromarray(rng.integers(0, 256, (SIZE, SIZE, 4), dtype=np.uint8))
    rgb = Image.fromarray(rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8))
    if form == "P":
        return rgb.convert("P")
    if form == "odd-size":
        return rgb.resize((17, 15))
    return rgb


def labels(rng: np.random.Generator, usual: tuple[str, ...]) -> list[int]:
    """The scene's usual labels, each kept with probability 0.8 (at least one), plus the odd extra."""
    row = [int(name in usual and rng.random() < 0.8) for name in CLASSES]
    if not any(row):
        row[CLASSES.index(usual[0])] = 1
    if rng.random() < 0.3:
        row[int(rng.integers(len(CLASSES)))] = 1
    return row


def table(rows: list[tuple[str, list[int]]], newline: str) -> bytes:
    lines = ["IMAGE\\LABEL\t" + "\t".join(CLASSES)]
    lines += [name + "\t" + "\t".join(map(str, row)) for name, row in rows]
    return (newline.join(lines) + newline).encode()


def main() -> None:
    rng = np.random.default_rng(2018)
    for stale in ("UCMerced_LandUse", "splits"):
        shutil.rmtree(HERE / stale, ignore_errors=True)
    rows = []
    for scene, (ext, usual) in SCENES.items():
        folder = HERE / "UCMerced_LandUse" / "Images" / scene
        folder.mkdir(parents=True)
        for k in range(PER_SCENE):
            name = f"{scene}{k:02d}"
            save = {"lossless": True} if ext == ".webp" else {}
            image(rng, ODD.get(name)).save(folder / f"{name}{ext}", **save)
            rows.append((name, labels(rng, usual)))
    (HERE / "LandUse_Multilabeled.txt").write_bytes(table(rows, "\r\n"))
    (HERE / "splits").mkdir()
    order = rng.permutation(len(rows))
    start = 0
    for split, n in SPLIT.items():
        chosen = [rows[i] for i in order[start : start + n]]
        (HERE / "splits" / f"ucmercedmultilabel_{split}.csv").write_bytes(table(chosen, "\n"))
        start += n


if __name__ == "__main__":
    main()
