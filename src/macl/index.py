"""A retrieval index over faiss with faiss's vocabulary: ``add``, ``search``, ``remove``, ``ntotal``, save/load.

Cosine similarity is an inner product of L2-normalised vectors, so every backend is an inner-product
index over normalised embeddings: ``'exact'`` (``IndexFlatIP``, brute force, the reference),
``'hnsw'`` (``IndexHNSWFlat``, graph search) and ``'ivf'`` (``IndexIVFFlat``, inverted lists, trained at
the first search on every vector added until then). Scores are cosines clamped to [-1, 1].

Rows are addressed by position (``int64`` keys, ``-1`` where a search returns fewer than ``k`` hits);
``index.ids[key]`` is the archive's string id. The index also keeps each item's labels, when given, so
that a search can say which labels a hit shares with the query and which it lacks.

Saving writes one file through a temporary name and an atomic rename: a save killed half-way leaves the
previous file intact. The file records the embedding dimension, the backend and the hash of the model
checkpoint that produced the embeddings; loading with a different model hash is refused, because
queries embedded by one model are meaningless against a database embedded by another.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np

from macl.errors import MaclError, MissingFileError
from macl.fileio import atomic_write

BACKENDS = ("exact", "hnsw", "ivf")
FORMAT_VERSION = 1


class IndexFileError(MaclError, ValueError):
    """An index file that cannot be read, or that does not belong with the model in use."""


@dataclass(frozen=True)
class Hit:
    """One search result with its explanation."""

    id: str
    score: float
    labels: tuple[str, ...]
    shared: tuple[str, ...]  # labels of the query the hit also carries
    missing: tuple[str, ...]  # labels of the query the hit lacks


def _as_matrix(x: np.ndarray, dim: int | None, name: str) -> np.ndarray:
    array = np.asarray(x, dtype=np.float32)
    if array.ndim != 2:
        raise ValueError(f"{name} must be a 2-D (n, dim) array; got shape {array.shape}")
    if dim is not None and array.shape[1] != dim:
        raise ValueError(f"{name} have dimension {array.shape[1]} but the index holds {dim}-dimensional embeddings")
    if not np.isfinite(array).all():
        raise ValueError(f"{name} contain NaN or inf")
    norms = np.linalg.norm(array, axis=1, keepdims=True)
    return np.ascontiguousarray(array / np.maximum(norms, 1e-12))


class RetrievalIndex:
    """Cosine nearest-neighbour index of an archive's embeddings.

    Args:
        dim: embedding dimension.
        backend: ``'exact'``, ``'hnsw'`` or ``'ivf'``.
        label_names: names of the label columns passed to :meth:`add` (for explanations).
        model_hash: identifies the checkpoint whose embeddings these are (checked by :meth:`load`).
        hnsw_m, ef_search: HNSW graph degree and search breadth (recall/speed trade-off).
        nlist, nprobe: IVF lists (default ``4·sqrt(n)`` at training) and lists probed per query.
    """

    def __init__(
        self,
        dim: int,
        backend: str = "exact",
        label_names: Sequence[str] = (),
        model_hash: str = "",
        hnsw_m: int = 32,
        ef_search: int = 128,
        nlist: int | None = None,
        nprobe: int = 16,
    ) -> None:
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}; got {backend!r}")
        if dim < 1:
            raise ValueError(f"dim must be positive; got {dim}")
        self.dim, self.backend = dim, backend
        self.label_names = tuple(label_names)
        self.model_hash = model_hash
        self.hnsw_m, self.ef_search, self.nlist, self.nprobe = hnsw_m, ef_search, nlist, nprobe
        self.ids: list[str] = []
        self._emb = np.empty((0, dim), dtype=np.float32)
        self._labels = np.empty((0, len(self.label_names)), dtype=np.uint8)
        self._faiss: faiss.Index | None = None
        self._key_of: dict[str, int] = {}

    # --- building ------------------------------------------------------------------------------------
    @property
    def ntotal(self) -> int:
        return len(self.ids)

    def add(self, embeddings: np.ndarray, ids: Sequence[str], labels: np.ndarray | None = None) -> None:
        """Append items; ``ids`` must be new and unique, ``labels`` (n, C) multi-hot if the index has names."""
        emb = _as_matrix(embeddings, self.dim, "embeddings")
        ids = [str(i) for i in ids]
        if len(ids) != emb.shape[0]:
            raise ValueError(f"{emb.shape[0]} embeddings but {len(ids)} ids")
        clash = next((i for i in ids if i in self._key_of), None) or (len(set(ids)) != len(ids) and "duplicates")
        if clash:
            raise ValueError(f"id {clash!r} is already in the index (ids must be unique)")
        if labels is None:
            labels = np.zeros((len(ids), len(self.label_names)), dtype=np.uint8)
        labels = np.asarray(labels, dtype=np.uint8)
        if labels.shape != (len(ids), len(self.label_names)):
            raise ValueError(f"labels must have shape ({len(ids)}, {len(self.label_names)}); got {labels.shape}")
        start = self.ntotal
        self.ids += ids
        self._key_of.update({image_id: start + k for k, image_id in enumerate(ids)})
        self._emb = np.concatenate([self._emb, emb])
        self._labels = np.concatenate([self._labels, labels])
        if self._faiss is not None and self._faiss.is_trained:
            self._faiss.add(emb)
        else:
            self._faiss = None  # (re)built at the next search

    def remove(self, ids: Sequence[str]) -> None:
        """Delete items by id; an unknown id raises ``KeyError`` naming it. Keys of later items shift."""
        missing = [i for i in ids if i not in self._key_of]
        if missing:
            raise KeyError(f"not in the index: {missing[:5]}")
        drop = np.zeros(self.ntotal, dtype=bool)
        drop[[self._key_of[i] for i in ids]] = True
        keep = np.flatnonzero(~drop)
        self.ids = [self.ids[k] for k in keep]
        self._key_of = {image_id: k for k, image_id in enumerate(self.ids)}
        self._emb, self._labels = self._emb[keep], self._labels[keep]
        self._faiss = None

    def _built(self) -> faiss.Index:
        if self._faiss is None:
            self._faiss = self._new_faiss(self._emb)
            self._faiss.add(self._emb)
        return self._faiss

    def _new_faiss(self, training: np.ndarray) -> faiss.Index:
        if self.backend == "exact":
            return faiss.IndexFlatIP(self.dim)
        if self.backend == "hnsw":
            graph = faiss.IndexHNSWFlat(self.dim, self.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            graph.hnsw.efSearch = self.ef_search
            return graph
        n = training.shape[0]
        nlist = self.nlist or max(1, int(4 * np.sqrt(n)))
        nlist = min(nlist, max(1, n // 39))  # faiss wants >= 39 training points per list
        ivf = faiss.IndexIVFFlat(faiss.IndexFlatIP(self.dim), self.dim, nlist, faiss.METRIC_INNER_PRODUCT)
        ivf.train(training)
        ivf.nprobe = min(self.nprobe, nlist)
        return ivf

    # --- searching -----------------------------------------------------------------------------------
    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """``(scores, keys)``, each (q, k): cosines best first and row keys (``-1`` past the last hit)."""
        if self.ntotal == 0:
            raise ValueError("the index is empty: add embeddings before searching")
        if not 1 <= k <= self.ntotal:
            raise ValueError(f"k must be between 1 and ntotal={self.ntotal}; got {k}")
        q = _as_matrix(queries, self.dim, "queries")
        scores, keys = self._built().search(q, k)
        scores = np.where(keys >= 0, np.clip(scores, -1.0, 1.0), -np.inf).astype(np.float32)
        return scores, keys

    def hits(
        self,
        queries: np.ndarray,
        k: int,
        query_labels: np.ndarray | None = None,
        exclude: Sequence[str | None] | None = None,
    ) -> list[list[Hit]]:
        """Top-``k`` hits per query with their labels and, if ``query_labels`` are known, what they share.

        ``exclude[j]`` is an id to leave out of query ``j``'s results (the query itself, when it is part
        of the database).
        """
        q = _as_matrix(queries, self.dim, "queries")
        extra = 1 if exclude is not None else 0
        scores, keys = self.search(q, min(k + extra, self.ntotal))
        if query_labels is not None:
            query_labels = np.asarray(query_labels, dtype=bool)
        out = []
        for j in range(q.shape[0]):
            row = []
            for score, key in zip(scores[j], keys[j], strict=True):
                if key < 0 or (exclude is not None and self.ids[key] == exclude[j]):
                    continue
                labels = self._labels[key].astype(bool)
                wanted = query_labels[j] if query_labels is not None else np.zeros_like(labels)
                row.append(
                    Hit(
                        id=self.ids[key],
                        score=float(score),
                        labels=self._names(labels),
                        shared=self._names(labels & wanted),
                        missing=self._names(wanted & ~labels),
                    )
                )
            out.append(row[:k])
        return out

    def _names(self, mask: np.ndarray) -> tuple[str, ...]:
        return tuple(self.label_names[c] for c in np.flatnonzero(mask))

    def labels_of(self, image_id: str) -> np.ndarray:
        return self._labels[self._key_of[image_id]]

    def embedding_of(self, image_id: str) -> np.ndarray:
        return self._emb[self._key_of[image_id]]

    # --- persistence ---------------------------------------------------------------------------------
    def save(self, path: Path | str) -> None:
        """Write the index to ``path`` atomically (temporary file in the same folder, then rename)."""
        meta = {
            "format": FORMAT_VERSION,
            "dim": self.dim,
            "backend": self.backend,
            "label_names": list(self.label_names),
            "model_hash": self.model_hash,
            "params": {"hnsw_m": self.hnsw_m, "ef_search": self.ef_search, "nlist": self.nlist, "nprobe": self.nprobe},
        }
        graph = faiss.serialize_index(self._built()) if self.backend != "exact" else np.empty(0, np.uint8)
        with atomic_write(path) as fh:
            np.savez(
                fh,
                meta=np.array(json.dumps(meta)),
                ids=np.array(self.ids, dtype=str),
                embeddings=self._emb,
                labels=self._labels,
                faiss=graph,
            )

    @classmethod
    def load(cls, path: Path | str, expected_model_hash: str | None = None) -> RetrievalIndex:
        """Read an index file; refuse a corrupt file or one built with another model (clear messages)."""
        path = Path(path)
        if not path.is_file():
            raise MissingFileError(f"index file {path} does not exist; build one with 'macl index'")
        try:
            with np.load(path, allow_pickle=False) as data:
                meta = json.loads(str(data["meta"]))
                ids, emb, labels, graph = data["ids"], data["embeddings"], data["labels"], data["faiss"]
        except (OSError, ValueError, KeyError, zipfile.BadZipFile, json.JSONDecodeError) as err:
            raise IndexFileError(f"cannot read index file {path}: {err or type(err).__name__}") from err
        if meta.get("format") != FORMAT_VERSION:
            raise IndexFileError(f"{path} has index format {meta.get('format')}, this version reads {FORMAT_VERSION}")
        if expected_model_hash is not None and meta["model_hash"] != expected_model_hash:
            raise IndexFileError(
                f"{path} was built from model {meta['model_hash'][:12] or '(unknown)'}, not the model in use "
                f"({expected_model_hash[:12]}); rebuild the index with this model"
            )
        index = cls(meta["dim"], meta["backend"], meta["label_names"], meta["model_hash"], **meta["params"])
        index.ids = [str(i) for i in ids]
        index._key_of = {image_id: k for k, image_id in enumerate(index.ids)}
        index._emb, index._labels = np.ascontiguousarray(emb, dtype=np.float32), labels.astype(np.uint8)
        if graph.size:
            index._faiss = faiss.deserialize_index(graph)
        return index

    def __repr__(self) -> str:
        return f"RetrievalIndex(backend={self.backend!r}, dim={self.dim}, ntotal={self.ntotal})"


__all__ = ["BACKENDS", "Hit", "IndexFileError", "RetrievalIndex"]
