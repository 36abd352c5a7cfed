"""The tile being painted: random draws, geometry, batched shape stamps, painting, land-cover features,
objects, and the sensor model that turns the painted tile into an image.

Painting is in painter's order on a class map and an RGB image at once, so the class map records exactly
what is visible. Every shape is a :class:`Stamp` (the pixels a batch of rotated rectangles or ellipses
covers), so a hundred cars cost a few array operations.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache
from typing import NamedTuple, overload

import numpy as np

from macl.data.synthetic.palette import (
    AIRPLANE,
    AIRPLANE_COLOURS,
    BUILDINGS,
    CAR_COLOURS,
    CARS,
    CLASSES,
    COURT,
    COURT_COLOURS,
    COURT_SURROUND_COLOURS,
    DOCK,
    DOCK_COLOURS,
    GRASS,
    PAVEMENT,
    ROAD,
    ROOF_COLOURS,
    SAND,
    SHIP,
    SHIP_COLOURS,
    TANK_COLOURS,
    TANKS,
    TREES,
    TREES_COLOURS,
    WATER,
    WHITE,
    YELLOW,
)
from macl.data.synthetic.textures import TEXTURES, sigmoid


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


class Stamp(NamedTuple):
    """Pixels covered by a batch of shapes: owner ``k``, row ``r``, column ``c`` and shape-local ``a, b``.

    ``a`` runs along the shape's length and ``b`` across it, both scaled to [-1, 1] inside the shape, so
    shading (roof ridges, court lines, windscreens) is a function of ``(a, b)``.
    """

    k: np.ndarray
    r: np.ndarray
    c: np.ndarray
    a: np.ndarray
    b: np.ndarray

    def select(self, keep: np.ndarray) -> Stamp:
        """Only the pixels where ``keep`` (per pixel) holds."""
        return Stamp(self.k[keep], self.r[keep], self.c[keep], self.a[keep], self.b[keep])

    def of(self, keep_objects: np.ndarray) -> Stamp:
        """Only the pixels of objects where ``keep_objects`` (per object) holds."""
        return self.select(keep_objects[self.k])


class Canvas:
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

    @overload
    def uniform(self, lo: float, hi: float, n: None = None) -> float: ...
    @overload
    def uniform(self, lo: float, hi: float, n: int) -> np.ndarray: ...
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
    ) -> Stamp:
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
            return Stamp(empty_i, empty_i, empty_i, empty_f, empty_f)
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
        return Stamp(k, rows[k, i], cols[k, j], a[k, i, j], b[k, i, j])

    def fraction_on(self, st: Stamp, allowed: np.ndarray, n: int) -> np.ndarray:
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
            self._textures[c] = TEXTURES[c](self)
        return self._textures[c]

    def region(self, mask: np.ndarray, c: int) -> None:
        """Paint the pixels of ``mask`` (S, S) as land cover ``c`` with its texture."""
        self.cls[mask] = c
        np.copyto(self.rgb, self.texture(c), where=mask)

    def region_pixels(self, st: Stamp, c: int) -> None:
        """Paint a stamp's pixels as land cover ``c`` (driveways, sand bunkers, sidewalks)."""
        self.cls[st.r, st.c] = c
        self.rgb[:, st.r, st.c] = self.texture(c)[:, st.r, st.c]

    def paint(self, st: Stamp, c: int, colour: np.ndarray) -> None:
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
                self.blend(mask, centre, YELLOW)
            elif self.chance(0.7):
                self.blend(mask & dash, self.soft_line(b, line), WHITE)
        else:
            lane = width / (2 * lanes)
            for k in range(1, lanes):
                for side in (-1, 1):
                    self.blend(mask & dash, self.soft_line(b - side * k * lane, line), WHITE)
            self.blend(mask, self.soft_line(b, line), YELLOW)
        if self.chance(0.5):
            self.blend(mask, self.soft_line(np.abs(b) - width / 2 + 2 * line, line), WHITE)

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
            self.blend(water, 0.6 * self.soft_line(b - shore - 0.02, 0.012) * sigmoid(3 * self.fine()), WHITE)

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
        palette: Sequence[tuple[float, float, float]] = ROOF_COLOURS,
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
        self.paint(st, TREES, self.pick(TREES_COLOURS, len(cx))[st.k].T * light)

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
        self.paint(st, CARS, self.pick(CAR_COLOURS, len(cx))[st.k].T * light)

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
            self.rgb[:, wk.r, wk.c] += fade * (WHITE[:, None] - self.rgb[:, wk.r, wk.c])
        st = st.of(afloat)
        light = np.where(np.abs(st.b) < 0.45, 0.85, 1.0) + 0.1 * (st.a > 0.5)
        self.paint(st, SHIP, self.stand_out(self.pick(SHIP_COLOURS, m), WATER)[st.k].T * light)

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
        self.paint(st, DOCK, self.pick(DOCK_COLOURS, m)[st.k].T * planks)

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
        colour = self.stand_out(self.pick(AIRPLANE_COLOURS, len(cx)), PAVEMENT)
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
        self.paint(st, TANKS, self.pick(TANK_COLOURS, m)[st.k].T * light)

    def courts(
        self, cx: np.ndarray, cy: np.ndarray, hl: np.ndarray, hw: np.ndarray, ang: np.ndarray, allowed: np.ndarray
    ) -> None:
        """Tennis courts: coloured surround, playing surface, white lines and a dark net."""
        m = len(cx)
        outer = self.stamp(cx, cy, 1.3 * hl, 1.45 * hw, ang)
        ok = self.fraction_on(outer, allowed, m) >= 0.85
        outer = outer.of(ok)
        self.paint(outer, COURT, self.pick(COURT_SURROUND_COLOURS, m)[outer.k].T)
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
        colour = self.pick(COURT_COLOURS, m)[st.k].T
        colour = np.where(lines[None], WHITE[:, None], colour)
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
