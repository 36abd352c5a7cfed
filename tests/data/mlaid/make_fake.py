"""Write a tiny fake ML-AID in the real layout: images_tr/<scene>/*.jpg, images_test/<scene>/*.jpg, multilabel.csv.

12 training and 3 test JPEGs of 16×16 in three AID scene folders; multilabel.csv names some images with
``.jpg`` and some without (the loader accepts both) and has the 17 ML-AID label columns. Seeded: running
it again rewrites the same files.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
from PIL import Image

HERE = Path(__file__).parent
CLASSES = (
    "airplane", "bare-soil", "buildings", "cars", "chaparral", "court", "dock", "field", "grass",
    "mobile-home", "pavement", "sand", "sea", "ship", "tanks", "trees", "water",
)  # fmt: skip
SCENES = ("airport", "beach", "port")
PER_SCENE = {"images_tr": 4, "images_test": 1}  # AID numbers images per scene from 1: airport_1, …


def main() -> None:
    rng = np.random.default_rng(0)
    rows = []
    for folder, count in PER_SCENE.items():
        shutil.rmtree(HERE / folder, ignore_errors=True)
        for scene in SCENES:
            (HERE / folder / scene).mkdir(parents=True)
            offset = 0 if folder == "images_tr" else PER_SCENE["images_tr"]
            for k in range(offset + 1, offset + count + 1):
                name = f"{scene}_{k}"
                pixels = np.broadcast_to(rng.integers(0, 256, 3, dtype=np.uint8), (16, 16, 3))
                Image.fromarray(pixels).save(HERE / folder / scene / f"{name}.jpg", quality=90)
                labels = (rng.random(len(CLASSES)) < 0.3).astype(int)
                rows.append((f"{name}.jpg" if k % 3 == 0 else name, labels))
    lines = ["IMAGE\\LABEL," + ",".join(CLASSES)]
    lines += [name + "," + ",".join(map(str, labels)) for name, labels in rows]
    (HERE / "multilabel.csv").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
