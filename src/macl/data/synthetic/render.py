"""Tiles and archives: render one tile from ``(seed, index)``, derive its labels, and render, cache and
share whole archives."""

from __future__ import annotations

import json
import weakref
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from macl.data.synthetic.canvas import Canvas
from macl.data.synthetic.palette import CLASSES
from macl.data.synthetic.scenes import pick_scene
from macl.fileio import atomic_write

# Bump when rendering changes: a cached archive written by another version is rendered again.
RENDER_VERSION = 1
MIN_IMAGE_SIZE, MAX_IMAGE_SIZE = 32, 512


def default_min_pixels(image_size: int) -> int:
    """Visible pixels a label needs: 0.05 % of the tile, at least 2 (2 px at 64 px, 33 px at 256 px).

    Proportional to the tile area so that a label means the same ground area at every resolution; the
    floor of 2 keeps a single stray pixel (an edge of a cropped car) from counting.
    """
    return max(2, round(0.0005 * image_size * image_size))


def check_size(image_size: int) -> None:
    """Raise unless ``image_size`` is an int from :data:`MIN_IMAGE_SIZE` to :data:`MAX_IMAGE_SIZE`."""
    if isinstance(image_size, bool) or not isinstance(image_size, (int, np.integer)):
        raise TypeError(f"image_size must be an int; got {type(image_size).__name__}")
    if not MIN_IMAGE_SIZE <= image_size <= MAX_IMAGE_SIZE:
        raise ValueError(
            f"image_size must be between {MIN_IMAGE_SIZE} and {MAX_IMAGE_SIZE} pixels; got {image_size} "
            "(below 32 px cars and boats are smaller than a pixel; above 512 px the in-memory archive is huge)"
        )


def render_tile(index: int, image_size: int = 64, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Tile ``index`` of the archive ``seed``: its (3, S, S) uint8 image and (S, S) uint8 class map.

    The class map holds, per pixel, the index in :data:`CLASSES` of what is visible there. The tile's
    generator is seeded by ``(seed, index)`` alone, so a tile is the same whether rendered alone, in a
    batch or in another process.
    """
    check_size(image_size)
    rng = np.random.default_rng([seed, index])
    paint_scene = pick_scene(rng)
    canvas = Canvas(image_size, rng)
    paint_scene(canvas)
    return canvas.finish(), canvas.cls


def labels_from_class_map(class_map: np.ndarray, min_pixels: int) -> np.ndarray:
    """(C,) uint8 multi-hot: the classes with at least ``min_pixels`` visible pixels in ``class_map``.

    Works on a single (S, S) map or a stack (N, S, S), giving (N, C); a stack is counted map by map, so
    no (N, S, S) temporary is made.
    """
    if class_map.ndim == 3:
        return np.stack([labels_from_class_map(m, min_pixels) for m in class_map])
    counts = np.bincount(class_map.ravel(), minlength=len(CLASSES))
    return (counts >= min_pixels).astype(np.uint8)


@dataclass(frozen=True, eq=False)
class SyntheticArchive:
    """Every rendered tile of one parameter set: images (N, 3, S, S), class maps (N, S, S), labels (N, C).

    The arrays are read-only: one archive is shared by every split (and every dataset object) built with
    the same parameters in a process.
    """

    images: np.ndarray
    class_maps: np.ndarray
    labels: np.ndarray


def render_archive(
    num_images: int, image_size: int = 64, seed: int = 0, min_pixels: int | None = None
) -> SyntheticArchive:
    """Render ``num_images`` tiles (serially, about 2 ms per 64 px tile) and derive their labels."""
    check_size(image_size)
    if min_pixels is None:
        min_pixels = default_min_pixels(image_size)
    images = np.empty((num_images, 3, image_size, image_size), dtype=np.uint8)
    class_maps = np.empty((num_images, image_size, image_size), dtype=np.uint8)
    labels = np.empty((num_images, len(CLASSES)), dtype=np.uint8)
    for i in range(num_images):
        images[i], class_maps[i] = render_tile(i, image_size, seed)
        labels[i] = labels_from_class_map(class_maps[i], min_pixels)
    for array in (images, class_maps, labels):
        array.flags.writeable = False
    return SyntheticArchive(images, class_maps, labels)


# Archives alive in this process, by parameters: building train, val and test renders once. Weak values,
# so an archive is freed with the last dataset that uses it.
_ARCHIVES: weakref.WeakValueDictionary[tuple[int, int, int, int], SyntheticArchive] = weakref.WeakValueDictionary()


def load_or_render(
    num_images: int, image_size: int, seed: int, min_pixels: int, root: Path | None = None
) -> SyntheticArchive:
    """The archive of these parameters: from this process's memory, from ``root``'s cache, or rendered.

    With ``root``, the arrays are cached there as ``synthetic-<N>x<S>px-seed<seed>-min<m>.{images,
    class_maps,labels}.npy`` beside a JSON manifest of the parameters, written last (each file atomically);
    a cache whose manifest differs (another :data:`RENDER_VERSION`, other classes) is rendered again and
    overwritten.
    """
    key = (num_images, image_size, seed, min_pixels)
    archive = _ARCHIVES.get(key)
    if archive is not None and root is None:
        return archive
    manifest = {
        "generator": "macl.data.synthetic",
        "render_version": RENDER_VERSION,
        "num_images": num_images,
        "image_size": image_size,
        "seed": seed,
        "min_pixels": min_pixels,
        "classes": list(CLASSES),
    }
    stem = f"synthetic-{num_images}x{image_size}px-seed{seed}-min{min_pixels}"
    parts = ("images", "class_maps", "labels")
    cached = False
    if root is not None:
        manifest_path = root / f"{stem}.json"
        files = {name: root / f"{stem}.{name}.npy" for name in parts}
        cached = (
            manifest_path.is_file()
            and all(f.is_file() for f in files.values())
            and json.loads(manifest_path.read_text()) == manifest
        )
        if cached and archive is None:
            archive = SyntheticArchive(*(np.load(files[name], mmap_mode="r") for name in parts))
    if archive is None:
        archive = render_archive(num_images, image_size, seed, min_pixels)
    if root is not None and not cached:
        for name in parts:
            with atomic_write(files[name]) as fh:
                np.save(fh, getattr(archive, name))
        with atomic_write(manifest_path) as fh:
            fh.write(json.dumps(manifest, indent=1).encode())
    _ARCHIVES[key] = archive
    return archive
