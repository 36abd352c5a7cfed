"""Write a tiny fake WHDLD in the real layout: Images/whXXXX.jpg and ImagesPNG/whXXXX.png.

Eight 16×16 images and their masks, painted in exact WHDLD colours (RGB PNG), except wh0007, stored in the
index encoding (single-band grey, 1-6), and wh0008, a palette PNG shown in the official colours. Each mask
is a few class blocks; wh0001 has a 3-pixel sliver of water (3/256 ≈ 1.2 %), so it carries "water" at
min_pixel_fraction=0 but not at 0.05. EXPECTED lists the labels of every image at fraction 0. Seeded.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
from PIL import Image

HERE = Path(__file__).parent
COLOURS = {
    "building": (255, 0, 0),
    "road": (255, 255, 0),
    "pavement": (192, 192, 0),
    "vegetation": (0, 255, 0),
    "bare soil": (128, 128, 128),
    "water": (0, 0, 255),
}
INDEX = {name: k for k, name in enumerate(COLOURS, 1)}  # building 1, road 2, …, water 6
# Per image: the classes painted as horizontal bands (top to bottom), equal heights.
BANDS = {
    "wh0001": ("vegetation",),
    "wh0002": ("building", "road"),
    "wh0003": ("water", "vegetation", "bare soil"),
    "wh0004": ("pavement", "building", "road", "vegetation"),
    "wh0005": ("bare soil",),
    "wh0006": ("water", "building"),
    "wh0007": ("road", "pavement"),
    "wh0008": ("vegetation", "water"),
}
EXPECTED = {image_id: set(bands) for image_id, bands in BANDS.items()} | {"wh0001": {"vegetation", "water"}}


def paint(bands: tuple[str, ...]) -> np.ndarray:
    """(16, 16) class names as an object array: equal horizontal bands."""
    rows = np.array_split(np.arange(16), len(bands))
    names = np.empty((16, 16), dtype=object)
    for band, name in zip(rows, bands, strict=True):
        names[band] = name
    return names


def main() -> None:
    rng = np.random.default_rng(0)
    for folder in ("Images", "ImagesPNG"):
        shutil.rmtree(HERE / folder, ignore_errors=True)
        (HERE / folder).mkdir()
    for image_id, bands in BANDS.items():
        names = paint(bands)
        if image_id == "wh0001":
            names[0, :3] = "water"
        rgb = np.array([[COLOURS[n] for n in row] for row in names], dtype=np.uint8)
        noisy = np.clip(rgb.astype(int) // 2 + rng.integers(0, 40, rgb.shape), 0, 255).astype(np.uint8)
        Image.fromarray(noisy).save(HERE / "Images" / f"{image_id}.jpg", quality=90)
        mask = HERE / "ImagesPNG" / f"{image_id}.png"
        if image_id == "wh0007":
            Image.fromarray(np.vectorize(INDEX.get)(names).astype(np.uint8), mode="L").save(mask)
        elif image_id == "wh0008":
            Image.fromarray(rgb).quantize(palette=_palette()).save(mask)
        else:
            Image.fromarray(rgb).save(mask)


def _palette() -> Image.Image:
    """A palette image holding the six official colours (indices 0-5), for a palette-mode mask."""
    palette = Image.new("P", (1, 1))
    palette.putpalette([c for colour in COLOURS.values() for c in colour])
    return palette


if __name__ == "__main__":
    main()
