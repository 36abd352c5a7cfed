"""Write a tiny user archive: images in nested folders, other files, and label tables in every supported form.

Images (16×16): ``top.png``, ``tiles/north/n1.jpg``, ``tiles/north/n2.png``, ``tiles/south/s1.jpg``,
``tiles/south/s2.tif``, ``tiles/south/deep/s3.webp`` and ``extra/unlisted.png`` (named by no table, so
ignored), plus ``notes.txt`` (not an image). The tables describe the same six labelled images:

* ``labels.csv``            list of names, comma-separated, rows by stem, ``;`` between names, one empty list
* ``labels_multihot.tsv``   multi-hot, tab-separated, rows by relative path; label ``ship`` carried by none
* ``labels_multihot.csv``   multi-hot, semicolon-separated, CRLF, mixed stems and paths
* ``labels_split.csv``      list of names separated by ``|`` and spaces, with a ``split`` column

Seeded: running it again rewrites the same files.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
from PIL import Image

HERE = Path(__file__).parent
IMAGES = {
    "top.png": {"water"},
    "tiles/north/n1.jpg": {"trees", "water"},
    "tiles/north/n2.png": {"bare soil"},
    "tiles/south/s1.jpg": set(),
    "tiles/south/s2.tif": {"trees"},
    "tiles/south/deep/s3.webp": {"bare soil", "trees", "water"},
}
CLASSES = ("bare soil", "ship", "trees", "water")
SPLITS = {"top.png": "train", "tiles/north/n1.jpg": "train", "tiles/north/n2.png": "train",
          "tiles/south/s1.jpg": "val", "tiles/south/s2.tif": "test", "tiles/south/deep/s3.webp": "test"}  # fmt: skip


def stem(path: str) -> str:
    return Path(path).stem


def multihot(labels: set[str]) -> list[str]:
    return ["1" if name in labels else "0" for name in CLASSES]


def main() -> None:
    rng = np.random.default_rng(0)
    for folder in ("tiles", "extra"):
        shutil.rmtree(HERE / folder, ignore_errors=True)
    for rel in [*IMAGES, "extra/unlisted.png"]:
        (HERE / rel).parent.mkdir(parents=True, exist_ok=True)
        colour = rng.integers(0, 256, 3, dtype=np.uint8)
        Image.fromarray(np.broadcast_to(colour, (16, 16, 3)).copy()).save(HERE / rel)
    (HERE / "notes.txt").write_text("not an image: the archive ignores it\n")

    rows = [f"{stem(p)},{';'.join(sorted(labels))}" for p, labels in IMAGES.items()]
    (HERE / "labels.csv").write_text("\n".join(["image,labels", *rows]) + "\n")
    rows = ["\t".join([p, *multihot(labels)]) for p, labels in IMAGES.items()]
    (HERE / "labels_multihot.tsv").write_text("\n".join(["path\t" + "\t".join(CLASSES), *rows]) + "\n")
    rows = [";".join([p if k % 2 else stem(p), *multihot(labels)]) for k, (p, labels) in enumerate(IMAGES.items())]
    text = "\r\n".join(["file;" + ";".join(CLASSES), *rows]) + "\r\n"
    (HERE / "labels_multihot.csv").write_bytes(text.encode())
    rows = [f"{p},{' | '.join(sorted(labels))},{SPLITS[p]}" for p, labels in IMAGES.items()]
    (HERE / "labels_split.csv").write_text("\n".join(["image,tags,split", *rows]) + "\n")


if __name__ == "__main__":
    main()
