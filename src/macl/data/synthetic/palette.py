"""What a tile is painted with: the 17 classes (the labels) and the colour anchors of each."""

from __future__ import annotations

import numpy as np

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

# Colour anchors (RGB in [0, 1]); each tile picks one per class and jitters it.
GRASS_COLOURS = ((0.40, 0.52, 0.25), (0.47, 0.58, 0.30), (0.55, 0.58, 0.36), (0.33, 0.47, 0.24))
TREES_COLOURS = ((0.16, 0.27, 0.13), (0.20, 0.30, 0.16), (0.14, 0.22, 0.14), (0.24, 0.30, 0.18))
FIELD_COLOURS = ((0.42, 0.55, 0.24), (0.70, 0.65, 0.40), (0.55, 0.45, 0.32), (0.52, 0.60, 0.30), (0.78, 0.72, 0.52))
SCRUB_SOIL_COLOURS = ((0.58, 0.53, 0.42), (0.52, 0.48, 0.38), (0.60, 0.52, 0.40))
SCRUB_COLOURS = ((0.27, 0.31, 0.20), (0.32, 0.33, 0.24), (0.24, 0.27, 0.19))
SOIL_COLOURS = ((0.56, 0.44, 0.32), (0.62, 0.45, 0.34), (0.66, 0.58, 0.46), (0.48, 0.40, 0.32))
SAND_COLOURS = ((0.86, 0.80, 0.62), (0.82, 0.76, 0.60), (0.90, 0.86, 0.72))
WATER_COLOURS = ((0.10, 0.20, 0.33), (0.13, 0.28, 0.34), (0.22, 0.30, 0.26), (0.08, 0.14, 0.22), (0.20, 0.35, 0.42))
PAVEMENT_COLOURS = ((0.62, 0.62, 0.60), (0.55, 0.55, 0.54), (0.70, 0.68, 0.64), (0.45, 0.45, 0.46))
ROAD_COLOURS = ((0.30, 0.30, 0.32), (0.36, 0.36, 0.37), (0.26, 0.27, 0.28), (0.42, 0.41, 0.40))
ROOF_COLOURS = (
    (0.55, 0.55, 0.56),
    (0.33, 0.33, 0.35),
    (0.58, 0.34, 0.27),
    (0.85, 0.85, 0.83),
    (0.68, 0.60, 0.50),
    (0.38, 0.45, 0.52),
    (0.45, 0.28, 0.22),
    (0.30, 0.40, 0.33),
)
MOBILE_HOME_COLOURS = ((0.88, 0.88, 0.85), (0.80, 0.82, 0.84), (0.78, 0.74, 0.64), (0.70, 0.75, 0.78))
CAR_COLOURS = (
    (0.92, 0.92, 0.92),
    (0.10, 0.10, 0.11),
    (0.65, 0.66, 0.68),
    (0.65, 0.12, 0.10),
    (0.15, 0.22, 0.50),
    (0.35, 0.36, 0.38),
    (0.80, 0.75, 0.55),
)
SHIP_COLOURS = ((0.92, 0.92, 0.90), (0.80, 0.80, 0.80), (0.70, 0.30, 0.15), (0.30, 0.30, 0.32))
AIRPLANE_COLOURS = ((0.93, 0.93, 0.94), (0.82, 0.83, 0.85), (0.75, 0.76, 0.78))
TANK_COLOURS = ((0.90, 0.90, 0.88), (0.78, 0.79, 0.78), (0.70, 0.74, 0.70), (0.45, 0.46, 0.47))
COURT_COLOURS = ((0.25, 0.48, 0.33), (0.22, 0.35, 0.58), (0.66, 0.38, 0.28), (0.35, 0.55, 0.35))
COURT_SURROUND_COLOURS = ((0.20, 0.38, 0.27), (0.55, 0.30, 0.25), (0.45, 0.47, 0.48), (0.18, 0.28, 0.45))
DOCK_COLOURS = ((0.62, 0.60, 0.55), (0.55, 0.45, 0.35), (0.72, 0.70, 0.66))
POOL_COLOURS = ((0.30, 0.68, 0.78), (0.25, 0.58, 0.72))
WHITE = np.array((0.93, 0.93, 0.90), dtype=np.float32)
YELLOW = np.array((0.85, 0.75, 0.30), dtype=np.float32)
