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

The package, one job a module: :mod:`~macl.data.synthetic.palette` (the classes and their colours),
:mod:`~macl.data.synthetic.textures` (land-cover textures), :mod:`~macl.data.synthetic.canvas` (the tile
being painted: shapes, land-cover features, objects, sensor model), :mod:`~macl.data.synthetic.scenes`
(the 17 scene types and their weights), :mod:`~macl.data.synthetic.render` (tiles, labels, archives and
their cache) and :mod:`~macl.data.synthetic.dataset` (:class:`SyntheticAerial`).
"""

from macl.data.synthetic.dataset import PLACEHOLDER_ROOT, SyntheticAerial
from macl.data.synthetic.palette import CLASSES
from macl.data.synthetic.render import (
    MAX_IMAGE_SIZE,
    MIN_IMAGE_SIZE,
    RENDER_VERSION,
    SyntheticArchive,
    default_min_pixels,
    labels_from_class_map,
    load_or_render,
    render_archive,
    render_tile,
)
from macl.data.synthetic.scenes import SCENES

__all__ = [
    "CLASSES",
    "MAX_IMAGE_SIZE",
    "MIN_IMAGE_SIZE",
    "PLACEHOLDER_ROOT",
    "RENDER_VERSION",
    "SCENES",
    "SyntheticAerial",
    "SyntheticArchive",
    "default_min_pixels",
    "labels_from_class_map",
    "load_or_render",
    "render_archive",
    "render_tile",
]
