"""Thumbnails of archive items, found by id in the archive itself — never by a path from a request.

The id → (split dataset, position) map of the index's database splits is built once; an id outside it
is unknown, so a request can name only images the run indexed, however its URL is spelled. Thumbnails
are PNGs with the longest side :data:`THUMB_SIDE` px, kept in a bounded LRU cache (a results page asks
for the same few dozen again and again).
"""

from __future__ import annotations

import io
from functools import lru_cache

from PIL import Image

from macl.archive import ArchiveSplits
from macl.config import Config

THUMB_SIDE = 160


class Thumbnails:
    """PNG thumbnails of the items of ``config``'s database splits, by id."""

    def __init__(self, config: Config, cache_size: int = 512) -> None:
        self._where = ArchiveSplits(config.dataset).locate(list(config.protocol.database))
        self.png = lru_cache(maxsize=cache_size)(self._render)

    def __contains__(self, image_id: object) -> bool:
        return image_id in self._where

    def _render(self, image_id: str) -> bytes:
        """The PNG bytes of ``image_id``'s thumbnail; ``KeyError`` for an id not in the database."""
        dataset, position = self._where[image_id]
        image = Image.fromarray(dataset.read(position).permute(1, 2, 0).numpy())
        scale = THUMB_SIDE / max(image.size)
        size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        out = io.BytesIO()
        image.resize(size, Image.Resampling.LANCZOS).save(out, format="PNG")
        return out.getvalue()
