"""Decode any image file into an RGB ``uint8`` tensor, converting what is unusual rather than rejecting it.

Remote-sensing archives mix formats: 8-bit RGB JPEG/PNG/WebP, TIFF that may be grayscale, RGBA, palette
or 16-bit, and the odd image a few pixels off the nominal size. Every one of those is converted to a
3×H×W ``uint8`` tensor here (16-bit is rescaled by its own maximum bit depth, alpha is dropped,
grayscale is repeated); only a file that cannot be decoded at all raises :class:`CorruptImageError`,
naming the file. Resizing is left to the transforms.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from macl.data.errors import CorruptImageError

# Extensions tried when a label file names an image by stem (UC Merced's .tif may be stored as .webp/.png).
IMAGE_EXTENSIONS = (".tif", ".tiff", ".png", ".jpg", ".jpeg", ".webp", ".bmp")
ImageKey = tuple[str, str]  # (scene folder, file stem)


def read_image(path: Path | str) -> torch.Tensor:
    """The image at ``path`` as a contiguous (3, H, W) ``uint8`` tensor."""
    path = Path(path)
    try:
        with Image.open(path) as img:
            img.load()  # decode now: a truncated file fails here, inside the try
            array = _to_rgb8(img)
    except FileNotFoundError:
        raise
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as err:
        raise CorruptImageError(path, str(err) or type(err).__name__) from err
    return torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1)))


def _to_rgb8(img: Image.Image) -> np.ndarray:
    """(H, W, 3) uint8 from any PIL mode."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        data = np.asarray(img, dtype=np.float64)
        top = 65535.0 if data.max() > 255 else 255.0
        data = np.clip(data / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return np.repeat(data[..., None], 3, axis=2)
    if img.mode == "F":
        data = np.asarray(img, dtype=np.float64)
        lo, hi = float(np.nanmin(data)), float(np.nanmax(data))
        data = (data - lo) / (hi - lo if hi > lo else 1.0)
        return np.repeat((data * 255 + 0.5).astype(np.uint8)[..., None], 3, axis=2)
    return np.asarray(img.convert("RGB"), dtype=np.uint8)


def image_stem(name: str) -> str:
    """``name`` without an image extension, if it has one (label files list ``x`` or ``x.tif``)."""
    stem, ext = os.path.splitext(name)
    return stem if ext.lower() in IMAGE_EXTENSIONS else name


def scan_images(folder: Path) -> dict[ImageKey, Path]:
    """Every image file in ``folder/<scene>/``, keyed by (scene, stem).

    One directory listing per scene instead of a probe per extension per image. When one stem exists in
    several formats the earlier extension of :data:`IMAGE_EXTENSIONS` wins (the official ``.tif`` first).
    Hidden files (macOS ``._x.tif`` resource forks) are not images.
    """
    rank = {ext: k for k, ext in enumerate(IMAGE_EXTENSIONS)}
    found: dict[ImageKey, Path] = {}
    for scene in sorted(p for p in folder.iterdir() if p.is_dir()):
        for path in sorted(scene.iterdir()):
            ext = path.suffix.lower()
            if ext not in rank or path.name.startswith(".") or not path.is_file():
                continue
            key = (scene.name, path.stem)
            if key not in found or rank[ext] < rank[found[key].suffix.lower()]:
                found[key] = path
    return found
