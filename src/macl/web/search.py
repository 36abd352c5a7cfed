"""The three kinds of query the page asks, answered as :func:`macl.pipeline.search` answers them, in pages.

Each query is turned into a function ``fetch(n)`` returning the top ``n`` hits exactly as the pipeline
computes them (same query vector, same exclusion of the query item, same label filter), so page one
of the web search equals ``macl search``. A page is then cut from those hits after the display
options: ``min_score`` drops hits scoring below it, ``dedupe`` hides a hit nearly identical (cosine ≥
:data:`DUPLICATE_COSINE`) to one already kept. Both can shorten the list, so ``fetch`` is repeated
with a doubled ``n`` until the page is full or the index has no more candidates; ranks are positions
in that filtered list, so pages stay consistent with one another and with a bigger ``k``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from macl.index import Hit, LabelFilter, VectorIndex
from macl.models import Encoder
from macl.pipeline import embed_decoded, id_query, labels_query

DUPLICATE_COSINE = 0.995
QueryKind = Literal["id", "labels", "image"]


@dataclass(frozen=True)
class Page:
    """One page of results: the hits from ``offset`` (their global ranks start at ``offset + 1``)."""

    kind: QueryKind
    query_id: str | None
    query_labels: tuple[str, ...]
    hits: list[Hit]
    offset: int
    k: int
    has_more: bool


@dataclass(frozen=True)
class PageOptions:
    """Which slice of the filtered hit list to return, and how to filter it."""

    k: int
    offset: int = 0
    min_score: float | None = None
    dedupe: bool = False


Fetch = Callable[[int], list[Hit]]


class Searcher:
    """Queries by archive id, by label names, and by image, over one read-only index and its model."""

    def __init__(self, index: VectorIndex, model: Encoder, image_size: int) -> None:
        self.index, self.model, self.image_size = index, model, image_size
        self.names = list(index.label_names)
        self.total = index.ntotal  # read-only: counted once

    def by_id(self, image_id: str, where: LabelFilter, options: PageOptions) -> Page:
        """Neighbours of an indexed item from its stored embedding (the network does not run)."""
        query = id_query(self.index, image_id, where)
        labels = tuple(self.names[c] for c in np.flatnonzero(query.labels[0]))
        return self._page("id", image_id, labels, lambda n: query.hits(self.index, n), options)

    def by_labels(self, labels: Sequence[str], where: LabelFilter, options: PageOptions) -> Page:
        """Items near the mean embedding of those carrying every label of ``labels``, among such items."""
        query = labels_query(self.index, list(labels), where)
        return self._page("labels", None, tuple(labels), lambda n: query.hits(self.index, n), options)

    def by_image(self, image: torch.Tensor, where: LabelFilter, options: PageOptions) -> Page:
        """Neighbours of a decoded (3, H, W) ``uint8`` image, embedded as ``pipeline.embed_image`` does."""
        where.check(self.names)
        vector = embed_decoded(self.model, image, self.image_size, self.index)

        def fetch(n: int) -> list[Hit]:
            return self.index.hits(vector, n, where=where)[0]

        return self._page("image", None, (), fetch, options)

    def _page(
        self, kind: QueryKind, query_id: str | None, labels: tuple[str, ...], fetch: Fetch, opt: PageOptions
    ) -> Page:
        wanted = opt.offset + opt.k + 1  # one more than the page: whether another page exists
        n = min(wanted, self.total)
        while True:
            raw = fetch(n)
            kept = self._filter(raw, opt)
            exhausted = len(raw) < n or n >= self.total
            below = opt.min_score is not None and bool(raw) and raw[-1].score < opt.min_score
            if len(kept) >= wanted or exhausted or below:
                break
            n = min(2 * n, self.total)
        hits = kept[opt.offset : opt.offset + opt.k]
        return Page(kind, query_id, labels, hits, opt.offset, opt.k, len(kept) > opt.offset + opt.k)

    def _filter(self, hits: list[Hit], opt: PageOptions) -> list[Hit]:
        if opt.min_score is not None:
            hits = [h for h in hits if h.score >= opt.min_score]
        if not opt.dedupe or not hits:
            return hits
        kept: list[Hit] = []
        vectors = np.empty((len(hits), self.index.dim), dtype=np.float32)
        for hit in hits:
            vector = self.index.embedding_of(hit.id)
            if kept and float((vectors[: len(kept)] @ vector).max()) >= DUPLICATE_COSINE:
                continue
            vectors[len(kept)] = vector
            kept.append(hit)
        return kept
