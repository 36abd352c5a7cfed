"""The textures of the land-cover classes: one function per class, drawing a (3, S, S) colour field.

A canvas draws each texture at most once per tile (:meth:`Canvas.texture`) and paints regions of that
class through it, so all grass on a tile is one lawn.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from macl.data.synthetic.palette import (
    BARE_SOIL,
    CHAPARRAL,
    FIELD,
    FIELD_COLOURS,
    GRASS,
    GRASS_COLOURS,
    PAVEMENT,
    PAVEMENT_COLOURS,
    ROAD,
    ROAD_COLOURS,
    SAND,
    SAND_COLOURS,
    SCRUB_COLOURS,
    SCRUB_SOIL_COLOURS,
    SOIL_COLOURS,
    TREES,
    TREES_COLOURS,
    WATER,
    WATER_COLOURS,
)

if TYPE_CHECKING:
    from macl.data.synthetic.canvas import Canvas


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 + 0.5 * np.tanh(0.5 * x)


def _shade(base: np.ndarray, light: np.ndarray) -> np.ndarray:
    return base[:, None, None] * light[None]


def _mix(c1: np.ndarray, c2: np.ndarray, t: np.ndarray) -> np.ndarray:
    return c1[:, None, None] + (c2 - c1)[:, None, None] * t[None]


def _grass(cv: Canvas) -> np.ndarray:
    """Light green, smooth: two hues in large patches, little fine texture, sometimes mowing stripes."""
    c1 = cv.pick(GRASS_COLOURS)
    c2 = c1 + np.array((0.07, 0.03, -0.02), np.float32) * float(cv.uniform(-1, 1.5))
    light = 1 + 0.05 * cv.smooth(10) + 0.035 * cv.fine()
    if cv.chance(0.3):  # mowing stripes
        a, _ = cv.frame(cv.theta)
        light += 0.04 * np.sign(np.sin(2 * math.pi * a / float(cv.uniform(0.06, 0.12))))
    return _mix(c1, c2, sigmoid(1.5 * cv.smooth(4))) * light[None]


def _trees(cv: Canvas) -> np.ndarray:
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
    return (
        _mix(cv.pick(TREES_COLOURS), cv.pick(TREES_COLOURS), tone)
        * (light + 0.05 * cv.fine() + 0.05 * cv.smooth(3))[None]
    )


def _field(cv: Canvas) -> np.ndarray:
    """Rectangular parcels of crop colours with row stripes (alternating direction) and darker boundaries."""
    a, b = cv.frame(cv.theta)
    wa, wb = float(cv.uniform(0.2, 0.5)), float(cv.uniform(0.15, 0.4))
    pa = np.floor(a / wa + cv.uniform(0, 1)).astype(np.int64)
    pb = np.floor(b / wb + cv.uniform(0, 1)).astype(np.int64)
    palette = cv.pick(FIELD_COLOURS, 5)
    parcel_colour = cv.rng.integers(0, 5, (8, 8))  # parcels repeat every 8, beyond any tile
    colour = palette[parcel_colour[pa % 8, pb % 8]].transpose(2, 0, 1)
    period = float(cv.uniform(0.015, 0.03))
    rows = np.where((pa + pb) % 2 == 0, a, b)
    light = 1 + 0.08 * np.sin(2 * math.pi * rows / period) + 0.04 * cv.smooth(6) + 0.03 * cv.fine()
    edge = np.minimum(np.abs((a / wa + 0.5) % 1 - 0.5) * wa, np.abs((b / wb + 0.5) % 1 - 0.5) * wb)
    light -= 0.12 * (edge < 0.6 / cv.size)
    return colour * light[None]


def _chaparral(cv: Canvas) -> np.ndarray:
    """Tan soil speckled with small dark olive shrubs."""
    shrubs = sigmoid(3 * (cv.smooth(18) + 0.5 * cv.fine() - float(cv.uniform(-0.3, 0.6))))
    light = 1 + 0.04 * cv.fine() + 0.05 * cv.smooth(4)
    return _mix(cv.pick(SCRUB_SOIL_COLOURS), cv.pick(SCRUB_COLOURS), shrubs) * light[None]


def _bare_soil(cv: Canvas) -> np.ndarray:
    """Brown to tan, mottled at two scales (some tan soils resemble sand: a deliberate confusion)."""
    light = 1 + 0.1 * cv.smooth(3) + 0.07 * cv.smooth(12) + 0.05 * cv.fine()
    return _shade(cv.pick(SOIL_COLOURS), light)


def _sand(cv: Canvas) -> np.ndarray:
    """Pale yellow, grainy, with faint ripples."""
    a, _ = cv.frame(float(cv.uniform(0, 2 * math.pi)))
    light = 1 + 0.03 * cv.smooth(4) + 0.05 * cv.fine() + 0.02 * np.sin(2 * math.pi * a / 0.03)
    return _shade(cv.pick(SAND_COLOURS), light)


def _water(cv: Canvas) -> np.ndarray:
    """Blue to murky green, nearly textureless; sometimes wind ripples or sun glint."""
    light = 1 + 0.08 * cv.smooth(3) + 0.02 * cv.smooth(20) + 0.012 * cv.fine()
    if cv.chance(0.4):  # wind ripples
        a, _ = cv.frame(float(cv.uniform(0, 2 * math.pi)))
        light += 0.04 * np.sin(2 * math.pi * a / float(cv.uniform(0.02, 0.05)) + 2 * cv.smooth(3))
    colour = _shade(cv.pick(WATER_COLOURS), light)
    if cv.chance(0.2):  # sun glint
        colour += 0.12 * np.maximum(cv.smooth(2), 0)[None]
    return colour


def _pavement(cv: Canvas) -> np.ndarray:
    """Light to dark grey concrete with stains and, on half the tiles, slab joints aligned with the layout."""
    light = 1 + 0.05 * cv.smooth(4) + 0.04 * cv.fine()
    if cv.chance(0.5):  # concrete slab joints
        a, b = cv.frame(cv.theta)
        w = float(cv.uniform(0.05, 0.1))
        joint = np.minimum(np.abs((a / w) % 1 - 0.5), np.abs((b / w) % 1 - 0.5)) * w > w / 2 - 0.5 / cv.size
        light -= 0.08 * joint
    return _shade(cv.pick(PAVEMENT_COLOURS), light)


def _road(cv: Canvas) -> np.ndarray:
    """Dark asphalt; markings are added by :meth:`Canvas.road`, which knows the road's geometry."""
    return _shade(cv.pick(ROAD_COLOURS), 1 + 0.03 * cv.smooth(6) + 0.04 * cv.fine())


TEXTURES: dict[int, Callable[[Canvas], np.ndarray]] = {
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
