"""What every index backend promises: the vocabulary, label filters, and explained hits.

A backend stores, per item, an archive id (a string), a multi-hot label vector and an L2-normalised
embedding, and answers cosine top-``k`` queries, optionally restricted by a :class:`LabelFilter` that
the backend applies *during* the search (faiss: an ID selector over the rows that qualify; Milvus: a
filter expression on the label field), never by over-fetching and dropping. Scores are cosines in
[-1, 1]; a search that finds fewer than ``k`` qualifying items returns fewer (``-inf`` padding in the
score matrix, ``None`` in the id lists is never returned: rows are simply shorter).

:meth:`VectorIndex.hits` turns raw results into :class:`Hit` objects that say which of the query's
labels each hit shares and which it lacks, the same for every backend.
"""

from __future__ import annotations

import difflib
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from macl.arrays import finite_matrix, unit_rows
from macl.errors import ArgumentError, MaclError

Stats = dict[str, list[float]]


class IndexFileError(MaclError, ValueError):
    """An index that cannot be read, or that does not belong with the model in use."""


@dataclass(frozen=True)
class Hit:
    """One search result with its explanation."""

    id: str
    score: float
    labels: tuple[str, ...]
    shared: tuple[str, ...]  # labels of the query the hit also carries
    missing: tuple[str, ...]  # labels of the query the hit lacks


@dataclass(frozen=True)
class LabelFilter:
    """Which items a search may return: those carrying every label of ``require`` and, when ``any_of``
    is given, at least one of ``any_of``. Label names are checked against the index's own."""

    require: tuple[str, ...] = ()
    any_of: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.require or self.any_of)

    def check(self, names: Sequence[str]) -> None:
        """Raise :class:`~macl.errors.ArgumentError` naming an unknown label (and the closest known one)."""
        for label in (*self.require, *self.any_of):
            if label not in names:
                close = difflib.get_close_matches(label, list(names), n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise ArgumentError(f"unknown label {label!r}{hint}; the index's labels: {', '.join(names)}")

    def mask(self, labels: np.ndarray, names: Sequence[str]) -> np.ndarray:
        """(N,) bool: the rows of the (N, C) multi-hot ``labels`` that satisfy the filter."""
        self.check(names)
        column = {name: c for c, name in enumerate(names)}
        ok = np.ones(labels.shape[0], dtype=bool)
        for label in self.require:
            ok &= labels[:, column[label]] > 0
        if self.any_of:
            ok &= (labels[:, [column[label] for label in self.any_of]] > 0).any(1)
        return ok


def normalize_rows(x: np.ndarray, dim: int | None, name: str) -> np.ndarray:
    """``x`` as a C-contiguous float32 (n, dim) matrix of unit rows; a clear error for a wrong shape or NaN."""
    return unit_rows(finite_matrix(x, name, dim, "the index holds embeddings of dimension"))


def check_new_items(
    embeddings: np.ndarray, ids: Sequence[str], labels: np.ndarray | None, n_labels: int
) -> tuple[list[str], np.ndarray]:
    """Validate what :meth:`VectorIndex.add` receives; return the ids as strings and the labels as uint8."""
    names = [str(i) for i in ids]
    if len(names) != embeddings.shape[0]:
        raise ArgumentError(f"{embeddings.shape[0]} embeddings but {len(names)} ids")
    if len(set(names)) != len(names):
        raise ArgumentError("ids must be unique; the batch repeats one")
    if labels is None:
        labels = np.zeros((len(names), n_labels), dtype=np.uint8)
    out = np.asarray(labels, dtype=np.uint8)
    if out.shape != (len(names), n_labels):
        raise ArgumentError(f"labels must have shape ({len(names)}, {n_labels}); got {out.shape}")
    return names, out


class VectorIndex(ABC):
    """Cosine nearest-neighbour index of an archive's embeddings, with ids and labels.

    Subclasses implement storage and search; explanations (:meth:`hits`) and the label vocabulary are
    shared. ``model_hash`` identifies the checkpoint whose embeddings these are and ``normalization``
    the input statistics that model applied, so a query is only ever embedded the way the database was.
    """

    backend: str

    def __init__(
        self, dim: int, label_names: Sequence[str] = (), model_hash: str = "", normalization: Stats | None = None
    ) -> None:
        if dim < 1:
            raise ArgumentError(f"dim must be positive; got {dim}")
        self.dim = dim
        self.label_names = tuple(label_names)
        self.model_hash = model_hash
        self.normalization = normalization
        # The retrieval post-processing the stored vectors went through (macl.postprocess.PostProcessor's
        # state), which a query must go through too; None: plain L2-normalised embeddings.
        self.postprocess: dict[str, Any] | None = None

    # --- the vocabulary every backend implements --------------------------------------------------------
    @property
    @abstractmethod
    def ntotal(self) -> int:
        """Items currently searchable (removed ones excluded)."""

    @abstractmethod
    def add(self, embeddings: np.ndarray, ids: Sequence[str], labels: np.ndarray | None = None) -> None:
        """Append items; ids must be new; ``labels`` (n, C) multi-hot in ``label_names`` order."""

    @abstractmethod
    def remove(self, ids: Sequence[str]) -> None:
        """Delete items by id; an unknown id raises ``KeyError`` naming it."""

    @abstractmethod
    def search(
        self, queries: np.ndarray, k: int, where: LabelFilter | None = None
    ) -> tuple[np.ndarray, list[list[str]]]:
        """``(scores, ids)``: (q, k) cosines best first (``-inf`` past the last hit) and each query's ids."""

    @abstractmethod
    def __contains__(self, image_id: object) -> bool: ...

    @abstractmethod
    def labels_of(self, ids: Sequence[str]) -> np.ndarray:
        """(n, C) uint8 labels of stored items."""

    @abstractmethod
    def embedding_of(self, image_id: str) -> np.ndarray:
        """The stored (full-precision) embedding of one item, (dim,)."""

    @abstractmethod
    def prototype(self, where: LabelFilter) -> tuple[np.ndarray, int]:
        """The (1, dim) mean embedding of the items passing ``where``, and how many there are: the
        archive's own picture of a label combination, what a query by labels searches with."""

    @abstractmethod
    def save(self, path: Path | str) -> None:
        """Persist the index (atomically: an interrupted save leaves the previous one intact)."""

    @abstractmethod
    def describe(self) -> dict[str, Any]:
        """Backend, parameters and sizes, as recorded in the index's metadata."""

    # --- shared ----------------------------------------------------------------------------------------
    def _check_k(self, k: int) -> None:
        if self.ntotal == 0:
            raise ArgumentError("the index is empty: add embeddings before searching")
        if k < 1:
            raise ArgumentError(f"k must be at least 1; got {k}")

    def hits(
        self,
        queries: np.ndarray,
        k: int,
        query_labels: np.ndarray | None = None,
        exclude: Sequence[str | None] | None = None,
        where: LabelFilter | None = None,
    ) -> list[list[Hit]]:
        """Top-``k`` hits per query with their labels and, if ``query_labels`` are known, what they share.

        ``exclude[j]`` is an id to leave out of query ``j``'s results (the query itself, when it is part
        of the database). ``where`` restricts the search to items passing a :class:`LabelFilter`.
        """
        extra = 1 if exclude is not None else 0
        scores, ids = self.search(queries, k + extra, where)
        wanted_all = None if query_labels is None else np.asarray(query_labels, dtype=bool)
        out = []
        for j, row_ids in enumerate(ids):
            row_ids_kept = [i for i in row_ids if exclude is None or i != exclude[j]][:k]
            labels = self.labels_of(row_ids_kept).astype(bool) if row_ids_kept else np.zeros((0, len(self.label_names)))
            position = {image_id: p for p, image_id in enumerate(row_ids)}
            row = []
            for image_id, own in zip(row_ids_kept, labels, strict=True):
                wanted = wanted_all[j] if wanted_all is not None else np.zeros_like(own)
                row.append(
                    Hit(
                        id=image_id,
                        score=float(scores[j, position[image_id]]),
                        labels=self._names(own),
                        shared=self._names(own & wanted),
                        missing=self._names(wanted & ~own),
                    )
                )
            out.append(row)
        return out

    def _names(self, mask: np.ndarray) -> tuple[str, ...]:
        return tuple(self.label_names[c] for c in np.flatnonzero(mask))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(backend={self.backend!r}, dim={self.dim}, ntotal={self.ntotal})"
