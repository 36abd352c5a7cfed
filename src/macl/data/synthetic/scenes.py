"""The 17 scene types a tile is drawn from, and the table of their weights (:data:`SCENES`).

Each scene type paints land cover first, then objects on the cover they belong on. Its weight and the
probabilities inside set the label frequencies and co-occurrences.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from macl.data.synthetic.canvas import Canvas
from macl.data.synthetic.palette import (
    BARE_SOIL,
    BUILDINGS,
    CHAPARRAL,
    FIELD,
    GRASS,
    MOBILE_HOME,
    MOBILE_HOME_COLOURS,
    PAVEMENT,
    POOL_COLOURS,
    ROAD,
    ROOF_COLOURS,
    SAND,
    TREES,
    WATER,
    WHITE,
    YELLOW,
)


def _optional(cv: Canvas, weights: dict[int, float], extra: dict[int, tuple[float, float]]) -> dict[int, float]:
    """``weights`` plus each ``extra`` class (probability, bias) that wins its coin toss."""
    out = dict(weights)
    for c, (p, bias) in extra.items():
        if cv.chance(p):
            out[c] = bias
    return out


def _ground_mask(cv: Canvas) -> np.ndarray:
    """Where buildings, trees and courts may stand: open ground, not roads, water or other objects."""
    return cv.is_class(GRASS, TREES, BARE_SOIL, PAVEMENT, CHAPARRAL, FIELD, SAND)


def _residential(cv: Canvas) -> None:
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
        cv.paint(st, WATER, cv.pick(POOL_COLOURS, k)[st.k].T)
    if cv.chance(0.6):
        cv.trees(int(cv.rng.integers(1, 18)), cv.is_class(GRASS, BARE_SOIL), 0.02, 0.05)
    if cv.chance(0.6):
        cv.cars(int(cv.rng.integers(1, 10)), cv.is_class(ROAD, PAVEMENT))


def _commercial(cv: Canvas) -> None:
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


def _parking_lot(cv: Canvas, area: np.ndarray | None = None) -> None:
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
    cv.blend(pavement & (np.abs(bm) < depth), cv.soft_line(am - stall / 2, line), WHITE)
    cars_a = np.arange(-0.75, 0.75, stall) + off_a
    cars_b = np.concatenate([(np.arange(-5, 6) * pitch + off_b) + s * depth / 2 for s in (-1, 1)])
    ga, gb = (v.ravel().astype(np.float32) for v in np.meshgrid(cars_a, cars_b))
    occupied = cv.rng.random(ga.size) < cv.uniform(0.3, 0.95)
    cx, cy = cv.to_pixels(phi, ga[occupied], gb[occupied])
    m = len(cx)
    hl = cv.uniform(0.36, 0.44, m) * depth * cv.size
    ang = phi + math.pi / 2 + math.pi * cv.rng.integers(0, 2, m) + cv.rng.normal(0, 0.04, m)
    cv.car_stamps(cx, cy, hl, hl * cv.uniform(0.42, 0.5, m), ang, pavement)


def _parking(cv: Canvas) -> None:
    _parking_lot(cv)
    if cv.chance(0.3):
        cv.road(cv.theta, float(cv.uniform(-0.45, 0.45)), float(cv.uniform(0.08, 0.12)))
    if cv.chance(0.3):
        cv.block_buildings(0.6, (0.6, 0.9), 0.3, _ground_mask(cv), (0.03, 0.06))
    if cv.chance(0.3):
        cv.trees(int(cv.rng.integers(1, 6)), cv.is_class(GRASS, PAVEMENT), 0.02, 0.04)


def _roads(cv: Canvas) -> None:
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


def _agricultural(cv: Canvas) -> None:
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


def _forest(cv: Canvas) -> None:
    cv.ground(_optional(cv, {TREES: 1.2}, {GRASS: (0.25, -0.3), BARE_SOIL: (0.2, -0.6), CHAPARRAL: (0.15, -0.4)}))
    if cv.chance(0.1):
        cv.blob(float(cv.uniform(-0.3, 0.3)), float(cv.uniform(-0.3, 0.3)), float(cv.uniform(0.1, 0.25)), WATER)
    if cv.chance(0.2):
        cv.road(cv.theta, float(cv.uniform(-0.4, 0.4)), float(cv.uniform(0.05, 0.08)), curve=float(cv.uniform(-1, 1)))
    elif cv.chance(0.2):
        cv.strip(cv.theta, float(cv.uniform(-0.4, 0.4)), float(cv.uniform(0.02, 0.04)), BARE_SOIL, wiggle=0.05)


def _chaparral_scene(cv: Canvas) -> None:
    cv.ground(_optional(cv, {CHAPARRAL: 1.0}, {BARE_SOIL: (0.6, 0.0), TREES: (0.15, -0.6), GRASS: (0.15, -0.4)}))
    if cv.chance(0.25):
        cv.road(cv.theta, float(cv.uniform(-0.4, 0.4)), float(cv.uniform(0.05, 0.09)), curve=float(cv.uniform(-1, 1)))
    elif cv.chance(0.25):
        cv.strip(cv.theta, float(cv.uniform(-0.4, 0.4)), float(cv.uniform(0.02, 0.04)), BARE_SOIL, wiggle=0.04)
    if cv.chance(0.05):
        cv.block_buildings(0.3, (0.4, 0.7), 0.3, cv.is_class(CHAPARRAL, BARE_SOIL), (0.015, 0.03))


def _river(cv: Canvas) -> None:
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


def _beach(cv: Canvas) -> None:
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


def _harbor(cv: Canvas) -> None:
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


def _airport(cv: Canvas) -> None:
    cv.ground({GRASS: 0.0, PAVEMENT: float(cv.uniform(-0.2, 0.4))}, cells=2)
    phi = cv.theta
    apron = cv.half_plane(phi, float(cv.uniform(-0.2, 0.3)))
    cv.region(apron, PAVEMENT)
    if cv.chance(0.5):  # a taxiway with its centre line
        off = float(cv.uniform(0.1, 0.45))
        mask = cv.strip(phi, off, float(cv.uniform(0.06, 0.1)), PAVEMENT)
        _, b = cv.frame(phi)
        cv.blend(mask, cv.soft_line(b - off, 0.004), YELLOW)
    if cv.chance(0.3):
        cv.block_buildings(0.5, (0.5, 0.9), 0.3, apron & _ground_mask(cv), (0.03, 0.06))
    if cv.chance(0.7):  # else an empty apron: the airport alone must not give 'airplane' away
        cv.airplanes(int(cv.rng.integers(1, 4)))
    if cv.chance(0.25):
        cv.cars(int(cv.rng.integers(1, 5)), cv.cls == PAVEMENT)


def _tank_farm(cv: Canvas) -> None:
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


def _tank_group(cv: Canvas, extent: float, keep: float) -> None:
    """Storage tanks on a lattice within ``extent`` of the tile centre, on open ground or pavement."""
    r = float(cv.uniform(0.045, 0.1))
    cx, cy = cv.grid_points(cv.theta, 2.5 * r, keep, extent=extent)
    m = len(cx)
    radius = np.full(m, r * cv.size, np.float32) * cv.uniform(0.85, 1.0, m)
    cv.tanks(cx, cy, radius, cv.is_class(BARE_SOIL, PAVEMENT, GRASS))


def _court_group(cv: Canvas, n: int) -> None:
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


def _sports(cv: Canvas) -> None:
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


def _park(cv: Canvas) -> None:
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


def _mobile_homes(cv: Canvas) -> None:
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
        palette=MOBILE_HOME_COLOURS if homes else ROOF_COLOURS,
        c=MOBILE_HOME if homes else BUILDINGS,
    )
    if cv.chance(0.45):
        cv.trees(int(cv.rng.integers(1, 10)), cv.is_class(GRASS, BARE_SOIL), 0.02, 0.045)
    if cv.chance(0.6):
        cv.cars(int(cv.rng.integers(1, 8)), cv.cls == PAVEMENT)


def _campus(cv: Canvas) -> None:
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


def _bare_land(cv: Canvas) -> None:
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
SCENES: tuple[tuple[str, float, Callable[[Canvas], None]], ...] = (
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


def pick_scene(rng: np.random.Generator) -> Callable[[Canvas], None]:
    """The painter of a scene type drawn by its weight (one draw from ``rng``)."""
    return SCENES[int(rng.choice(len(SCENES), p=_SCENE_P))][2]
