"""faiss backends: exact, graph, inverted-list and compressed indexes under one vocabulary.

Cosine similarity is the inner product of L2-normalised vectors, so every backend is an inner-product
index. The backends (``backend=``), by what they keep in memory per item (D = dimension):

============  =====================================  ====================  ===============================
backend       faiss index                             bytes/item in RAM     notes
============  =====================================  ====================  ===============================
exact         ``IndexFlatIP``                         4·D                   brute force, the reference
hnsw          ``IndexHNSWFlat``                       4·D + ~8·M            graph; ``ef_search``
ivf           ``IndexIVFFlat``                        4·D + 8               inverted lists; ``nprobe``
sq8           ``IndexScalarQuantizer`` (8 bit)        D                     flat scan of 8-bit codes
ivf-sq8       ``IndexIVFScalarQuantizer`` (8 bit)     D + 8                 ``nprobe``
hnsw-sq8      ``IndexHNSWSQ`` (8 bit)                 D + ~8·M              graph over codes
ivf-pq        ``IndexIVFPQ`` (``pq_m`` bytes)          pq_m + 8              ``nprobe``
============  =====================================  ====================  ===============================

**Re-ranking.** Quantisation alone is not near-exact (8-bit codes of clustered embeddings lose the
order of close neighbours). With ``rerank = r > 0`` a compressed backend fetches ``r·k`` candidates and
re-scores them with the full float32 vectors, which the index keeps beside the codes — in memory while
it is built, memory-mapped from disk once saved — so only ``r·k`` rows per query are read from them.

**Training** (IVF, PQ, SQ) uses a seeded sample of the items: ``train_per_list`` items per inverted list
(and at least 39 × 256 for PQ's codebooks), never the whole archive. An index is trained at the first
search (or explicitly by :meth:`FaissIndex.train`, which is how one is built from shards: train on a
sample, then :meth:`add` shard by shard into the trained index).

**Removal** is a tombstone: a removed row is excluded from every search through the same faiss ID
selector that applies label filters, so removal never rebuilds (HNSW graphs cannot delete nodes at
all). :meth:`compact` drops tombstoned rows and rebuilds, when they have accumulated.

**Filtered search** passes a bitmap of the rows that carry the wanted labels (and are not removed) to
faiss as an ``IDSelectorBitmap``: every backend, exact, IVF and HNSW alike, only visits those rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import faiss as faiss_module
import numpy as np

from macl.errors import ArgumentError
from macl.index.base import LabelFilter, Stats, VectorIndex, check_new_items, normalize_rows

FAISS_BACKENDS = ("exact", "hnsw", "ivf", "sq8", "ivf-sq8", "hnsw-sq8", "ivf-pq")
COMPRESSED = ("sq8", "ivf-sq8", "hnsw-sq8", "ivf-pq")
# faiss-cpu's bundled type stubs lack the search-parameter classes and SWIG attributes used here.
faiss: Any = faiss_module
PQ_MIN_TRAIN = 39 * 256
# A label filter passing at most 1/SELECTIVE of the rows is answered by an exact scan of those rows.
SELECTIVE = 20  # faiss wants >= 39 points per centroid; a PQ sub-quantiser has 256


class _Rows:
    """An array that grows by appending blocks (shard after shard) and is joined once, when read.

    Re-concatenating on every ``add`` would copy the whole archive once per shard.
    """

    def __init__(self, first: np.ndarray) -> None:
        self._parts = [first]

    def append(self, block: np.ndarray) -> None:
        self._parts.append(block)

    @property
    def array(self) -> np.ndarray:
        if len(self._parts) > 1:
            self._parts = [np.concatenate([np.asarray(part) for part in self._parts])]
        return self._parts[0]


class FaissIndex(VectorIndex):
    """A faiss index of an archive's embeddings, with ids, labels, tombstones and full vectors.

    Args:
        dim: embedding dimension.
        backend: one of :data:`FAISS_BACKENDS` (module docstring).
        label_names: names of the label columns passed to :meth:`add` (for explanations and filters).
        model_hash, normalization: the model the embeddings come from (recorded, checked on load).
        hnsw_m, ef_search: graph degree and search breadth of the HNSW backends.
        nlist, nprobe: inverted lists (default ``4·sqrt(n)``) and lists probed per query.
        pq_m: bytes per PQ code (``dim`` must be divisible by it).
        rerank: re-score ``rerank·k`` candidates with the full vectors (compressed backends; 0: off).
        train_per_list: training sample size per inverted list; seed: the sample's seed.
    """

    def __init__(
        self,
        dim: int,
        backend: str = "exact",
        label_names: Sequence[str] = (),
        model_hash: str = "",
        normalization: Stats | None = None,
        *,
        hnsw_m: int = 32,
        ef_search: int = 128,
        nlist: int | None = None,
        nprobe: int = 16,
        pq_m: int = 32,
        rerank: int = 0,
        train_per_list: int = 64,
        seed: int = 0,
    ) -> None:
        super().__init__(dim, label_names, model_hash, normalization)
        if backend not in FAISS_BACKENDS:
            raise ArgumentError(f"faiss backend must be one of {FAISS_BACKENDS}; got {backend!r}")
        if backend == "ivf-pq" and dim % pq_m:
            raise ArgumentError(f"pq_m={pq_m} must divide the dimension {dim}")
        if rerank < 0 or (rerank and backend not in COMPRESSED):
            raise ArgumentError(f"rerank applies to the compressed backends {COMPRESSED} and must be >= 0")
        self.backend = backend
        self.params: dict[str, Any] = {
            "hnsw_m": hnsw_m,
            "ef_search": ef_search,
            "nlist": nlist,
            "nprobe": nprobe,
            "pq_m": pq_m,
            "rerank": rerank,
            "train_per_list": train_per_list,
            "seed": seed,
        }
        self.ids: list[str] = []
        self._row_of: dict[str, int] = {}
        self._vector_rows = _Rows(np.empty((0, dim), dtype=np.float32))  # full precision; memmap once loaded
        self._label_rows = _Rows(np.empty((0, len(self.label_names)), dtype=np.uint8))
        self._alive_rows = _Rows(np.empty(0, dtype=bool))
        self._faiss: faiss.Index | None = None
        self._pending = 0  # rows at the end of ``_vectors`` not yet in ``_faiss``

    # --- building --------------------------------------------------------------------------------------
    @property
    def _vectors(self) -> np.ndarray:
        return self._vector_rows.array

    @property
    def _labels(self) -> np.ndarray:
        return self._label_rows.array

    @property
    def _alive(self) -> np.ndarray:
        return self._alive_rows.array

    @property
    def ntotal(self) -> int:
        return int(self._alive.sum())

    @property
    def is_trained(self) -> bool:
        return self._faiss is not None

    def add(self, embeddings: np.ndarray, ids: Sequence[str], labels: np.ndarray | None = None) -> None:
        emb = normalize_rows(embeddings, self.dim, "embeddings")
        names, labels = check_new_items(emb, ids, labels, len(self.label_names))
        clash = next((i for i in names if i in self._row_of), None)
        if clash is not None:
            raise ArgumentError(f"id {clash!r} is already in the index (ids must be unique)")
        start = len(self.ids)
        self.ids += names
        self._row_of.update({image_id: start + k for k, image_id in enumerate(names)})
        self._vector_rows.append(emb)
        self._label_rows.append(labels)
        self._alive_rows.append(np.ones(len(names), dtype=bool))
        if self._faiss is not None:
            self._faiss.add(emb)  # trained: the codes go in now; rows keep their order, so faiss id = row
        else:
            self._pending += len(names)

    def training_size(self, n: int) -> int:
        """How many of ``n`` items the quantisers are trained on (0: this backend needs no training)."""
        if self.backend in ("exact", "hnsw"):
            return 0
        if self.backend in ("sq8", "hnsw-sq8"):
            return min(n, 65_536)  # per-dimension 8-bit ranges: a generous sample is cheap
        size = self.params["train_per_list"] * self._nlist(n)
        return min(n, max(size, PQ_MIN_TRAIN) if self.backend == "ivf-pq" else size)

    def training_sample(self, vectors: np.ndarray) -> np.ndarray:
        """The seeded sample of ``vectors`` the quantisers are trained on (all of them when few)."""
        n = vectors.shape[0]
        size = self.training_size(n)
        if size >= n:
            return np.ascontiguousarray(vectors, dtype=np.float32)
        rows = np.sort(np.random.default_rng(self.params["seed"]).choice(n, size, replace=False))
        return np.ascontiguousarray(vectors[rows], dtype=np.float32)

    def train(self, sample: np.ndarray, expected_total: int | None = None) -> None:
        """Create and train the faiss index on ``sample`` (normalised here), before any :meth:`add`.

        ``expected_total`` sizes the default number of inverted lists for the archive to come.
        """
        if self.ids:
            raise ArgumentError("train() builds an empty index; items were already added")
        sample = normalize_rows(sample, self.dim, "training sample")
        self._faiss = self._new_faiss(sample, expected_total or sample.shape[0])

    def _nlist(self, n: int) -> int:
        nlist = self.params["nlist"] or max(1, int(4 * np.sqrt(n)))
        return int(min(nlist, max(1, n // 39)))  # faiss wants >= 39 training points per list

    def _new_faiss(self, training: np.ndarray, n: int) -> faiss.Index:
        d, ip, p = self.dim, faiss.METRIC_INNER_PRODUCT, self.params
        sq8 = faiss.ScalarQuantizer.QT_8bit
        if self.backend == "exact":
            return faiss.IndexFlatIP(d)
        index: Any
        if self.backend == "hnsw":
            index = faiss.IndexHNSWFlat(d, p["hnsw_m"], ip)
        elif self.backend == "hnsw-sq8":
            index = faiss.IndexHNSWSQ(d, sq8, p["hnsw_m"], ip)
        elif self.backend == "sq8":
            index = faiss.IndexScalarQuantizer(d, sq8, ip)
        else:
            nlist = min(self._nlist(n), max(1, training.shape[0] // 39))
            quantizer = faiss.IndexFlatIP(d)
            if self.backend == "ivf":
                index = faiss.IndexIVFFlat(quantizer, d, nlist, ip)
            elif self.backend == "ivf-sq8":
                index = faiss.IndexIVFScalarQuantizer(quantizer, d, nlist, sq8, ip)
            else:
                index = faiss.IndexIVFPQ(quantizer, d, nlist, p["pq_m"], 8, ip)
            index.quantizer_trains_alone = 0
            index.own_fields = True
            quantizer.this.disown()  # the IVF index owns its quantizer from here on
        if not index.is_trained:
            index.train(training)
        return index

    def _built(self) -> faiss.Index:
        """The faiss index with every row in it: trained on a sample at the first search if need be."""
        if self._faiss is None:
            vectors = np.asarray(self._vectors)
            self._faiss = self._new_faiss(self.training_sample(vectors), len(vectors))
            self._pending = len(vectors)
        if self._pending:
            vectors = np.asarray(self._vectors[len(self.ids) - self._pending :], dtype=np.float32)
            for start in range(0, len(vectors), 65_536):
                self._faiss.add(np.ascontiguousarray(vectors[start : start + 65_536]))
            self._pending = 0
        return self._faiss

    def remove(self, ids: Sequence[str]) -> None:
        """Tombstone items by id: they leave every search at once, without a rebuild (:meth:`compact`)."""
        missing = [i for i in ids if i not in self]
        if missing:
            raise KeyError(f"not in the index: {missing[:5]}")
        self._alive[[self._row_of[i] for i in ids]] = False

    def compact(self) -> None:
        """Drop removed rows for good and rebuild (retraining on a sample of what is left)."""
        keep = np.flatnonzero(self._alive)
        self.ids = [self.ids[r] for r in keep]
        self._row_of = {image_id: r for r, image_id in enumerate(self.ids)}
        self._vector_rows = _Rows(np.ascontiguousarray(np.asarray(self._vectors)[keep]))
        self._label_rows = _Rows(self._labels[keep])
        self._alive_rows = _Rows(np.ones(len(keep), dtype=bool))
        self._faiss, self._pending = None, len(keep)

    # --- searching -------------------------------------------------------------------------------------
    def _selector(self, ok: np.ndarray) -> tuple[Any, np.ndarray | None]:
        """A faiss ``IDSelectorBitmap`` of the searchable rows ``ok``, or None when every row is."""
        if ok.all():
            return None, None
        bits = np.packbits(ok, bitorder="little")
        return faiss.IDSelectorBitmap(len(ok), faiss.swig_ptr(bits)), bits  # keep the bits alive

    def _params(self, selector: Any, fetch: int) -> Any:
        p = self.params
        if self.backend in ("hnsw", "hnsw-sq8"):
            return faiss.SearchParametersHNSW(sel=selector, efSearch=max(p["ef_search"], fetch))
        if self.backend.startswith("ivf"):
            index = self._built()
            return faiss.SearchParametersIVF(sel=selector, nprobe=min(p["nprobe"], index.nlist))
        return faiss.SearchParameters(sel=selector) if selector is not None else None

    def search(
        self, queries: np.ndarray, k: int, where: LabelFilter | None = None
    ) -> tuple[np.ndarray, list[list[str]]]:
        self._check_k(k)
        q = normalize_rows(queries, self.dim, "queries")
        index = self._built()
        ok = self._alive & where.mask(self._labels, self.label_names) if where else self._alive
        selected = int(ok.sum())
        if where and selected * SELECTIVE <= len(ok):
            # A rare label combination: inverted lists probed and graph walks would meet too few carriers,
            # so scan exactly the carriers (few rows of the full vectors) -- exact and complete.
            carriers = np.flatnonzero(ok)
            exact = q @ np.asarray(self._vectors[carriers], dtype=np.float32).T
            scores, rows = self._rescore(q, np.broadcast_to(carriers, exact.shape).copy(), exact)
        else:
            selector, _bits = self._selector(ok)
            rerank = self.params["rerank"]
            fetch = min(k * rerank if rerank else k, len(self.ids))
            params = self._params(selector, fetch)
            scores, rows = index.search(q, fetch, params=params) if params is not None else index.search(q, fetch)
            if rerank:
                scores, rows = self._rescore(q, rows)
        pad = max(0, k - rows.shape[1])  # fewer candidates than k (a rare filter): pad as faiss does
        rows = np.pad(rows[:, :k], ((0, 0), (0, pad)), constant_values=-1)
        scores = np.pad(scores[:, :k], ((0, 0), (0, pad)), constant_values=-np.inf)
        scores = np.where(rows >= 0, np.clip(scores, -1.0, 1.0), -np.inf).astype(np.float32)
        return scores, [[self.ids[r] for r in row if r >= 0] for row in rows]

    def _rescore(
        self, q: np.ndarray, rows: np.ndarray, exact: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Exact cosines of the candidate rows (from the full vectors unless given), sorted best first
        (ties: lower row first); rows ``-1`` stay last."""
        if exact is None:
            exact = np.full(rows.shape, -np.inf, dtype=np.float32)
            for j in range(rows.shape[0]):
                valid = rows[j] >= 0
                exact[j, valid] = np.asarray(self._vectors[rows[j, valid]], dtype=np.float32) @ q[j]
        order = np.lexsort((np.where(rows >= 0, rows, np.iinfo(np.int64).max), -exact), axis=1)
        return np.take_along_axis(exact, order, 1), np.take_along_axis(rows, order, 1)

    # --- items -----------------------------------------------------------------------------------------
    def __contains__(self, image_id: object) -> bool:
        row = self._row_of.get(str(image_id))
        return row is not None and bool(self._alive[row])

    def labels_of(self, ids: Sequence[str]) -> np.ndarray:
        return self._labels[[self._row_of[i] for i in ids]]

    def embedding_of(self, image_id: str) -> np.ndarray:
        if image_id not in self:
            raise KeyError(f"not in the index: {image_id!r}")
        return np.asarray(self._vectors[self._row_of[image_id]], dtype=np.float32)

    def prototype(self, where: LabelFilter) -> tuple[np.ndarray, int]:
        rows = np.flatnonzero(self._alive & where.mask(self._labels, self.label_names))
        total = np.zeros(self.dim, dtype=np.float64)
        for start in range(0, len(rows), 65_536):  # chunked: the vectors may be memory-mapped
            total += np.asarray(self._vectors[rows[start : start + 65_536]], dtype=np.float64).sum(0)
        return (total / max(len(rows), 1)).astype(np.float32)[None], len(rows)

    # --- persistence -----------------------------------------------------------------------------------
    def describe(self) -> dict[str, Any]:
        index = self._built()
        code_bytes = faiss.serialize_index(index).nbytes if index.ntotal else 0
        return {
            "backend": self.backend,
            "params": dict(self.params),
            "ntotal": self.ntotal,
            "rows": len(self.ids),
            "faiss_bytes": int(code_bytes),
            "bytes_per_item": code_bytes / max(len(self.ids), 1),
        }

    def save(self, path: Path | str) -> None:
        from macl.index.storage import save_faiss

        save_faiss(self, Path(path))

    @property
    def faiss_index(self) -> faiss.Index:
        """The underlying faiss index, built (for persistence and measurements)."""
        return self._built()

    def _restore(
        self, ids: list[str], vectors: np.ndarray, labels: np.ndarray, alive: np.ndarray, index: faiss.Index
    ) -> None:
        """Fill a fresh instance from stored parts (:mod:`macl.index.storage`)."""
        self.ids, self._row_of = ids, {image_id: r for r, image_id in enumerate(ids)}
        self._vector_rows, self._label_rows, self._alive_rows = _Rows(vectors), _Rows(labels), _Rows(alive)
        self._faiss, self._pending = index, 0
