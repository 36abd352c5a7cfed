"""A seeded synthetic multi-label aerial archive: the project's default data, rendered in seconds.

Why it exists: ``make demo`` and the tests must train and evaluate retrieval without downloading
anything, and the comparison they run (does a loss help *rare* labels?) is only meaningful on data that
has the properties of real archives such as UC Merced multi-label:

- **Land-cover regions with their own colour and texture** — smooth grass, blobby dark tree canopy,
  striped fields, speckled chaparral, grainy sand, flat water, grey pavement with slab joints, asphalt
  roads with lane markings — and **objects** with shape: buildings with roofs and shadows, cars, ships,
  airplanes, storage tanks, tennis courts, docks, mobile homes.
- **A long tail** of label frequencies and **realistic co-occurrence**: every tile is drawn from one of
  17 scene types (residential, parking lot, harbour, airport, forest, …) in proportions chosen so that
  grass, trees and pavement are on over 40 % of tiles while ships, airplanes, tanks, docks and courts are
  on under 5 %; ships are only ever placed on water, cars on roads or pavement, airplanes on pavement,
  docks start on a shore and reach into water. Yet a rare label is not given away by its context alone:
  some airports have an empty apron, some harbours no docks or no boats, some tank farms no tanks, some
  sports grounds no courts, some estates houses instead of mobile homes, and rare objects also turn up
  outside their scene (a boat on a park pond, a few tanks behind a shop), so retrieving them takes
  seeing the object.
- **Labels are what is visible.** Every pixel's class is recorded while painting (later paint hides
  earlier), and a tile carries a label only when at least ``min_pixels`` pixels of it remain visible, so a
  building hidden under trees or a car cropped by the tile border does not count.
- **Nuisance variation**, so that an untrained encoder ranks poorly: a random rotation of the whole
  layout, per-region colour variation, per-tile illumination (gain, tint, contrast, haze), sensor noise
  and blur, and distractors of similar colour (blue roofs and blue courts beside water, green courts
  beside grass, tan soil beside sand, dark pavement beside road, white roofs beside tanks). Rare objects
  are small (a boat is a few pixels on a large water body), so a loss that ignores rare labels loses on
  them visibly.

Every tile has its own random generator seeded by ``(seed, index)``, so any tile can be regenerated alone
(:func:`render_tile`) and the archive could be rendered lazily or in parallel; by default all tiles are
rendered at construction into one ``uint8`` array (2000 tiles of 64 px take 3–4 s on one core), kept in
memory and shared between the splits of the same parameters. Geometry is defined in tile units, so a tile
covers the same ground (about 75 m, as UC Merced's) at every ``image_size``; the random draws of pixel
noise depend on the size, so the scenes themselves differ between sizes.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, NamedTuple

import numpy as np
import torch

from macl.data.base import ArchiveIndex, MultiLabelDataset, Transform
from macl.data.splits import DEFAULT_FRACTIONS, SPLITS, stratified_split

if TYPE_CHECKING:
    from matplotlib.figure import Figure

# UC Merced multi-label's 17 labels, with 'road' split out of 'pavement' in place of UCM's 'sea' (open sea
# and inland water are both 'water' here): roads and plazas look alike, which makes a useful confusion.
CLASSES: tuple[str, ...] = (
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
    "road",
    "sand",
    "ship",
    "tanks",
    "trees",
    "water",
)
(
    AIRPLANE,
    BARE_SOIL,
    BUILDINGS,
    CARS,
    CHAPARRAL,
    COURT,
    DOCK,
    FIELD,
    GRASS,
    MOBILE_HOME,
    PAVEMENT,
    ROAD,
    SAND,
    SHIP,
    TANKS,
    TREES,
    WATER,
) = range(len(CLASSES))

# Bump when rendering changes: a cached archive written by another version is rendered again.
RENDER_VERSION = 1
MIN_IMAGE_SIZE, MAX_IMAGE_SIZE = 32, 512
PLACEHOLDER_ROOT = Path("<synthetic>")

# Colour anchors (RGB in [0, 1]); each tile picks one per class and jitters it.
_GRASS = ((0.40, 0.52, 0.25), (0.47, 0.58, 0.30), (0.55, 0.58, 0.36), (0.33, 0.47, 0.24))
_TREES = ((0.16, 0.27, 0.13), (0.20, 0.30, 0.16), (0.14, 0.22, 0.14), (0.24, 0.30, 0.18))
_FIELD = ((0.42, 0.55, 0.24), (0.70, 0.65, 0.40), (0.55, 0.45, 0.32), (0.52, 0.60, 0.30), (0.78, 0.72, 0.52))
_SCRUB_SOIL = ((0.58, 0.53, 0.42), (0.52, 0.48, 0.38), (0.60, 0.52, 0.40))
_SCRUB = ((0.27, 0.31, 0.20), (0.32, 0.33, 0.24), (0.24, 0.27, 0.19))
_SOIL = ((0.56, 0.44, 0.32), (0.62, 0.45, 0.34), (0.66, 0.58, 0.46), (0.48, 0.40, 0.32))
_SAND = ((0.86, 0.80, 0.62), (0.82, 0.76, 0.60), (0.90, 0.86, 0.72))
_WATER = ((0.10, 0.20, 0.33), (0.13, 0.28, 0.34), (0.22, 0.30, 0.26), (0.08, 0.14, 0.22), (0.20, 0.35, 0.42))
_PAVEMENT = ((0.62, 0.62, 0.60), (0.55, 0.55, 0.54), (0.70, 0.68, 0.64), (0.45, 0.45, 0.46))
_ROAD = ((0.30, 0.30, 0.32), (0.36, 0.36, 0.37), (0.26, 0.27, 0.28), (0.42, 0.41, 0.40))
_ROOFS = (
    (0.55, 0.55, 0.56),
    (0.33, 0.33, 0.35),
    (0.58, 0.34, 0.27),
    (0.85, 0.85, 0.83),
    (0.68, 0.60, 0.50),
    (0.38, 0.45, 0.52),
    (0.45, 0.28, 0.22),
    (0.30, 0.40, 0.33),
)
_MOBILE = ((0.88, 0.88, 0.85), (0.80, 0.82, 0.84), (0.78, 0.74, 0.64), (0.70, 0.75, 0.78))
_CARS = (
    (0.92, 0.92, 0.92),
    (0.10, 0.10, 0.11),
    (0.65, 0.66, 0.68),
    (0.65, 0.12, 0.10),
    (0.15, 0.22, 0.50),
    (0.35, 0.36, 0.38),
    (0.80, 0.75, 0.55),
)
_SHIPS = ((0.92, 0.92, 0.90), (0.80, 0.80, 0.80), (0.70, 0.30, 0.15), (0.30, 0.30, 0.32))
_PLANES = ((0.93, 0.93, 0.94), (0.82, 0.83, 0.85), (0.75, 0.76, 0.78))
_TANKS = ((0.90, 0.90, 0.88), (0.78, 0.79, 0.78), (0.70, 0.74, 0.70), (0.45, 0.46, 0.47))
_COURT = ((0.25, 0.48, 0.33), (0.22, 0.35, 0.58), (0.66, 0.38, 0.28), (0.35, 0.55, 0.35))
_COURT_SURROUND = ((0.20, 0.38, 0.27), (0.55, 0.30, 0.25), (0.45, 0.47, 0.48), (0.18, 0.28, 0.45))
_DOCK = ((0.62, 0.60, 0.55), (0.55, 0.45, 0.35), (0.72, 0.70, 0.66))
_POOL = ((0.30, 0.68, 0.78), (0.25, 0.58, 0.72))
_WHITE = np.array((0.93, 0.93, 0.90), dtype=np.float32)
_YELLOW = np.array((0.85, 0.75, 0.30), dtype=np.float32)


def default_min_pixels(image_size: int) -> int:
    """Visible pixels a label needs: 0.05 % of the tile, at least 2 (2 px at 64 px, 33 px at 256 px).

    Proportional to the tile area so that a label means the same ground area at every resolution; the
    floor of 2 keeps a single stray pixel (an edge of a cropped car) from counting.
    """
    return max(2, round(0.0005 * image_size * image_size))


@lru_cache(maxsize=32)
def _interp_matrix(size: int, cells: int) -> np.ndarray:
    """(size, cells + 2) Gaussian weights from a coarse grid to pixels; rows have unit L2 norm.

    ``W @ R @ W.T`` of an i.i.d. normal grid ``R`` is then a smooth field with unit variance at every
    pixel, i.e. smooth noise of spatial period about ``1 / cells`` tile in two small matrix products.
    """
    pixels = (np.arange(size) + 0.5) / size
    nodes = (np.arange(cells + 2) - 0.5) / cells
    weights = np.exp(-0.5 * ((pixels[:, None] - nodes[None, :]) * cells / 0.6) ** 2)
    weights = (weights / np.linalg.norm(weights, axis=1, keepdims=True)).astype(np.float32)
    weights.flags.writeable = False  # shared by every tile of this size
    return weights


@lru_cache(maxsize=8)
def _coords(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates (x along columns, y along rows) in tile units, centred on 0."""
    t = ((np.arange(size) + 0.5) / size - 0.5).astype(np.float32)
    y, x = np.meshgrid(t, t, indexing="ij")
    x.flags.writeable = False
    y.flags.writeable = False
    return x, y


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 + 0.5 * np.tanh(0.5 * x)


class _Stamp(NamedTuple):
    """Pixels covered by a batch of shapes: owner ``k``, row ``r``, column ``c`` and shape-local ``a, b``.

    ``a`` runs along the shape's length and ``b`` across it, both scaled to [-1, 1] inside the shape, so
    shading (roof ridges, court lines, windscreens) is a function of ``(a, b)``.
    """

    k: np.ndarray
    r: np.ndarray
    c: np.ndarray
    a: np.ndarray
    b: np.ndarray

    def select(self, keep: np.ndarray) -> _Stamp:
        """Only the pixels where ``keep`` (per pixel) holds."""
        return _Stamp(self.k[keep], self.r[keep], self.c[keep], self.a[keep], self.b[keep])

    def of(self, keep_objects: np.ndarray) -> _Stamp:
        """Only the pixels of objects where ``keep_objects`` (per object) holds."""
        return self.select(keep_objects[self.k])


class _Canvas:
    """One tile being painted: a class map, an RGB image and the random generator that drives both.

    Painting is in painter's order: whatever is painted later hides what is below, in the class map as in
    the image, so the class map is exactly what is visible. Shadows darken the image only.
    """

    def __init__(self, size: int, rng: np.random.Generator) -> None:
        self.size = size
        self.rng = rng
        self.cls = np.full((size, size), GRASS, dtype=np.uint8)
        self.rgb = np.zeros((3, size, size), dtype=np.float32)
        self.road_dir = np.zeros((size, size), dtype=np.float32)
        self.x, self.y = _coords(size)
        self.theta = float(rng.uniform(0, 2 * math.pi))  # orientation of the whole layout
        self.sun = float(rng.uniform(0, 2 * math.pi))  # direction shadows fall towards
        self.shadow_factor = float(rng.uniform(0.45, 0.7))
        self._textures: dict[int, np.ndarray] = {}
        self._fine: np.ndarray | None = None

    # --- randomness -----------------------------------------------------------------------------------
    def chance(self, p: float) -> bool:
        return bool(self.rng.random() < p)

    def uniform(self, lo: float, hi: float, n: int | None = None) -> float | np.ndarray:
        """A Python float (which, unlike a NumPy float64, keeps float32 arithmetic float32), or n float32s."""
        return float(self.rng.uniform(lo, hi)) if n is None else self.rng.uniform(lo, hi, n).astype(np.float32)

    def smooth(self, cells: int) -> np.ndarray:
        """Smooth unit-variance noise with features about ``1 / cells`` tile across."""
        weights = _interp_matrix(self.size, cells)
        grid = self.rng.standard_normal((cells + 2, cells + 2), dtype=np.float32)
        return weights @ grid @ weights.T

    def fine(self) -> np.ndarray:
        """Per-pixel unit noise. One field per tile serves every texture: they cover disjoint regions."""
        if self._fine is None:
            self._fine = self.rng.standard_normal((self.size, self.size), dtype=np.float32)
        return self._fine

    def pick(self, anchors: Sequence[tuple[float, float, float]], n: int | None = None) -> np.ndarray:
        """A jittered colour from ``anchors``: (3,), or (n, 3) for ``n`` objects."""
        m = 1 if n is None else n
        choice = np.asarray(anchors, dtype=np.float32)[self.rng.integers(0, len(anchors), m)]
        colour = choice * (1 + self.rng.normal(0, 0.03, (m, 3))) * self.rng.uniform(0.88, 1.12, (m, 1))
        colour = colour.astype(np.float32)
        return colour[0] if n is None else colour

    # --- geometry -------------------------------------------------------------------------------------
    def frame(self, phi: float) -> tuple[np.ndarray, np.ndarray]:
        """Every pixel's (along, across) coordinates in a frame rotated by ``phi``."""
        c, s = math.cos(phi), math.sin(phi)
        return self.x * c + self.y * s, self.y * c - self.x * s

    def to_pixels(self, phi: float, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Continuous (column, row) pixel positions of frame points ``(a, b)``."""
        c, s = math.cos(phi), math.sin(phi)
        return (a * c - b * s + 0.5) * self.size, (a * s + b * c + 0.5) * self.size

    def sample_points(self, allowed: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        """``n`` random (column, row) positions on pixels where ``allowed`` holds."""
        flat = np.flatnonzero(allowed)
        if flat.size == 0 or n <= 0:
            return np.zeros(0, np.float32), np.zeros(0, np.float32)
        rows, cols = np.divmod(self.rng.choice(flat, n), self.size)
        return (cols + self.rng.random(n)).astype(np.float32), (rows + self.rng.random(n)).astype(np.float32)

    def stamp(
        self,
        cx: np.ndarray,
        cy: np.ndarray,
        half_len: np.ndarray | float,
        half_wid: np.ndarray | float,
        angle: np.ndarray | float,
        shape: str = "rect",
        sweep: float = 0.0,
    ) -> _Stamp:
        """Pixels covered by ``len(cx)`` rotated rectangles or ellipses (pixel units), all at once.

        Each shape is evaluated on a small window around its centre rather than on the whole tile, so a
        batch of cars costs a few array operations whatever the tile size. ``sweep`` shifts a rectangle's
        length coordinate by ``sweep·|across|`` (swept airplane wings).
        """
        cx, cy, hl, hw, ang = (
            np.atleast_1d(np.asarray(v, dtype=np.float32)) for v in (cx, cy, half_len, half_wid, angle)
        )
        cx, cy, hl, hw, ang = np.broadcast_arrays(cx, cy, hl, hw, ang)
        if cx.size == 0:
            empty_i, empty_f = np.zeros(0, np.int64), np.zeros(0, np.float32)
            return _Stamp(empty_i, empty_i, empty_i, empty_f, empty_f)
        reach = math.ceil(float(max(hl.max(), hw.max()) * (1 + abs(sweep)))) + 1
        d = np.arange(-reach, reach + 1, dtype=np.float32)
        row0, col0 = np.floor(cy), np.floor(cx)
        # offsets of the window's pixel centres from the shape centre: (K, D, 1) down, (K, 1, D) across
        dy = (row0 + 0.5 - cy)[:, None, None] + d[None, :, None]
        dx = (col0 + 0.5 - cx)[:, None, None] + d[None, None, :]
        hl, hw = np.maximum(hl, 1e-3), np.maximum(hw, 1e-3)
        cos, sin = np.cos(ang), np.sin(ang)
        a = dx * (cos / hl)[:, None, None] + dy * (sin / hl)[:, None, None]
        b = dy * (cos / hw)[:, None, None] - dx * (sin / hw)[:, None, None]
        if shape == "ellipse":
            inside = a * a + b * b <= 1
        else:
            if sweep:
                a = a + sweep * np.abs(b) * (hw / hl)[:, None, None]
            inside = (np.abs(a) <= 1) & (np.abs(b) <= 1)
        rows = row0.astype(np.int64)[:, None] + np.arange(-reach, reach + 1)
        cols = col0.astype(np.int64)[:, None] + np.arange(-reach, reach + 1)
        inside &= ((rows >= 0) & (rows < self.size))[:, :, None] & ((cols >= 0) & (cols < self.size))[:, None, :]
        k, i, j = np.nonzero(inside)
        return _Stamp(k, rows[k, i], cols[k, j], a[k, i, j], b[k, i, j])

    def fraction_on(self, st: _Stamp, allowed: np.ndarray, n: int) -> np.ndarray:
        """Per object, the fraction of its in-tile pixels lying where ``allowed`` holds (0 if none in tile)."""
        total = np.bincount(st.k, minlength=n)
        good = np.bincount(st.k, weights=allowed[st.r, st.c], minlength=n)
        return good / np.maximum(total, 1)

    def half_plane(self, phi: float, off: float) -> np.ndarray:
        """Pixels on the near side (across < ``off``) of a line along ``phi``."""
        return self.frame(phi)[1] < off

    def is_class(self, *classes: int) -> np.ndarray:
        """(S, S) bool: pixels whose class is one of ``classes`` (a lookup table, cheaper than ``np.isin``)."""
        table = np.zeros(len(CLASSES), dtype=bool)
        table[list(classes)] = True
        return table[self.cls]

    def stand_out(self, colours: np.ndarray, background: int, min_diff: float = 0.15) -> np.ndarray:
        """``colours`` (n, 3) with brightness moved at least ``min_diff`` away from ``background``'s texture.

        A rare object drawn in the colour of what it sits on (a grey boat on grey water, a white airliner on
        white concrete) would be labelled but invisible; objects darker than their background get darker,
        the others lighter.
        """
        luma = np.array((0.3, 0.59, 0.11), np.float32)
        ground = float(self.texture(background).mean(axis=(1, 2)) @ luma)
        own = colours @ luma
        target = np.where(own < ground, np.minimum(own, ground - min_diff), np.maximum(own, ground + min_diff))
        if ground + min_diff > 0.95:  # nothing is light enough to stand out above: go dark instead
            target = np.where(own >= ground, ground - min_diff, target)
        return np.clip(colours * (np.maximum(target, 0.05) / np.maximum(own, 1e-3))[:, None], 0, 1)

    # --- painting -------------------------------------------------------------------------------------
    def texture(self, c: int) -> np.ndarray:
        """The tile's (3, S, S) texture of region class ``c``, drawn once per tile."""
        if c not in self._textures:
            self._textures[c] = _TEXTURES[c](self)
        return self._textures[c]

    def region(self, mask: np.ndarray, c: int) -> None:
        """Paint the pixels of ``mask`` (S, S) as land cover ``c`` with its texture."""
        self.cls[mask] = c
        np.copyto(self.rgb, self.texture(c), where=mask)

    def region_pixels(self, st: _Stamp, c: int) -> None:
        """Paint a stamp's pixels as land cover ``c`` (driveways, sand bunkers, sidewalks)."""
        self.cls[st.r, st.c] = c
        self.rgb[:, st.r, st.c] = self.texture(c)[:, st.r, st.c]

    def paint(self, st: _Stamp, c: int, colour: np.ndarray) -> None:
        """Paint a stamp's pixels as object class ``c``; ``colour`` is (3, n_pixels)."""
        self.cls[st.r, st.c] = c
        self.rgb[:, st.r, st.c] = colour

    def ground(self, weights: dict[int, float], cells: int = 3) -> None:
        """Cover the tile with irregular regions: argmax over classes of smooth noise plus a bias each.

        A larger bias gives a class more of the tile; few ``cells`` give large regions.
        """
        classes = list(weights)
        if len(classes) == 1:
            self.region(np.ones_like(self.cls, dtype=bool), classes[0])
            return
        scores = np.stack([self.smooth(cells) + weights[c] for c in classes])
        winner = scores.argmax(0)
        for k, c in enumerate(classes):
            self.region(winner == k, c)

    def soft_line(self, dist: np.ndarray, half_width: float) -> np.ndarray:
        """Anti-aliased coverage of a line at distance ``dist`` (tile units) from its centre line."""
        return np.clip((half_width - np.abs(dist)) * self.size + 0.5, 0, 1)

    def blend(self, where: np.ndarray, alpha: np.ndarray, colour: np.ndarray) -> None:
        """Blend ``colour`` into the image with per-pixel ``alpha``, only on ``where`` (markings, foam)."""
        alpha = np.where(where, alpha, 0)[None]
        self.rgb += alpha * (colour[:, None, None] - self.rgb)

    def shadow(
        self,
        cx: np.ndarray,
        cy: np.ndarray,
        hl: np.ndarray,
        hw: np.ndarray,
        ang: np.ndarray,
        height: float,
        shape: str = "rect",
    ) -> None:
        """Darken the ground where objects of ``height`` (tile units) cast their shadows.

        The shadow is the footprint swept along the shadow direction ``sun``; two shifted copies approximate
        the sweep, and a boolean mask keeps overlapping copies from darkening twice.
        """
        if len(cx) == 0:
            return
        mask = np.zeros(self.cls.shape, dtype=bool)
        dx, dy = math.cos(self.sun) * height * self.size, math.sin(self.sun) * height * self.size
        for t in (0.5, 1.0):
            st = self.stamp(cx + t * dx, cy + t * dy, hl, hw, ang, shape)
            mask[st.r, st.c] = True
        self.rgb[:, mask] *= self.shadow_factor

    # --- land cover -----------------------------------------------------------------------------------
    def road(
        self, phi: float, off: float, width: float, period: float = 0.0, curve: float = 0.0, lanes: int = 1
    ) -> None:
        """An asphalt road along direction ``phi`` (repeated every ``period`` if set), with markings.

        One lane each way gets a dashed (or double yellow) centre line, more lanes get dashed lane lines;
        the direction is stored per pixel so cars can be parked along the road.
        """
        a, b = self.frame(phi)
        b = b - off - curve * a * a
        if period:
            b = (b + period / 2) % period - period / 2
        mask = np.abs(b) < width / 2
        self.region(mask, ROAD)
        self.road_dir[mask] = phi
        line = 0.003  # half a 0.45 m marking on a tile of ~75 m: sub-pixel (faint) below 128 px, as in real images
        dash = (a / self.uniform(0.06, 0.1)) % 1 < 0.5
        if lanes == 1:
            if self.chance(0.3):
                centre = self.soft_line(np.abs(b) - 1.2 * line, line)
                self.blend(mask, centre, _YELLOW)
            elif self.chance(0.7):
                self.blend(mask & dash, self.soft_line(b, line), _WHITE)
        else:
            lane = width / (2 * lanes)
            for k in range(1, lanes):
                for side in (-1, 1):
                    self.blend(mask & dash, self.soft_line(b - side * k * lane, line), _WHITE)
            self.blend(mask, self.soft_line(b, line), _YELLOW)
        if self.chance(0.5):
            self.blend(mask, self.soft_line(np.abs(b) - width / 2 + 2 * line, line), _WHITE)

    def strip(self, phi: float, off: float, width: float, c: int, wiggle: float = 0.0) -> np.ndarray:
        """A band of land cover ``c`` (sidewalk, hedge, dirt track, runway); returns its mask."""
        a, b = self.frame(phi)
        if wiggle:
            b = b - wiggle * np.sin(2 * math.pi * a * self.uniform(0.7, 1.5) + self.uniform(0, 6.3))
        mask = np.abs(b - off) < width / 2
        self.region(mask, c)
        return mask

    def blob(self, cx: float, cy: float, radius: float, c: int, rough: float = 0.35) -> np.ndarray:
        """An irregular roundish region (lake, pond, clearing); returns its mask."""
        d2 = ((self.x - cx) ** 2 + (self.y - cy) ** 2) / (radius * radius)
        mask = 1 - d2 + rough * self.smooth(4) > 0
        self.region(mask, c)
        return mask

    def river(self, phi: float, off: float, width: float, sand: float = 0.0) -> tuple[float, float, float, float]:
        """A meandering river; optional sand banks. Returns (amplitude, frequency, phase, offset)."""
        a, b = self.frame(phi)
        amp, freq, phase = float(self.uniform(0, 0.12)), float(self.uniform(0.4, 1.0)), float(self.uniform(0, 6.3))
        dist = np.abs(b - off - amp * np.sin(2 * math.pi * freq * a + phase))
        if sand:
            self.region((dist < width / 2 + sand) & (self.smooth(3) > -0.2), SAND)
        self.region(dist < width / 2, WATER)
        return amp, freq, phase, off

    def coast(self, phi: float, off: float, sand: float, wobble: float) -> None:
        """Water beyond a (wobbly) shoreline across the tile, optionally a beach and surf in front of it."""
        a, b = self.frame(phi)
        shore = off + wobble * (np.sin(a * self.uniform(4, 9) + self.uniform(0, 6.3)) + 0.4 * self.smooth(3))
        if sand:
            self.region((b > shore - sand) & (b <= shore), SAND)
        water = b > shore
        self.region(water, WATER)
        if sand and self.chance(0.6):
            self.blend(water, 0.6 * self.soft_line(b - shore - 0.02, 0.012) * _sigmoid(3 * self.fine()), _WHITE)

    # --- objects ----------------------------------------------------------------------------------------
    def buildings(
        self,
        cx: np.ndarray,
        cy: np.ndarray,
        hl: np.ndarray,
        hw: np.ndarray,
        ang: np.ndarray,
        allowed: np.ndarray,
        height: float,
        roof: str = "gable",
        palette: Sequence[tuple[float, float, float]] = _ROOFS,
        c: int = BUILDINGS,
    ) -> np.ndarray:
        """Rectangular buildings with shaded roofs and shadows, kept where ≥ 85 % of the footprint is allowed.

        Returns which of the candidates were built (for driveways and pools).
        """
        n = len(cx)
        st = self.stamp(cx, cy, hl, hw, ang)
        built = self.fraction_on(st, allowed, n) >= 0.85
        st = st.of(built)
        self.shadow(cx[built], cy[built], hl[built], hw[built], ang[built], height)
        colour = self.pick(palette, n)[st.k].T
        if roof == "gable":  # two roof planes lit differently, a bright ridge
            light = np.where(st.b > 0, 1.1, 0.82) + 0.15 * (np.abs(st.b) < 0.12)
        elif roof == "mobile":
            light = 1.0 - 0.12 * (np.abs(st.b) > 0.7)
        else:  # flat roof with a darker parapet and a few rooftop units
            light = 1.0 - 0.18 * (np.maximum(np.abs(st.a), np.abs(st.b)) > 0.9)
            units = (np.cos(7 * st.a + 3 * st.k) > 0.93) & (np.cos(5 * st.b + st.k) > 0.9)
            light = light + 0.25 * units
        self.paint(st, c, colour * light)
        return built

    def trees(self, n: int, allowed: np.ndarray, rmin: float, rmax: float) -> None:
        """Scattered tree crowns: round, lit on the sun side, casting shadows."""
        cx, cy = self.sample_points(allowed, n)
        r = self.uniform(rmin, rmax, len(cx)) * self.size
        zero = np.zeros_like(r)
        self.shadow(cx, cy, r, r, zero, float(self.uniform(0.02, 0.035)), "ellipse")
        st = self.stamp(cx, cy, r, r, zero, "ellipse")
        light = 1.15 - 0.35 * (st.a**2 + st.b**2) - 0.25 * (st.a * math.cos(self.sun) + st.b * math.sin(self.sun))
        light = light + 0.08 * self.rng.standard_normal(len(st.k)).astype(np.float32)
        self.paint(st, TREES, self.pick(_TREES, len(cx))[st.k].T * light)

    def cars(self, n: int, allowed: np.ndarray) -> None:
        """Cars on ``allowed`` pixels, along the road where they stand, else aligned with the layout."""
        cx, cy = self.sample_points(allowed, n)
        m = len(cx)
        r = np.clip(cy.astype(np.int64), 0, self.size - 1)
        c = np.clip(cx.astype(np.int64), 0, self.size - 1)
        grid = self.theta + 0.5 * math.pi * self.rng.integers(0, 2, m)
        ang = np.where(self.cls[r, c] == ROAD, self.road_dir[r, c], grid) + self.rng.normal(0, 0.05, m)
        hl = self.uniform(0.022, 0.03, m) * self.size
        self.car_stamps(cx, cy, hl, hl * self.uniform(0.42, 0.5, m), ang, allowed)

    def car_stamps(
        self, cx: np.ndarray, cy: np.ndarray, hl: np.ndarray, hw: np.ndarray, ang: np.ndarray, allowed: np.ndarray
    ) -> None:
        """Paint cars (rectangles with a dark windscreen) kept where ≥ 90 % of each lies on ``allowed``."""
        st = self.stamp(cx, cy, hl, hw, ang)
        st = st.of(self.fraction_on(st, allowed, len(cx)) >= 0.9)
        light = np.where(np.abs(st.a - 0.3) < 0.15, 0.45, 1.0)
        self.paint(st, CARS, self.pick(_CARS, len(cx))[st.k].T * light)

    def ships(self, cx: np.ndarray, cy: np.ndarray, hl: np.ndarray, ang: np.ndarray, wake: bool) -> None:
        """Boats kept only where they lie entirely on water; a bright wake trails a moving one."""
        water = self.cls == WATER
        m = len(cx)
        hw = hl * self.uniform(0.25, 0.35, m)
        st = self.stamp(cx, cy, hl, hw, ang, "ellipse")
        afloat = self.fraction_on(st, water, m) >= 0.999
        if wake:
            back = 2.2 * hl
            wk = self.stamp(cx - back * np.cos(ang), cy - back * np.sin(ang), 1.5 * hl, 0.8 * hw, ang, "ellipse")
            wk = wk.of(afloat)
            wk = wk.select(water[wk.r, wk.c])
            fade = (0.35 * (1 + wk.a) / 2)[None]
            self.rgb[:, wk.r, wk.c] += fade * (_WHITE[:, None] - self.rgb[:, wk.r, wk.c])
        st = st.of(afloat)
        light = np.where(np.abs(st.b) < 0.45, 0.85, 1.0) + 0.1 * (st.a > 0.5)
        self.paint(st, SHIP, self.stand_out(self.pick(_SHIPS, m), WATER)[st.k].T * light)

    def scatter_ships(self, n: int, lmin: float, lmax: float) -> None:
        cx, cy = self.sample_points(self.cls == WATER, n)
        m = len(cx)
        self.ships(cx, cy, self.uniform(lmin, lmax, m) * self.size, self.uniform(0, 2 * math.pi, m), self.chance(0.6))

    def docks(self, cx: np.ndarray, cy: np.ndarray, length: np.ndarray, width: np.ndarray, ang: np.ndarray) -> None:
        """Piers from a shore point ``(cx, cy)`` reaching ``length`` pixels into the water along ``ang``."""
        m = len(cx)
        mx, my = cx + 0.5 * length * np.cos(ang), cy + 0.5 * length * np.sin(ang)
        self.shadow(mx, my, 0.5 * length, 0.5 * width, ang, 0.006)
        st = self.stamp(mx, my, 0.5 * length, 0.5 * width, ang)
        planks = 1 + 0.06 * np.sign(np.sin(st.a * 0.5 * length[st.k]))
        self.paint(st, DOCK, self.pick(_DOCK, m)[st.k].T * planks)

    def airplanes(self, n: int) -> None:
        """Airplanes parked on pavement: fuselage, swept wings and tailplane, with a shadow."""
        pavement = self.cls == PAVEMENT
        cx, cy = self.sample_points(pavement, n)
        m = len(cx)
        half = self.uniform(0.07, 0.18, m) * self.size
        ang = self.uniform(0, 2 * math.pi, m)
        body = self.stamp(cx, cy, half, 0.09 * half, ang)
        ok = self.fraction_on(body, pavement, m) >= 0.8
        cx, cy, half, ang = cx[ok], cy[ok], half[ok], ang[ok]
        fwd_x, fwd_y = np.cos(ang), np.sin(ang)
        parts = [
            (cx, cy, half, 0.1 * half, 0.0),  # fuselage
            (cx + 0.1 * half * fwd_x, cy + 0.1 * half * fwd_y, 0.14 * half, 0.9 * half, 0.5),  # wings
            (cx - 0.82 * half * fwd_x, cy - 0.82 * half * fwd_y, 0.09 * half, 0.34 * half, 0.5),  # tailplane
        ]
        colour = self.stand_out(self.pick(_PLANES, len(cx)), PAVEMENT)
        shift = 0.012 * self.size  # a parked airplane's shadow lies just beside it
        shadow = np.zeros(self.cls.shape, dtype=bool)
        for px, py, hl, hw, sweep in parts:
            st = self.stamp(px + shift * math.cos(self.sun), py + shift * math.sin(self.sun), hl, hw, ang, sweep=sweep)
            shadow[st.r, st.c] = True
        self.rgb[:, shadow] *= self.shadow_factor
        for px, py, hl, hw, sweep in parts:
            st = self.stamp(px, py, hl, hw, ang, sweep=sweep)
            self.paint(st, AIRPLANE, colour[st.k].T * (1 - 0.08 * np.abs(st.b)))

    def tanks(self, cx: np.ndarray, cy: np.ndarray, radius: np.ndarray, allowed: np.ndarray) -> None:
        """Storage tanks: discs with a dark rim, a shaded roof and a central vent, kept on ``allowed``."""
        m = len(cx)
        zero = np.zeros(m, np.float32)
        st = self.stamp(cx, cy, radius, radius, zero, "ellipse")
        ok = self.fraction_on(st, allowed, m) >= 0.85
        self.shadow(cx[ok], cy[ok], radius[ok], radius[ok], zero[ok], float(self.uniform(0.02, 0.04)), "ellipse")
        st = st.of(ok)
        d2 = st.a**2 + st.b**2
        light = np.where(d2 > 0.75, 0.75, 1.0) - 0.15 * (st.a * math.cos(self.sun) + st.b * math.sin(self.sun))
        light = np.where(d2 < 0.02, 0.6, light)
        self.paint(st, TANKS, self.pick(_TANKS, m)[st.k].T * light)

    def courts(
        self, cx: np.ndarray, cy: np.ndarray, hl: np.ndarray, hw: np.ndarray, ang: np.ndarray, allowed: np.ndarray
    ) -> None:
        """Tennis courts: coloured surround, playing surface, white lines and a dark net."""
        m = len(cx)
        outer = self.stamp(cx, cy, 1.3 * hl, 1.45 * hw, ang)
        ok = self.fraction_on(outer, allowed, m) >= 0.85
        outer = outer.of(ok)
        self.paint(outer, COURT, self.pick(_COURT_SURROUND, m)[outer.k].T)
        st = self.stamp(cx, cy, hl, hw, ang).of(ok)
        ta, tb = (0.55 / hl)[st.k], (0.55 / hw)[st.k]  # half a line in shape units: about one pixel wide
        abs_a, abs_b = np.abs(st.a), np.abs(st.b)
        lines = (
            (abs_a > 1 - 2 * ta)
            | (abs_b > 1 - 2 * tb)
            | (np.abs(abs_b - 0.75) < tb)
            | ((np.abs(abs_a - 0.46) < ta) & (abs_b < 0.75))
            | ((abs_b < tb) & (abs_a < 0.46))
        )
        colour = self.pick(_COURT, m)[st.k].T
        colour = np.where(lines[None], _WHITE[:, None], colour)
        colour = np.where((abs_a < ta)[None], 0.2, colour)
        self.paint(st, COURT, colour)

    def grid_points(self, phi: float, pitch: float, keep: float, extent: float = 0.75) -> tuple[np.ndarray, np.ndarray]:
        """(columns, rows) of a randomly shifted square lattice in the frame ``phi``, each point kept with
        probability ``keep``, within ``extent`` of the tile centre (0.75 reaches the corners of any rotation)."""
        ga = np.arange(-extent, extent, pitch) + self.uniform(0, pitch)
        gb = np.arange(-extent, extent, pitch) + self.uniform(0, pitch)
        a, b = (v.ravel().astype(np.float32) for v in np.meshgrid(ga, gb))
        kept = self.rng.random(a.size) < keep
        cx, cy = self.to_pixels(phi, a[kept], b[kept])
        inside = (cx > -0.2 * self.size) & (cx < 1.2 * self.size) & (cy > -0.2 * self.size) & (cy < 1.2 * self.size)
        return cx[inside], cy[inside]

    def block_buildings(
        self, cell: float, fill: tuple[float, float], keep: float, allowed: np.ndarray, height: tuple[float, float]
    ) -> None:
        """Flat-roofed buildings, one per lattice cell (so they never overlap), aligned with the layout."""
        phi = self.theta + 0.5 * math.pi * int(self.rng.integers(0, 2))
        cx, cy = self.grid_points(phi, cell, keep)
        m = len(cx)
        hl = self.uniform(*fill, m) * cell * self.size / 2
        hw = self.uniform(*fill, m) * cell * self.size / 2
        ang = np.full(m, phi, np.float32)
        self.buildings(cx, cy, hl, hw, ang, allowed, float(self.uniform(*height)), roof="flat")

    def finish(self) -> np.ndarray:
        """Per-tile illumination, haze, blur and sensor noise; returns the (3, S, S) uint8 image."""
        rgb = self.rgb
        mean = float(rgb.mean())
        rgb = mean + (rgb - mean) * self.uniform(0.8, 1.2)  # contrast, around the grey level (keeps hues)
        gain = self.uniform(0.8, 1.15) * (1 + self.rng.normal(0, 0.03, 3)).astype(np.float32)
        rgb = rgb * gain[:, None, None]
        haze = self.uniform(0, 0.18) ** 1.5
        rgb = rgb + haze * (np.array((0.78, 0.79, 0.82), np.float32)[:, None, None] - rgb)
        # optics: a [w, 1 - 2w, w] blur along both axes, from barely any to half a pixel
        w = self.uniform(0.05, 0.2)
        rgb = np.concatenate([rgb[:, :1], rgb, rgb[:, -1:]], axis=1)
        rgb = w * (rgb[:, :-2] + rgb[:, 2:]) + (1 - 2 * w) * rgb[:, 1:-1]
        rgb = np.concatenate([rgb[:, :, :1], rgb, rgb[:, :, -1:]], axis=2)
        rgb = w * (rgb[:, :, :-2] + rgb[:, :, 2:]) + (1 - 2 * w) * rgb[:, :, 1:-1]
        noise = self.rng.random(rgb.shape, dtype=np.float32) - 0.5  # uniform: a quarter of the cost of normal
        rgb = rgb + self.uniform(0.004, 0.02) * math.sqrt(12) * noise
        return (np.clip(rgb, 0, 1) * 255 + 0.5).astype(np.uint8)


# --- textures of the land-cover classes -----------------------------------------------------------------
def _shade(base: np.ndarray, light: np.ndarray) -> np.ndarray:
    return base[:, None, None] * light[None]


def _mix(c1: np.ndarray, c2: np.ndarray, t: np.ndarray) -> np.ndarray:
    return c1[:, None, None] + (c2 - c1)[:, None, None] * t[None]


def _grass(cv: _Canvas) -> np.ndarray:
    """Light green, smooth: two hues in large patches, little fine texture, sometimes mowing stripes."""
    c1 = cv.pick(_GRASS)
    c2 = c1 + np.array((0.07, 0.03, -0.02), np.float32) * float(cv.uniform(-1, 1.5))
    light = 1 + 0.05 * cv.smooth(10) + 0.035 * cv.fine()
    if cv.chance(0.3):  # mowing stripes
        a, _ = cv.frame(cv.theta)
        light += 0.04 * np.sign(np.sin(2 * math.pi * a / float(cv.uniform(0.06, 0.12))))
    return _mix(c1, c2, _sigmoid(1.5 * cv.smooth(4))) * light[None]


def _trees(cv: _Canvas) -> np.ndarray:
    """Closed canopy: a few hundred overlapping round crowns, lit on the sun side, over dark gaps."""
    size = cv.size
    n = 340  # crowns of mean radius 0.034 tile cover the tile about 1.3 times
    cx, cy = (cv.uniform(-0.05, 1.05, n) * size for _ in range(2))
    r = cv.uniform(0.022, 0.045, n) * size
    st = cv.stamp(cx, cy, r, r, 0.0, "ellipse")
    sun_side = st.a * math.cos(cv.sun) + st.b * math.sin(cv.sun)
    crown = 1.1 - 0.4 * (st.a**2 + st.b**2) - 0.3 * sun_side + cv.rng.normal(0, 0.1, n).astype(np.float32)[st.k]
    light = np.full((size, size), 0.3, np.float32)
    light[st.r, st.c] = crown
    tone = np.full((size, size), 0.5, np.float32)
    tone[st.r, st.c] = cv.rng.random(n).astype(np.float32)[st.k]
    return _mix(cv.pick(_TREES), cv.pick(_TREES), tone) * (light + 0.05 * cv.fine() + 0.05 * cv.smooth(3))[None]


def _field(cv: _Canvas) -> np.ndarray:
    """Rectangular parcels of crop colours with row stripes (alternating direction) and darker boundaries."""
    a, b = cv.frame(cv.theta)
    wa, wb = float(cv.uniform(0.2, 0.5)), float(cv.uniform(0.15, 0.4))
    pa = np.floor(a / wa + cv.uniform(0, 1)).astype(np.int64)
    pb = np.floor(b / wb + cv.uniform(0, 1)).astype(np.int64)
    palette = cv.pick(_FIELD, 5)
    parcel_colour = cv.rng.integers(0, 5, (8, 8))  # parcels repeat every 8, beyond any tile
    colour = palette[parcel_colour[pa % 8, pb % 8]].transpose(2, 0, 1)
    period = float(cv.uniform(0.015, 0.03))
    rows = np.where((pa + pb) % 2 == 0, a, b)
    light = 1 + 0.08 * np.sin(2 * math.pi * rows / period) + 0.04 * cv.smooth(6) + 0.03 * cv.fine()
    edge = np.minimum(np.abs((a / wa + 0.5) % 1 - 0.5) * wa, np.abs((b / wb + 0.5) % 1 - 0.5) * wb)
    light -= 0.12 * (edge < 0.6 / cv.size)
    return colour * light[None]


def _chaparral(cv: _Canvas) -> np.ndarray:
    """Tan soil speckled with small dark olive shrubs."""
    shrubs = _sigmoid(3 * (cv.smooth(18) + 0.5 * cv.fine() - float(cv.uniform(-0.3, 0.6))))
    light = 1 + 0.04 * cv.fine() + 0.05 * cv.smooth(4)
    return _mix(cv.pick(_SCRUB_SOIL), cv.pick(_SCRUB), shrubs) * light[None]


def _bare_soil(cv: _Canvas) -> np.ndarray:
    """Brown to tan, mottled at two scales (some tan soils resemble sand: a deliberate confusion)."""
    light = 1 + 0.1 * cv.smooth(3) + 0.07 * cv.smooth(12) + 0.05 * cv.fine()
    return _shade(cv.pick(_SOIL), light)


def _sand(cv: _Canvas) -> np.ndarray:
    """Pale yellow, grainy, with faint ripples."""
    a, _ = cv.frame(float(cv.uniform(0, 2 * math.pi)))
    light = 1 + 0.03 * cv.smooth(4) + 0.05 * cv.fine() + 0.02 * np.sin(2 * math.pi * a / 0.03)
    return _shade(cv.pick(_SAND), light)


def _water(cv: _Canvas) -> np.ndarray:
    """Blue to murky green, nearly textureless; sometimes wind ripples or sun glint."""
    light = 1 + 0.08 * cv.smooth(3) + 0.02 * cv.smooth(20) + 0.012 * cv.fine()
    if cv.chance(0.4):  # wind ripples
        a, _ = cv.frame(float(cv.uniform(0, 2 * math.pi)))
        light += 0.04 * np.sin(2 * math.pi * a / float(cv.uniform(0.02, 0.05)) + 2 * cv.smooth(3))
    colour = _shade(cv.pick(_WATER), light)
    if cv.chance(0.2):  # sun glint
        colour += 0.12 * np.maximum(cv.smooth(2), 0)[None]
    return colour


def _pavement(cv: _Canvas) -> np.ndarray:
    """Light to dark grey concrete with stains and, on half the tiles, slab joints aligned with the layout."""
    light = 1 + 0.05 * cv.smooth(4) + 0.04 * cv.fine()
    if cv.chance(0.5):  # concrete slab joints
        a, b = cv.frame(cv.theta)
        w = float(cv.uniform(0.05, 0.1))
        joint = np.minimum(np.abs((a / w) % 1 - 0.5), np.abs((b / w) % 1 - 0.5)) * w > w / 2 - 0.5 / cv.size
        light -= 0.08 * joint
    return _shade(cv.pick(_PAVEMENT), light)


def _road(cv: _Canvas) -> np.ndarray:
    """Dark asphalt; markings are added by :meth:`_Canvas.road`, which knows the road's geometry."""
    return _shade(cv.pick(_ROAD), 1 + 0.03 * cv.smooth(6) + 0.04 * cv.fine())


_TEXTURES: dict[int, Callable[[_Canvas], np.ndarray]] = {
    GRASS: _grass,
    TREES: _trees,
    FIELD: _field,
    CHAPARRAL: _chaparral,
    BARE_SOIL: _bare_soil,
    SAND: _sand,
    WATER: _water,
    PAVEMENT: _pavement,
    ROAD: _road,
}


# --- scenes -------------------------------------------------------------------------------------------------
# Each scene type paints land cover first, then objects on the cover they belong on. Its weight (below)
# and the probabilities inside set the label frequencies and co-occurrences.
def _optional(cv: _Canvas, weights: dict[int, float], extra: dict[int, tuple[float, float]]) -> dict[int, float]:
    """``weights`` plus each ``extra`` class (probability, bias) that wins its coin toss."""
    out = dict(weights)
    for c, (p, bias) in extra.items():
        if cv.chance(p):
            out[c] = bias
    return out


def _ground_mask(cv: _Canvas) -> np.ndarray:
    """Where buildings, trees and courts may stand: open ground, not roads, water or other objects."""
    return cv.is_class(GRASS, TREES, BARE_SOIL, PAVEMENT, CHAPARRAL, FIELD, SAND)


def _residential(cv: _Canvas) -> None:
    if cv.chance(0.3):  # an arid neighbourhood: gravel yards, few lawns
        cover = {BARE_SOIL: 0.6, GRASS: -0.6}
    else:
        cover = _optional(cv, {GRASS: 0.6}, {BARE_SOIL: (0.15, -0.8)})
    if cv.chance(0.5):
        cover[TREES] = float(cv.uniform(-1.2, 0.0))
    cv.ground(cover)
    phi = cv.theta
    block, width = float(cv.uniform(0.4, 0.52)), float(cv.uniform(0.07, 0.1))
    off = float(cv.uniform(0, block))
    cv.road(phi, off, width, period=block)
    if cv.chance(0.5):
        cv.road(phi + math.pi / 2, float(cv.uniform(-0.4, 0.4)), width)
    if cv.chance(0.05):  # a court on its own lot: houses are only built on lawn
        _court_group(cv, 1)
    # houses in a row on each side of every road, facing it
    hl, hw = float(cv.uniform(0.05, 0.085)), float(cv.uniform(0.035, 0.055))
    setback = float(cv.uniform(0.02, 0.05))
    pitch = 2 * hl + float(cv.uniform(0.03, 0.08))
    ga = np.arange(-0.75, 0.75, pitch) + cv.uniform(0, pitch)
    centres = off + block * np.arange(-3, 4)
    side_off = width / 2 + setback + hw
    rows_b = np.concatenate([centres - side_off, centres + side_off])
    facing = np.concatenate([np.ones_like(centres), -np.ones_like(centres)])
    a, b = (v.ravel().astype(np.float32) for v in np.meshgrid(ga, rows_b))
    sign = np.repeat(facing, len(ga)).astype(np.float32)
    kept = cv.rng.random(a.size) < 0.85
    a, b, sign = a[kept] + cv.rng.normal(0, 0.01, kept.sum()).astype(np.float32), b[kept], sign[kept]
    cx, cy = cv.to_pixels(phi, a, b)
    m = len(cx)
    size = cv.size
    lawn = cv.is_class(GRASS, TREES, BARE_SOIL)
    ang = np.full(m, phi, np.float32)
    height = float(cv.uniform(0.015, 0.03))
    built = cv.buildings(
        cx, cy, np.full(m, hl * size, np.float32), np.full(m, hw * size, np.float32), ang, lawn, height
    )
    if cv.chance(0.6):  # a paved driveway from each house to its road, over the lawn only
        dcx, dcy = cv.to_pixels(phi, a + 0.4 * hl, b + sign * (hw + setback / 2 + 0.005))
        drive = cv.stamp(dcx, dcy, (setback / 2 + 0.012) * size, 0.018 * size, phi + math.pi / 2)
        drive = drive.of(built & (cv.fraction_on(drive, lawn | (cv.cls == ROAD), m) > 0.9))
        cv.region_pixels(drive.select(cv.is_class(GRASS, TREES, BARE_SOIL)[drive.r, drive.c]), PAVEMENT)
    if cv.chance(0.25):  # backyard pools, behind the house
        pool = built & (cv.rng.random(m) < 0.4)
        px, py = cv.to_pixels(phi, a[pool], b[pool] - sign[pool] * (hw + 0.045))
        k = len(px)
        st = cv.stamp(px, py, cv.uniform(0.02, 0.035, k) * size, cv.uniform(0.012, 0.022, k) * size, phi)
        st = st.of(cv.fraction_on(st, cv.is_class(GRASS, TREES, BARE_SOIL), k) >= 0.95)
        cv.paint(st, WATER, cv.pick(_POOL, k)[st.k].T)
    if cv.chance(0.6):
        cv.trees(int(cv.rng.integers(1, 18)), cv.is_class(GRASS, BARE_SOIL), 0.02, 0.05)
    if cv.chance(0.6):
        cv.cars(int(cv.rng.integers(1, 10)), cv.is_class(ROAD, PAVEMENT))


def _commercial(cv: _Canvas) -> None:
    cv.ground(_optional(cv, {PAVEMENT: 1.0}, {GRASS: (0.25, 0.0), TREES: (0.2, -0.5)}))
    if cv.chance(0.8):
        cv.road(cv.theta, float(cv.uniform(-0.4, 0.4)), float(cv.uniform(0.1, 0.16)), lanes=int(cv.rng.integers(1, 3)))
    if cv.chance(0.4):
        cv.road(cv.theta + math.pi / 2, float(cv.uniform(-0.4, 0.4)), float(cv.uniform(0.08, 0.14)))
    if cv.chance(0.04):
        _tank_group(cv, 0.15, 0.7)
    cv.block_buildings(float(cv.uniform(0.35, 0.55)), (0.5, 0.85), 0.75, _ground_mask(cv), (0.03, 0.08))
    if cv.chance(0.35):
        cv.trees(int(cv.rng.integers(1, 8)), cv.is_class(PAVEMENT, GRASS), 0.02, 0.04)
    if cv.chance(0.9):
        cv.cars(int(cv.rng.integers(3, 30)), cv.is_class(ROAD, PAVEMENT))


def _parking_lot(cv: _Canvas, area: np.ndarray | None = None) -> None:
    """Rows of marked stalls with cars in them, on pavement (inside ``area`` if given)."""
    if area is None:
        cv.ground(_optional(cv, {PAVEMENT: 1.2}, {GRASS: (0.3, -0.2), TREES: (0.25, -0.4)}))
        area = np.ones_like(cv.cls, dtype=bool)
    else:
        cv.region(area, PAVEMENT)
    phi = cv.theta + 0.5 * math.pi * int(cv.rng.integers(0, 2))
    a, b = cv.frame(phi)
    pitch, depth, stall = float(cv.uniform(0.15, 0.19)), float(cv.uniform(0.05, 0.06)), float(cv.uniform(0.038, 0.046))
    off_b, off_a = float(cv.uniform(0, pitch)), float(cv.uniform(0, stall))
    bm = (b - off_b + pitch / 2) % pitch - pitch / 2
    am = (a - off_a + stall / 2) % stall - stall / 2
    pavement = (cv.cls == PAVEMENT) & area
    line = 0.0025
    cv.blend(pavement & (np.abs(bm) < depth), cv.soft_line(am - stall / 2, line), _WHITE)
    cars_a = np.arange(-0.75, 0.75, stall) + off_a
    cars_b = np.concatenate([(np.arange(-5, 6) * pitch + off_b) + s * depth / 2 for s in (-1, 1)])
    ga, gb = (v.ravel().astype(np.float32) for v in np.meshgrid(cars_a, cars_b))
    occupied = cv.rng.random(ga.size) < cv.uniform(0.3, 0.95)
    cx, cy = cv.to_pixels(phi, ga[occupied], gb[occupied])
    m = len(cx)
    hl = cv.uniform(0.36, 0.44, m) * depth * cv.size
    ang = phi + math.pi / 2 + math.pi * cv.rng.integers(0, 2, m) + cv.rng.normal(0, 0.04, m)
    cv.car_stamps(cx, cy, hl, hl * cv.uniform(0.42, 0.5, m), ang, pavement)


def _parking(cv: _Canvas) -> None:
    _parking_lot(cv)
    if cv.chance(0.3):
        cv.road(cv.theta, float(cv.uniform(-0.45, 0.45)), float(cv.uniform(0.08, 0.12)))
    if cv.chance(0.3):
        cv.block_buildings(0.6, (0.6, 0.9), 0.3, _ground_mask(cv), (0.03, 0.06))
    if cv.chance(0.3):
        cv.trees(int(cv.rng.integers(1, 6)), cv.is_class(GRASS, PAVEMENT), 0.02, 0.04)


def _roads(cv: _Canvas) -> None:
    main = (GRASS, BARE_SOIL, TREES, CHAPARRAL)[int(cv.rng.choice(4, p=(0.55, 0.2, 0.15, 0.1)))]
    cv.ground(
        _optional(cv, {main: 0.5}, {TREES: (0.3, 0.0), BARE_SOIL: (0.3, 0.0), GRASS: (0.3, 0.0), FIELD: (0.1, 0.0)})
    )
    phi = cv.theta
    kind = cv.rng.integers(0, 3)
    if kind == 0:  # freeway: two carriageways and a median
        lanes, lane_w = int(cv.rng.integers(2, 4)), float(cv.uniform(0.04, 0.05))
        median, off = float(cv.uniform(0.02, 0.08)), float(cv.uniform(-0.2, 0.2))
        for side in (-1, 1):
            cv.road(phi, off + side * (median + lanes * lane_w) / 2, lanes * lane_w, lanes=lanes)
    elif kind == 1:  # intersection
        for turn in (0.0, math.pi / 2):
            cv.road(
                phi + turn,
                float(cv.uniform(-0.25, 0.25)),
                float(cv.uniform(0.08, 0.14)),
                lanes=int(cv.rng.integers(1, 3)),
            )
    else:  # a curved country road
        cv.road(phi, float(cv.uniform(-0.2, 0.2)), float(cv.uniform(0.06, 0.1)), curve=float(cv.uniform(-0.8, 0.8)))
    if cv.chance(0.3):  # sidewalks
        for side in (-1, 1):
            cv.strip(phi, side * float(cv.uniform(0.2, 0.4)), float(cv.uniform(0.02, 0.04)), PAVEMENT)
    if cv.chance(0.2):
        cv.block_buildings(
            float(cv.uniform(0.25, 0.35)), (0.4, 0.7), 0.4, cv.is_class(GRASS, BARE_SOIL, TREES), (0.015, 0.03)
        )
    if cv.chance(0.35):
        cv.trees(int(cv.rng.integers(1, 10)), cv.is_class(GRASS, BARE_SOIL), 0.02, 0.05)
    if cv.chance(0.7):
        cv.cars(int(cv.rng.integers(2, 25)), cv.is_class(ROAD))


def _agricultural(cv: _Canvas) -> None:
    cv.ground(_optional(cv, {FIELD: 1.0}, {BARE_SOIL: (0.3, -0.3), TREES: (0.15, -0.6), GRASS: (0.15, -0.4)}), cells=2)
    if cv.chance(0.25):  # a hedgerow
        cv.strip(cv.theta, float(cv.uniform(-0.4, 0.4)), float(cv.uniform(0.03, 0.07)), TREES, wiggle=0.02)
    if cv.chance(0.3):  # a dirt track
        cv.strip(cv.theta + math.pi / 2, float(cv.uniform(-0.4, 0.4)), float(cv.uniform(0.02, 0.04)), BARE_SOIL)
    elif cv.chance(0.25):
        cv.road(cv.theta + math.pi / 2, float(cv.uniform(-0.4, 0.4)), float(cv.uniform(0.06, 0.09)))
        if cv.chance(0.4):
            cv.cars(int(cv.rng.integers(1, 3)), cv.cls == ROAD)
    if cv.chance(0.12):  # a farmstead
        cv.block_buildings(0.3, (0.4, 0.7), 0.15, cv.is_class(FIELD, GRASS, BARE_SOIL), (0.02, 0.04))


def _forest(cv: _Canvas) -> None:
    cv.ground(_optional(cv, {TREES: 1.2}, {GRASS: (0.25, -0.3), BARE_SOIL: (0.2, -0.6), CHAPARRAL: (0.15, -0.4)}))
    if cv.chance(0.1):
        cv.blob(float(cv.uniform(-0.3, 0.3)), float(cv.uniform(-0.3, 0.3)), float(cv.uniform(0.1, 0.25)), WATER)
    if cv.chance(0.2):
        cv.road(cv.theta, float(cv.uniform(-0.4, 0.4)), float(cv.uniform(0.05, 0.08)), curve=float(cv.uniform(-1, 1)))
    elif cv.chance(0.2):
        cv.strip(cv.theta, float(cv.uniform(-0.4, 0.4)), float(cv.uniform(0.02, 0.04)), BARE_SOIL, wiggle=0.05)


def _chaparral_scene(cv: _Canvas) -> None:
    cv.ground(_optional(cv, {CHAPARRAL: 1.0}, {BARE_SOIL: (0.6, 0.0), TREES: (0.15, -0.6), GRASS: (0.15, -0.4)}))
    if cv.chance(0.25):
        cv.road(cv.theta, float(cv.uniform(-0.4, 0.4)), float(cv.uniform(0.05, 0.09)), curve=float(cv.uniform(-1, 1)))
    elif cv.chance(0.25):
        cv.strip(cv.theta, float(cv.uniform(-0.4, 0.4)), float(cv.uniform(0.02, 0.04)), BARE_SOIL, wiggle=0.04)
    if cv.chance(0.05):
        cv.block_buildings(0.3, (0.4, 0.7), 0.3, cv.is_class(CHAPARRAL, BARE_SOIL), (0.015, 0.03))


def _river(cv: _Canvas) -> None:
    cover = (GRASS, TREES, BARE_SOIL)[int(cv.rng.choice(3, p=(0.5, 0.3, 0.2)))]
    cv.ground(_optional(cv, {cover: 0.3}, {TREES: (0.4, 0.3), BARE_SOIL: (0.3, -0.2), GRASS: (0.3, 0.0)}))
    phi = cv.theta
    sand = float(cv.uniform(0.02, 0.05)) if cv.chance(0.3) else 0.0
    if cv.chance(0.6):
        width = float(cv.uniform(0.15, 0.45))
        amp, freq, phase, off = cv.river(phi, float(cv.uniform(-0.15, 0.15)), width, sand)
        if cv.chance(0.1):  # docks from one bank
            n = int(cv.rng.integers(1, 4))
            a = cv.uniform(-0.4, 0.4, n)
            side = float(cv.rng.choice((-1, 1)))
            bank = off + amp * np.sin(2 * math.pi * freq * a + phase) + side * (width / 2 + sand + 0.01)
            cx, cy = cv.to_pixels(phi, a, bank)
            length = cv.uniform(0.35, 0.6, n) * width * cv.size
            direction = phi - side * math.pi / 2
            cv.docks(cx, cy, length, cv.uniform(0.015, 0.025, n) * cv.size, np.full(n, direction, np.float32))
        if cv.chance(0.15):
            cv.road(phi + math.pi / 2, float(cv.uniform(-0.3, 0.3)), float(cv.uniform(0.06, 0.1)))
            if cv.chance(0.5):
                cv.cars(int(cv.rng.integers(1, 4)), cv.cls == ROAD)
    else:
        if sand:
            cv.blob(
                float(cv.uniform(-0.2, 0.2)), float(cv.uniform(-0.2, 0.2)), float(cv.uniform(0.3, 0.5)) + sand, SAND
            )
        cv.blob(float(cv.uniform(-0.2, 0.2)), float(cv.uniform(-0.2, 0.2)), float(cv.uniform(0.25, 0.5)), WATER)
    if cv.chance(0.15):
        cv.block_buildings(0.3, (0.4, 0.7), 0.3, cv.is_class(GRASS, TREES, BARE_SOIL), (0.015, 0.03))
    if cv.chance(0.2):
        cv.scatter_ships(int(cv.rng.integers(1, 3)), 0.025, 0.06)


def _beach(cv: _Canvas) -> None:
    land = (GRASS, PAVEMENT, TREES, BARE_SOIL)[int(cv.rng.choice(4, p=(0.4, 0.25, 0.15, 0.2)))]
    cv.ground(_optional(cv, {land: 0.0}, {TREES: (0.3, 0.0), PAVEMENT: (0.25, 0.0), GRASS: (0.3, 0.0)}))
    phi = cv.theta
    off = float(cv.uniform(-0.3, 0.2))
    if cv.chance(0.2):
        cv.road(phi, off - float(cv.uniform(0.25, 0.4)), float(cv.uniform(0.06, 0.1)))
    cv.coast(phi, off, float(cv.uniform(0.08, 0.3)), float(cv.uniform(0.0, 0.04)))
    if cv.chance(0.3):
        cv.block_buildings(0.3, (0.4, 0.75), 0.5, cv.is_class(GRASS, TREES, PAVEMENT, BARE_SOIL), (0.02, 0.05))
    if cv.chance(0.25):
        cv.cars(int(cv.rng.integers(1, 6)), cv.is_class(ROAD, PAVEMENT))
    if cv.chance(0.2):
        cv.scatter_ships(int(cv.rng.integers(1, 3)), 0.02, 0.06)


def _harbor(cv: _Canvas) -> None:
    cv.ground(_optional(cv, {PAVEMENT: 1.0}, {GRASS: (0.3, 0.0), TREES: (0.2, -0.3)}))
    phi = cv.theta
    off = float(cv.uniform(-0.35, 0.0))
    cv.coast(phi, off, 0.0, 0.0)
    if cv.chance(0.4):
        cv.block_buildings(0.3, (0.5, 0.85), 0.6, cv.half_plane(phi, off - 0.02) & _ground_mask(cv), (0.02, 0.05))
    if cv.chance(0.5):
        cv.cars(int(cv.rng.integers(1, 10)), cv.cls == PAVEMENT)
    # Rare labels must not be given away by their context: a quarter of harbours are a plain quay without
    # docks, and a third of marinas have no boat in, so telling them apart takes seeing docks and boats.
    pitch = float(cv.uniform(0.12, 0.22))
    a = np.arange(-0.7, 0.7, pitch) + cv.uniform(0, pitch)
    a = a[(cv.rng.random(a.size) < 0.8) & cv.chance(0.75)].astype(np.float32)
    n = len(a)
    length = cv.uniform(0.15, 0.45, n)
    width = cv.uniform(0.015, 0.035, n)
    cx, cy = cv.to_pixels(phi, a, np.full(n, off - 0.01, np.float32))
    direction = np.full(n, phi + math.pi / 2, np.float32)
    cv.docks(cx, cy, length * cv.size, width * cv.size, direction)
    # boats moored along both sides of each dock, parallel to it
    per = 6
    t = cv.uniform(0.1, 0.9, n * per) * np.repeat(length, per)
    side = cv.rng.choice((-1.0, 1.0), n * per).astype(np.float32)
    half = cv.uniform(0.02, 0.05, n * per)
    gap = np.repeat(width, per) / 2 + 0.35 * half + 0.004
    ba, bb = np.repeat(a, per) + side * gap, off + t
    bx, by = cv.to_pixels(phi, ba, bb)
    keep = cv.rng.random(n * per) < (cv.uniform(0.2, 0.8) if cv.chance(0.65) else 0.0)
    cv.ships(
        bx[keep], by[keep], half[keep] * cv.size, np.full(int(keep.sum()), phi + math.pi / 2, np.float32), wake=False
    )
    if cv.chance(0.35):
        cv.scatter_ships(int(cv.rng.integers(1, 3)), 0.04, 0.12)


def _airport(cv: _Canvas) -> None:
    cv.ground({GRASS: 0.0, PAVEMENT: float(cv.uniform(-0.2, 0.4))}, cells=2)
    phi = cv.theta
    apron = cv.half_plane(phi, float(cv.uniform(-0.2, 0.3)))
    cv.region(apron, PAVEMENT)
    if cv.chance(0.5):  # a taxiway with its centre line
        off = float(cv.uniform(0.1, 0.45))
        mask = cv.strip(phi, off, float(cv.uniform(0.06, 0.1)), PAVEMENT)
        _, b = cv.frame(phi)
        cv.blend(mask, cv.soft_line(b - off, 0.004), _YELLOW)
    if cv.chance(0.3):
        cv.block_buildings(0.5, (0.5, 0.9), 0.3, apron & _ground_mask(cv), (0.03, 0.06))
    if cv.chance(0.7):  # else an empty apron: the airport alone must not give 'airplane' away
        cv.airplanes(int(cv.rng.integers(1, 4)))
    if cv.chance(0.25):
        cv.cars(int(cv.rng.integers(1, 5)), cv.cls == PAVEMENT)


def _tank_farm(cv: _Canvas) -> None:
    cv.ground(_optional(cv, {BARE_SOIL: 0.3, PAVEMENT: 0.3}, {GRASS: (0.25, 0.0)}))
    if cv.chance(0.4):
        cv.road(cv.theta, float(cv.uniform(-0.4, 0.4)), float(cv.uniform(0.06, 0.1)))
    if cv.chance(0.7):  # else an industrial yard alike in all but its tanks
        _tank_group(cv, float(cv.uniform(0.2, 0.5)), float(cv.uniform(0.5, 0.95)))
    if cv.chance(0.4):
        cv.block_buildings(0.35, (0.3, 0.6), 0.3, cv.is_class(BARE_SOIL, PAVEMENT, GRASS), (0.02, 0.04))
    if cv.chance(0.2):
        cv.cars(int(cv.rng.integers(1, 5)), cv.is_class(ROAD, PAVEMENT))
    if cv.chance(0.2):
        cv.trees(int(cv.rng.integers(1, 6)), cv.is_class(GRASS, BARE_SOIL), 0.02, 0.04)


def _tank_group(cv: _Canvas, extent: float, keep: float) -> None:
    """Storage tanks on a lattice within ``extent`` of the tile centre, on open ground or pavement."""
    r = float(cv.uniform(0.045, 0.1))
    cx, cy = cv.grid_points(cv.theta, 2.5 * r, keep, extent=extent)
    m = len(cx)
    radius = np.full(m, r * cv.size, np.float32) * cv.uniform(0.85, 1.0, m)
    cv.tanks(cx, cy, radius, cv.is_class(BARE_SOIL, PAVEMENT, GRASS))


def _court_group(cv: _Canvas, n: int) -> None:
    """``n`` tennis courts side by side on open ground, at the best of a few candidate places."""
    hl = float(cv.uniform(0.1, 0.16))
    hw = hl * float(cv.uniform(0.48, 0.55))
    phi = cv.theta + 0.5 * math.pi * int(cv.rng.integers(0, 2))
    allowed = _ground_mask(cv)
    tries = 6
    px, py = cv.sample_points(allowed & (np.abs(cv.x) < 0.3) & (np.abs(cv.y) < 0.3), tries)
    if len(px) == 0:
        return
    c, s = math.cos(phi), math.sin(phi)
    a0 = ((px / cv.size - 0.5) * c + (py / cv.size - 0.5) * s).astype(np.float32)
    b0 = ((py / cv.size - 0.5) * c - (px / cv.size - 0.5) * s).astype(np.float32)
    a = np.repeat(a0, n)
    b = np.repeat(b0, n) + np.tile((np.arange(n) - (n - 1) / 2) * 2.9 * hw, len(a0)).astype(np.float32)
    cx, cy = cv.to_pixels(phi, a, b)
    size = cv.size
    outer = cv.stamp(cx, cy, 1.3 * hl * size, 1.45 * hw * size, phi)
    fit = cv.fraction_on(outer, allowed, len(cx)).reshape(len(a0), n).min(1)
    best = int(np.argmax(fit)) * n + np.arange(n)
    full = np.full(n, 1.0, np.float32)
    cv.courts(cx[best], cy[best], full * hl * size, full * hw * size, full * phi, allowed)


def _sports(cv: _Canvas) -> None:
    cv.ground(_optional(cv, {GRASS: 0.3}, {PAVEMENT: (0.6, 0.3), TREES: (0.5, -0.4)}))
    if cv.chance(0.3):
        cv.road(cv.theta, float(cv.uniform(-0.45, 0.45)), float(cv.uniform(0.06, 0.1)))
    if cv.chance(0.75):  # else a sports ground without courts
        _court_group(cv, int(cv.rng.integers(1, 5)))
    if cv.chance(0.3):
        cv.block_buildings(0.4, (0.3, 0.6), 0.3, _ground_mask(cv), (0.02, 0.04))
    if cv.chance(0.45):
        cv.trees(int(cv.rng.integers(1, 10)), cv.is_class(GRASS, PAVEMENT), 0.02, 0.05)
    if cv.chance(0.3):
        cv.cars(int(cv.rng.integers(1, 6)), cv.is_class(ROAD, PAVEMENT))


def _park(cv: _Canvas) -> None:
    cv.ground({GRASS: 0.6, TREES: float(cv.uniform(-0.8, 0.2))})
    if cv.chance(0.6):  # sand bunkers
        n = int(cv.rng.integers(1, 5))
        cx, cy = cv.sample_points(cv.cls == GRASS, n)
        r = cv.uniform(0.025, 0.06, n) * cv.size
        cv.region_pixels(cv.stamp(cx, cy, r, r * cv.uniform(0.5, 1, n), cv.uniform(0, 3.2, n), "ellipse"), SAND)
    if cv.chance(0.3):
        cv.blob(float(cv.uniform(-0.3, 0.3)), float(cv.uniform(-0.3, 0.3)), float(cv.uniform(0.08, 0.2)), WATER)
        if cv.chance(0.15):  # a rowing boat
            cv.scatter_ships(1, 0.02, 0.035)
    if cv.chance(0.3):
        cv.strip(cv.theta, float(cv.uniform(-0.4, 0.4)), float(cv.uniform(0.015, 0.03)), PAVEMENT, wiggle=0.06)
    if cv.chance(0.06):
        _court_group(cv, 1)
    if cv.chance(0.15):
        cv.road(cv.theta, float(cv.uniform(-0.45, 0.45)), float(cv.uniform(0.06, 0.1)))
    cv.trees(int(cv.rng.integers(0, 12)), cv.cls == GRASS, 0.02, 0.06)


def _mobile_homes(cv: _Canvas) -> None:
    main = GRASS if cv.chance(0.6) else BARE_SOIL
    cv.ground(_optional(cv, {main: 0.3}, {BARE_SOIL: (0.3, 0.3), TREES: (0.4, -0.5), PAVEMENT: (0.3, 0.0)}))
    phi = cv.theta
    block, street = float(cv.uniform(0.3, 0.38)), float(cv.uniform(0.04, 0.06))
    off = float(cv.uniform(0, block))
    _, b = cv.frame(phi)
    bm = (b - off + block / 2) % block - block / 2
    cv.region(np.abs(bm) < street / 2, PAVEMENT)
    hl, hw = float(cv.uniform(0.08, 0.11)), float(cv.uniform(0.022, 0.03))
    pitch = 2 * hw + float(cv.uniform(0.015, 0.03))
    ga = np.arange(-0.75, 0.75, pitch) + cv.uniform(0, pitch)
    centres = off + block * np.arange(-3, 4)
    rows_b = np.concatenate([centres - street / 2 - 0.01 - hl, centres + street / 2 + 0.01 + hl])
    ha, hb = (v.ravel().astype(np.float32) for v in np.meshgrid(ga, rows_b))
    kept = cv.rng.random(ha.size) < 0.85
    cx, cy = cv.to_pixels(phi, ha[kept], hb[kept])
    m = len(cx)
    ang = np.full(m, phi + math.pi / 2, np.float32)
    # A quarter of these estates are rows of small site-built houses instead: the layout alone must not
    # give 'mobile-home' away, the long pale flat-roofed units must.
    homes = cv.chance(0.75)
    cv.buildings(
        cx,
        cy,
        np.full(m, hl * cv.size, np.float32),
        np.full(m, hw * cv.size, np.float32),
        ang,
        cv.is_class(GRASS, BARE_SOIL, TREES, PAVEMENT),
        0.01 if homes else 0.015,
        roof="mobile" if homes else "gable",
        palette=_MOBILE if homes else _ROOFS,
        c=MOBILE_HOME if homes else BUILDINGS,
    )
    if cv.chance(0.45):
        cv.trees(int(cv.rng.integers(1, 10)), cv.is_class(GRASS, BARE_SOIL), 0.02, 0.045)
    if cv.chance(0.6):
        cv.cars(int(cv.rng.integers(1, 8)), cv.cls == PAVEMENT)


def _campus(cv: _Canvas) -> None:
    cv.ground(_optional(cv, {GRASS: 0.4, PAVEMENT: 0.2}, {TREES: (0.4, -0.3)}))
    if cv.chance(0.35):
        cv.road(cv.theta, float(cv.uniform(-0.45, 0.45)), float(cv.uniform(0.07, 0.11)))
    if cv.chance(0.3):
        _parking_lot(cv, cv.half_plane(cv.theta + math.pi / 2, float(cv.uniform(-0.3, 0.0))))
    if cv.chance(0.08):
        _court_group(cv, int(cv.rng.integers(1, 3)))
    cv.block_buildings(float(cv.uniform(0.3, 0.45)), (0.45, 0.8), 0.6, _ground_mask(cv), (0.025, 0.06))
    if cv.chance(0.45):
        cv.trees(int(cv.rng.integers(1, 12)), cv.is_class(GRASS, PAVEMENT), 0.02, 0.05)
    if cv.chance(0.4):
        cv.cars(int(cv.rng.integers(1, 10)), cv.is_class(ROAD, PAVEMENT))


def _bare_land(cv: _Canvas) -> None:
    cv.ground(_optional(cv, {BARE_SOIL: 1.0}, {GRASS: (0.2, -0.2), CHAPARRAL: (0.2, -0.2), PAVEMENT: (0.25, -0.4)}))
    if cv.chance(0.2):
        cv.road(cv.theta, float(cv.uniform(-0.4, 0.4)), float(cv.uniform(0.06, 0.1)))
    if cv.chance(0.06):  # a few tanks on an industrial lot
        _tank_group(cv, 0.15, 0.7)
    if cv.chance(0.2):
        cv.block_buildings(0.35, (0.4, 0.8), 0.4, cv.is_class(BARE_SOIL, PAVEMENT, GRASS), (0.02, 0.05))
    if cv.chance(0.2):
        cv.cars(int(cv.rng.integers(1, 5)), cv.is_class(ROAD, PAVEMENT))


# (name, weight, painter); weights are relative.
SCENES: tuple[tuple[str, float, Callable[[_Canvas], None]], ...] = (
    ("residential", 0.20, _residential),
    ("commercial", 0.08, _commercial),
    ("parking", 0.05, _parking),
    ("roads", 0.09, _roads),
    ("agricultural", 0.09, _agricultural),
    ("forest", 0.08, _forest),
    ("chaparral", 0.06, _chaparral_scene),
    ("river", 0.06, _river),
    ("beach", 0.045, _beach),
    ("harbor", 0.03, _harbor),
    ("airport", 0.035, _airport),
    ("storage-tanks", 0.035, _tank_farm),
    ("sports", 0.035, _sports),
    ("park", 0.05, _park),
    ("mobile-home-park", 0.05, _mobile_homes),
    ("campus", 0.06, _campus),
    ("bare-land", 0.04, _bare_land),
)
_SCENE_P = np.array([w for _, w, _ in SCENES]) / sum(w for _, w, _ in SCENES)


# --- tiles and archives -------------------------------------------------------------------------------------
def _check_size(image_size: int) -> None:
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
    _check_size(image_size)
    rng = np.random.default_rng([seed, index])
    paint_scene = SCENES[int(rng.choice(len(SCENES), p=_SCENE_P))][2]
    canvas = _Canvas(image_size, rng)
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
    _check_size(image_size)
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


def _atomic_save(path: Path, write: Callable[[Path], None]) -> None:
    """Write through a temporary file in the same folder and rename it, so readers never see half a file."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _save_npy(path: Path, array: np.ndarray) -> None:
    with path.open("wb") as fh:
        np.save(fh, array)


def load_or_render(
    num_images: int, image_size: int, seed: int, min_pixels: int, root: Path | None = None
) -> SyntheticArchive:
    """The archive of these parameters: from this process's memory, from ``root``'s cache, or rendered.

    With ``root``, the arrays are cached there as ``synthetic-<N>x<S>px-seed<seed>-min<m>.{images,
    class_maps,labels}.npy`` beside a JSON manifest of the parameters, written last; a cache whose
    manifest differs (another :data:`RENDER_VERSION`, other classes) is rendered again and overwritten.
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
        root.mkdir(parents=True, exist_ok=True)
        for name in parts:
            array = getattr(archive, name)
            _atomic_save(files[name], lambda tmp, a=array: _save_npy(tmp, a))
        _atomic_save(manifest_path, lambda tmp: tmp.write_text(json.dumps(manifest, indent=1)))
    _ARCHIVES[key] = archive
    return archive


class SyntheticAerial(MultiLabelDataset):
    """The synthetic aerial archive as a dataset with the same contract as UC Merced, DLRSD, ….

    Args:
        root: ``None`` (default) keeps everything in memory and writes nothing. A folder caches the
            rendered arrays there (see :func:`load_or_render`) and reuses them when the parameters match.
        split: ``'train'``, ``'val'``, ``'test'`` (a seeded 60/20/20 stratified split), ``'trainval'`` or
            ``'all'``.
        transforms: called on each sample dict.
        download, checksum: accepted for the common signature; there is nothing to download.
        num_images: tiles in the whole archive (all splits together).
        image_size: tile side in pixels, 32 to 512. A tile covers the same ground at every size (objects
            keep their size in tile units), only more finely sampled.
        seed: seed of the scenes and of the split.
        min_pixels: visible pixels a label needs; ``None`` scales it with the tile area
            (:func:`default_min_pixels`).
        fractions: train/val/test shares of the split.

    Ids are ``syn00042`` (the tile index). ``paths`` are placeholders ``<synthetic>/syn00042`` that name no
    file: :meth:`read` takes the image from the rendered array instead, so ``on_bad='skip'`` (which
    re-reads files) is not offered. ``archive`` holds the rendered arrays of all splits;
    :meth:`class_map` gives the per-pixel classes an item's labels come from.
    """

    name: ClassVar[str] = "synthetic"
    CLASSES: ClassVar[tuple[str, ...]] = CLASSES

    def __init__(
        self,
        root: Path | str | None = None,
        split: str = "train",
        transforms: Transform | None = None,
        download: bool = False,
        checksum: bool = False,
        num_images: int = 2000,
        image_size: int = 64,
        seed: int = 0,
        min_pixels: int | None = None,
        fractions: Sequence[float] = DEFAULT_FRACTIONS,
    ) -> None:
        if isinstance(num_images, bool) or not isinstance(num_images, (int, np.integer)):
            raise TypeError(f"num_images must be an int; got {type(num_images).__name__}")
        if num_images < 1:
            raise ValueError(f"num_images must be at least 1; got {num_images}")
        _check_size(image_size)
        if min_pixels is not None and min_pixels < 1:
            raise ValueError(f"min_pixels must be at least 1; got {min_pixels}")
        self.num_images = int(num_images)
        self.image_size = int(image_size)
        self.seed = int(seed)
        self.min_pixels = default_min_pixels(self.image_size) if min_pixels is None else int(min_pixels)
        self.fractions = tuple(float(f) for f in fractions)
        self.cache_root = None if root is None else Path(root)
        super().__init__(
            PLACEHOLDER_ROOT if root is None else root, split, transforms, download, checksum, split_seed=seed
        )
        self._rows = np.array([int(i.removeprefix("syn")) for i in self.ids], dtype=np.int64)

    def _download(self, checksum: bool) -> None:
        """Nothing to fetch: the archive is rendered from its seed."""

    def _index(self) -> ArchiveIndex:
        self.archive = load_or_render(self.num_images, self.image_size, self.seed, self.min_pixels, self.cache_root)
        width = max(5, len(str(self.num_images - 1)))
        ids = [f"syn{i:0{width}d}" for i in range(self.num_images)]
        return ArchiveIndex(ids, [PLACEHOLDER_ROOT / i for i in ids], np.asarray(self.archive.labels), CLASSES)

    def _official_split(self, index: ArchiveIndex) -> dict[str, list[str]]:
        """A stratified split drawn from ``seed``: deterministic, so nothing needs to be stored on disk."""
        assignment = stratified_split(index.labels, self.fractions, self.seed)
        return {name: [index.ids[i] for i in np.flatnonzero(assignment == k)] for k, name in enumerate(SPLITS)}

    def read(self, index: int) -> torch.Tensor:
        """The (3, S, S) uint8 image of item ``index`` of this split (a copy: the archive is shared)."""
        return torch.from_numpy(np.array(self.archive.images[self._rows[index]]))

    def class_map(self, index: int) -> np.ndarray:
        """(S, S) uint8: the index in :attr:`classes` of what is visible at each pixel of item ``index``."""
        return np.array(self.archive.class_maps[self._rows[index]])


def example_indices(label_matrix: np.ndarray, n: int = 16) -> list[int]:
    """``n`` items that together show as many labels as possible, rarest labels first.

    Greedy: while some label is not shown, take the rarest one and, among the items carrying it, the one
    that adds the most labels not yet shown (the lowest index on ties); then fill up with the items whose
    label sets are furthest (in Jaccard distance) from those already chosen. A sample sheet drawn at random
    would show no airplane or ship.
    """
    labels = np.asarray(label_matrix, dtype=bool)
    counts = labels.sum(0)
    chosen: list[int] = []
    shown = np.zeros(labels.shape[1], dtype=bool)
    while len(chosen) < n:
        missing = np.flatnonzero(~shown & (counts > 0))
        if missing.size == 0:
            break
        rarest = missing[np.argmin(counts[missing])]
        carriers = np.flatnonzero(labels[:, rarest])
        carriers = carriers[~np.isin(carriers, chosen)]
        best = int(carriers[np.argmax((labels[carriers] & ~shown).sum(1))])
        chosen.append(best)
        shown |= labels[best]
    as_float = labels.astype(np.float32)
    while len(chosen) < min(n, len(labels)):
        shared = as_float @ as_float[chosen].T if chosen else np.zeros((len(labels), 1), np.float32)
        sizes = as_float.sum(1)
        union = sizes[:, None] + (sizes[chosen][None, :] if chosen else 0) - shared
        distance = (1 - shared / np.maximum(union, 1)).min(1)
        distance[chosen] = -1
        chosen.append(int(np.argmax(distance)))
    return sorted(chosen)


def plot_examples(dataset: MultiLabelDataset, n: int = 16, ncols: int = 4, suptitle: str | None = None) -> Figure:
    """A sample sheet of ``dataset`` (any archive) whose ``n`` tiles show every label, via ``plot_grid``."""
    from macl.data.plotting import plot_grid  # selects matplotlib's Agg backend: only when plotting

    return plot_grid(dataset, example_indices(dataset.label_matrix, n), ncols=ncols, suptitle=suptitle)
