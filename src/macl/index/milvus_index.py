"""Milvus backend: the archive lives in a Milvus collection, embedded (milvus-lite) or on a server.

``uri`` is either a local milvus-lite database (a path ending in ``.db``; milvus-lite keeps it as a
folder) or a Milvus server or cluster (``http://host:19530``); both go through the same
``pymilvus.MilvusClient`` calls, so what the tests check on milvus-lite is what runs against a cluster.

**Schema.** One row per item: ``pk`` (INT64 primary key that this class assigns, counting up),
``id`` (VARCHAR, the archive id, unique: :meth:`MilvusIndex.add` refuses one already stored),
``labels`` (ARRAY of VARCHAR, the *names* of the labels the item carries, so a :class:`LabelFilter`
becomes an ``array_contains_all`` / ``array_contains_any`` expression that the database evaluates
during the search) and ``vector`` (FLOAT_VECTOR, L2-normalised, searched by inner product = cosine).

**Primary keys are ours**, not ``auto_id``: ties between equal scores are broken by ``pk`` (insertion
order, as faiss breaks them by row), and :meth:`MilvusIndex.prototype` pages through the collection by
``pk`` range, needing neither an iterator nor a sort. The next free key is a collection property,
``macl.next_pk``, *reserved before* each insert, so a crash between the two leaves a gap, never a key
used twice. One writer at a time is assumed (milvus-lite enforces it for a local file; on a server it
is the caller's duty).

**The collection describes itself**: properties record the label vocabulary and the model hash, so a
collection is only reused, or reopened, by an index with the same dimension, labels, model and index
type; anything else is an :class:`IndexFileError` naming the mismatch. With ``create=True`` an existing
matching collection is *reused* (its items stay; adding an id already there is an error), never
dropped: data in a database is not silently destroyed.

**Consistency.** The collection is created with ``Strong`` consistency, so a count or search right
after an insert or delete sees it; :attr:`MilvusIndex.ntotal` is a ``count(*)`` query, exact at any
moment. Every insert and delete is followed by a flush, so another process reopening the database
(:func:`macl.index.open_index`) finds the data in sealed segments, not only in a write-ahead log.
milvus-lite builds a flushed segment's HNSW or IVF index in a background thread and searches the
segment exactly until it is attached (``describe_index`` reports it finished all along); ``ef`` and
``nprobe`` are honoured once it is, with faiss's recall at the same settings.

**A local database is single-process**: milvus-lite holds an exclusive lock on the ``.db`` folder while
open. A second process fails at once (no hang); this class reports that as an :class:`IndexFileError`
saying the file is in use. :meth:`MilvusIndex.close` releases the database once no index in this
process uses it any more, so another process can then open it.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
from pymilvus import DataType, MilvusClient, MilvusException

from macl.errors import ArgumentError, MissingFileError
from macl.index.base import IndexFileError, LabelFilter, Stats, VectorIndex, check_new_items, normalize_rows

INDEX_TYPES = ("FLAT", "HNSW", "IVF_FLAT")
SERVER_SCHEMES = ("http://", "https://", "tcp://", "unix:")
HNSW_EF_CONSTRUCTION = 200  # build-time breadth of the graph; Milvus's customary value
ID_MAX_BYTES = 1024  # VARCHAR length of an archive id (paths of images, typically)
LABEL_MAX_BYTES = 256  # VARCHAR length of one label name
MAX_LABELS = 4096  # Milvus caps an ARRAY field's capacity at 4096 elements
MAX_TOPK = 16_384  # Milvus caps a search's limit (and a query's window) at 16 384
QUERY_BATCH = 1024  # ids per ``id in [...]`` lookup and queries per search request: bounded requests
INSERT_BATCH_BYTES = 16 << 20  # rows per insert request: well under gRPC's message limit
_NEXT_PK = "macl.next_pk"
_LABEL_NAMES = "macl.label_names"
_MODEL_HASH = "macl.model_hash"

# Local databases this process has open, with how many MilvusIndex objects use each: milvus-lite runs
# one in-process server per database, shared by every client, and it may only stop with the last.
_local_users: Counter[Path] = Counter()


def _literal(value: str) -> str:
    """``value`` as a double-quoted string literal of Milvus's filter grammar: milvus-lite's parser and
    the server's agree on the escapes ``\\\\`` and ``\\"``. Values with control characters never get
    here (:func:`_storable`): the two parsers do not share escapes for all of them."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _list_literal(values: Iterable[str]) -> str:
    return "[" + ", ".join(_literal(v) for v in values) + "]"


def _storable(value: str) -> bool:
    """Whether ``value`` can be written in a filter expression: no control characters at all (an id
    with a newline could not be stored by the faiss backends either)."""
    return not any(ord(ch) < 32 or ord(ch) == 127 for ch in value)


def _is_local(uri: str) -> bool:
    return uri.endswith(".db") and not uri.startswith(SERVER_SCHEMES)


class _CaptureFailure(logging.Filter):
    """Keeps, instead of printing, the exception milvus-lite logs when it cannot open a database.

    pymilvus turns that failure into a bare "Open local milvus failed"; the logged exception says why
    (typically that another process holds the lock), and its traceback is noise for a command-line user.
    """

    def __init__(self) -> None:
        super().__init__()
        self.error: BaseException | None = None

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[1] is not None:
            self.error = record.exc_info[1]
            return False
        return True


@contextmanager
def _milvus_lite_failures() -> Iterator[_CaptureFailure]:
    catcher = _CaptureFailure()
    logger = logging.getLogger("milvus_lite.server_manager")
    logger.addFilter(catcher)
    try:
        yield catcher
    finally:
        logger.removeFilter(catcher)


def _connect(uri: str, local_path: Path | None) -> MilvusClient:
    """A client for ``uri``; an :class:`IndexFileError` that says why when the database will not open."""
    with _milvus_lite_failures() as caught:
        try:
            return MilvusClient(uri=uri)
        except MilvusException as err:
            cause = caught.error or err
            # matched by name: importing milvus_lite here would fail where its absence is the error
            if local_path is not None and type(cause).__name__ == "DataDirLockedError":
                raise IndexFileError(
                    f"milvus database {local_path} is in use by another process; close the index there "
                    "first (milvus-lite lets one process at a time open a .db)"
                ) from cause
            raise IndexFileError(f"cannot open milvus database {uri}: {cause}") from err


class MilvusIndex(VectorIndex):
    """A Milvus collection of an archive's embeddings, ids and label names (module docstring).

    Args:
        dim, label_names, model_hash, normalization: as for every :class:`VectorIndex`.
        uri: a local milvus-lite database (``*.db``) or a server (``http://host:19530``).
        collection: the collection's name within the database.
        index_type: ``FLAT`` (exact), ``HNSW`` (graph; ``hnsw_m``, ``ef_search``) or ``IVF_FLAT``
            (inverted lists; ``nlist``, ``nprobe``).
        create: create the collection if it does not exist (reuse it if it matches); False opens an
            existing one only.
        replace: drop an existing collection of that name first (what rebuilding an index means:
            ``macl index`` asks for it explicitly; nothing else ever drops data).
    """

    backend = "milvus"

    def __init__(
        self,
        dim: int,
        label_names: Sequence[str] = (),
        model_hash: str = "",
        normalization: Stats | None = None,
        *,
        uri: str,
        collection: str = "archive",
        index_type: str = "HNSW",
        hnsw_m: int = 32,
        ef_search: int = 128,
        nlist: int = 1024,
        nprobe: int = 16,
        create: bool = True,
        replace: bool = False,
    ) -> None:
        super().__init__(dim, label_names, model_hash, normalization)
        self._check_arguments(uri, index_type, hnsw_m, ef_search, nlist, nprobe)
        self.uri = uri
        self.collection = collection
        self.params: dict[str, Any] = {
            "index_type": index_type,
            "hnsw_m": hnsw_m,
            "ef_search": ef_search,
            "nlist": nlist,
            "nprobe": nprobe,
        }
        self._client: MilvusClient | None = None
        self._local_path = Path(uri).expanduser().resolve() if _is_local(uri) else None
        if self._local_path is not None:
            if not create and not self._local_path.exists():
                raise MissingFileError(f"milvus database {self._local_path} does not exist")
            self._local_path.parent.mkdir(parents=True, exist_ok=True)
        self._client = _connect(str(self._local_path) if self._local_path is not None else uri, self._local_path)
        if self._local_path is not None:
            _local_users[self._local_path] += 1
        try:
            if replace and self.client.has_collection(collection):
                self.client.drop_collection(collection)
            if self.client.has_collection(collection):
                self._check_collection()
            elif create:
                self._create_collection()
            else:
                raise IndexFileError(f"milvus database {uri} has no collection {collection!r}")
            self.client.load_collection(collection)
        except BaseException:
            self.close()
            raise

    def _check_arguments(self, uri: str, index_type: str, hnsw_m: int, ef_search: int, nlist: int, nprobe: int) -> None:
        if not (_is_local(uri) or uri.startswith(SERVER_SCHEMES)):
            raise ArgumentError(f"milvus uri must be a local '*.db' file or a server address (http://…); got {uri!r}")
        if index_type not in INDEX_TYPES:
            raise ArgumentError(f"milvus index_type must be one of {INDEX_TYPES}; got {index_type!r}")
        for name, value, low in (("hnsw_m", hnsw_m, 2), ("ef_search", ef_search, 1)):
            if value < low:
                raise ArgumentError(f"{name} must be at least {low}; got {value}")
        for name, value in (("nlist", nlist), ("nprobe", nprobe)):
            if not 1 <= value <= 65_536:
                raise ArgumentError(f"{name} must be in [1, 65536] (Milvus's range); got {value}")
        if len(self.label_names) > MAX_LABELS:
            raise ArgumentError(f"a milvus index holds at most {MAX_LABELS} labels; got {len(self.label_names)}")
        if len(set(self.label_names)) != len(self.label_names):
            raise ArgumentError("label names must be unique")
        for name in self.label_names:
            if not name or not _storable(name) or len(name.encode()) > LABEL_MAX_BYTES:
                raise ArgumentError(
                    f"label name {name!r} cannot be stored in milvus: it must be 1 to {LABEL_MAX_BYTES} bytes "
                    "without control characters"
                )

    @property
    def client(self) -> MilvusClient:
        """The live connection (an error after :meth:`close`)."""
        if self._client is None:
            raise ArgumentError(f"the milvus index on {self.uri} ({self.collection}) is closed")
        return self._client

    # --- the collection ---------------------------------------------------------------------------------
    def _create_collection(self) -> None:
        schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("pk", DataType.INT64, is_primary=True)
        schema.add_field("id", DataType.VARCHAR, max_length=ID_MAX_BYTES)
        schema.add_field(
            "labels",
            DataType.ARRAY,
            element_type=DataType.VARCHAR,
            max_capacity=max(len(self.label_names), 1),
            max_length=LABEL_MAX_BYTES,
        )
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=self.dim)
        index_params = self.client.prepare_index_params()
        build = {
            "FLAT": {},
            "HNSW": {"M": self.params["hnsw_m"], "efConstruction": HNSW_EF_CONSTRUCTION},
            "IVF_FLAT": {"nlist": self.params["nlist"]},
        }[self.params["index_type"]]
        # Nested under "params" (sent as one JSON value): pymilvus 3 would otherwise send each build
        # parameter as its own key, which milvus-lite silently ignores (it reads only "params"); the
        # Milvus server reads both forms.
        index_params.add_index(
            field_name="vector", index_type=self.params["index_type"], metric_type="IP", params={"params": build}
        )
        index_params.add_index(field_name="id", index_type="INVERTED")  # fast ``id in [...]`` lookups
        self.client.create_collection(
            self.collection,
            schema=schema,
            index_params=index_params,
            consistency_level="Strong",
            properties={
                _NEXT_PK: "0",
                _LABEL_NAMES: json.dumps(list(self.label_names)),
                _MODEL_HASH: self.model_hash,
            },
        )

    def _properties(self) -> dict[str, str]:
        return dict(self.client.describe_collection(self.collection).get("properties") or {})

    def _check_collection(self) -> None:
        """Refuse an existing collection that holds something else than this index would."""
        where = f"collection {self.collection!r} of milvus database {self.uri}"
        info = self.client.describe_collection(self.collection)
        properties = dict(info.get("properties") or {})
        if _LABEL_NAMES not in properties or _NEXT_PK not in properties:
            raise IndexFileError(f"{where} was not written by macl (it records no label vocabulary)")
        dims = [int(f["params"]["dim"]) for f in info["fields"] if f["name"] == "vector"]
        if dims != [self.dim]:
            raise IndexFileError(f"{where} holds {dims[0] if dims else 'no'}-d vectors, not {self.dim}-d ones")
        labels = json.loads(properties[_LABEL_NAMES])
        if labels != list(self.label_names):
            raise IndexFileError(f"{where} has the labels {labels}, not {list(self.label_names)}")
        if properties.get(_MODEL_HASH, "") != self.model_hash:
            stored = properties.get(_MODEL_HASH, "")[:12] or "(unknown)"
            raise IndexFileError(
                f"{where} holds embeddings of model {stored}, not of {self.model_hash[:12] or '(unknown)'}"
            )
        built = self.client.describe_index(self.collection, "vector").get("index_type")
        if built != self.params["index_type"]:
            raise IndexFileError(f"{where} has a {built} index, not {self.params['index_type']}")

    # --- building ---------------------------------------------------------------------------------------
    def _check_k(self, k: int) -> None:
        """Only ``k`` is checked: an empty collection simply returns no hits, and counting its rows
        (a ``count(*)`` query, ~30 ms on milvus-lite) on every search would double the latency."""
        if k < 1:
            raise ArgumentError(f"k must be at least 1; got {k}")

    @property
    def ntotal(self) -> int:
        rows = self.client.query(self.collection, filter="", output_fields=["count(*)"])
        return int(rows[0]["count(*)"])

    def add(self, embeddings: np.ndarray, ids: Sequence[str], labels: np.ndarray | None = None) -> None:
        emb = normalize_rows(embeddings, self.dim, "embeddings")
        names, labels = check_new_items(emb, ids, labels, len(self.label_names))
        for image_id in names:
            if not _storable(image_id) or len(image_id.encode()) > ID_MAX_BYTES:
                raise ArgumentError(
                    f"id {image_id!r} cannot be stored in milvus: at most {ID_MAX_BYTES} bytes, no control characters"
                )
        if not names:
            return
        clash = next(iter(self._rows(names, ["id"])), None)
        if clash is not None:
            raise ArgumentError(f"id {clash!r} is already in the index (ids must be unique)")
        start = int(self._properties()[_NEXT_PK])
        self.client.alter_collection_properties(self.collection, {_NEXT_PK: str(start + len(names))})
        batch = max(1, INSERT_BATCH_BYTES // (4 * self.dim + 64))
        for lo in range(0, len(names), batch):
            hi = min(lo + batch, len(names))
            rows = [
                {"pk": start + r, "id": names[r], "labels": list(self._names(labels[r])), "vector": vector}
                for r, vector in zip(range(lo, hi), emb[lo:hi].tolist(), strict=True)
            ]
            self.client.insert(self.collection, rows)
        self.client.flush(self.collection)

    def remove(self, ids: Sequence[str]) -> None:
        found = self._rows(ids, ["pk"])
        missing = [i for i in ids if i not in found]
        if missing:
            raise KeyError(f"not in the index: {missing[:5]}")
        pks = [row["pk"] for row in found.values()]
        for lo in range(0, len(pks), QUERY_BATCH):
            self.client.delete(self.collection, ids=pks[lo : lo + QUERY_BATCH])
        self.client.flush(self.collection)

    # --- searching --------------------------------------------------------------------------------------
    def _expression(self, where: LabelFilter | None) -> str:
        """``where`` as a Milvus filter expression on the ``labels`` field ("" when it lets all through)."""
        if not where:
            return ""
        where.check(self.label_names)
        parts = []
        if where.require:
            parts.append(f"array_contains_all(labels, {_list_literal(where.require)})")
        if where.any_of:
            parts.append(f"array_contains_any(labels, {_list_literal(where.any_of)})")
        return " and ".join(parts)

    def _search_params(self, k: int) -> dict[str, Any]:
        index_type, p = self.params["index_type"], self.params
        if index_type == "HNSW":
            return {"metric_type": "IP", "params": {"ef": max(p["ef_search"], k)}}  # Milvus wants ef >= k
        if index_type == "IVF_FLAT":
            return {"metric_type": "IP", "params": {"nprobe": min(p["nprobe"], p["nlist"])}}
        return {"metric_type": "IP", "params": {}}

    def search(
        self, queries: np.ndarray, k: int, where: LabelFilter | None = None
    ) -> tuple[np.ndarray, list[list[str]]]:
        self._check_k(k)
        if k > MAX_TOPK:
            raise ArgumentError(f"k must be at most {MAX_TOPK} for a milvus index (Milvus's limit); got {k}")
        q = normalize_rows(queries, self.dim, "queries")
        expression = self._expression(where)
        params = self._search_params(k)
        scores = np.full((q.shape[0], k), -np.inf, dtype=np.float32)
        ids: list[list[str]] = []
        for lo in range(0, q.shape[0], QUERY_BATCH):
            results = self.client.search(
                self.collection,
                data=q[lo : lo + QUERY_BATCH].tolist(),
                filter=expression,
                limit=k,
                output_fields=["id"],
                search_params=params,
                anns_field="vector",
            )
            for j, hits in enumerate(results, start=lo):
                # best first; equal scores in insertion order (lower pk first), as faiss orders rows
                ranked = sorted(hits, key=lambda h: (-np.float32(h["distance"]), h["pk"]))
                scores[j, : len(ranked)] = np.clip([h["distance"] for h in ranked], -1.0, 1.0)
                ids.append([h["entity"]["id"] for h in ranked])
        return scores, ids

    # --- items ------------------------------------------------------------------------------------------
    def _rows(self, ids: Iterable[str], fields: list[str]) -> dict[str, dict[str, Any]]:
        """The stored rows (``fields`` of them) of those ``ids`` that are in the collection, by id."""
        wanted = list(dict.fromkeys(i for i in map(str, ids) if _storable(i)))
        found: dict[str, dict[str, Any]] = {}
        for lo in range(0, len(wanted), QUERY_BATCH):
            chunk = wanted[lo : lo + QUERY_BATCH]
            rows = self.client.query(
                self.collection,
                filter=f"id in {_list_literal(chunk)}",
                output_fields=["id", *fields],
                limit=len(chunk),
            )
            found.update({row["id"]: row for row in rows})
        return found

    def __contains__(self, image_id: object) -> bool:
        return bool(self._rows([str(image_id)], ["pk"]))

    def labels_of(self, ids: Sequence[str]) -> np.ndarray:
        found = self._rows(ids, ["labels"])
        column = {name: c for c, name in enumerate(self.label_names)}
        out = np.zeros((len(ids), len(self.label_names)), dtype=np.uint8)
        for r, image_id in enumerate(ids):
            if image_id not in found:
                raise KeyError(f"not in the index: {image_id!r}")
            out[r, [column[name] for name in found[image_id]["labels"]]] = 1
        return out

    def embedding_of(self, image_id: str) -> np.ndarray:
        row = self._rows([image_id], ["vector"]).get(image_id)
        if row is None:
            raise KeyError(f"not in the index: {image_id!r}")
        return np.asarray(row["vector"], dtype=np.float32)

    def prototype(self, where: LabelFilter) -> tuple[np.ndarray, int]:
        """Mean embedding of the items passing ``where``, read page by page over ``pk`` ranges (each page
        at most :data:`MAX_TOPK` rows, within Milvus's query window), so any archive size works."""
        expression = self._expression(where)
        end = int(self._properties()[_NEXT_PK])
        total, count = np.zeros(self.dim, dtype=np.float64), 0
        for lo in range(0, end, MAX_TOPK):
            page = f"pk >= {lo} and pk < {lo + MAX_TOPK}"
            rows = self.client.query(
                self.collection,
                filter=f"{page} and ({expression})" if expression else page,
                output_fields=["vector"],
                limit=MAX_TOPK,
            )
            if rows:
                total += np.asarray([row["vector"] for row in rows], dtype=np.float64).sum(0)
                count += len(rows)
        return (total / max(count, 1)).astype(np.float32)[None], count

    # --- persistence ------------------------------------------------------------------------------------
    def describe(self) -> dict[str, Any]:
        return {
            "backend": self.backend,
            "uri": self.uri,
            "collection": self.collection,
            "index_type": self.params["index_type"],
            "params": dict(self.params),
            "ntotal": self.ntotal,
        }

    def save(self, path: Path | str) -> None:
        """Write the index folder: only ``meta.json``, naming the database and collection (the data is
        already in the database, flushed). A local database beside or below the folder is recorded
        relative to the folder's parent, so the pair can be moved together and opened from anywhere;
        one elsewhere is recorded by its absolute path."""
        from macl.index.storage import save_meta

        path = Path(path)
        uri = self.uri
        if self._local_path is not None:
            parent = path.parent.resolve()
            local = self._local_path
            uri = str(local.relative_to(parent)) if local.is_relative_to(parent) else str(local)
        save_meta(self, path, {"uri": uri, "collection": self.collection, "params": dict(self.params)})

    @classmethod
    def open(cls, meta: dict[str, Any], folder: Path) -> MilvusIndex:
        """Reopen the collection a saved folder names (a relative local database is found from the
        folder's parent); an :class:`IndexFileError` if it is gone or holds something else."""
        try:
            uri, collection, params = meta["uri"], meta["collection"], meta["params"]
        except KeyError as err:
            raise IndexFileError(f"index {folder} lacks {err} in its meta.json; rebuild it") from err
        if _is_local(uri) and not Path(uri).expanduser().is_absolute():
            uri = str(folder.parent / uri)
        return cls(
            meta["dim"],
            meta["label_names"],
            meta["model_hash"],
            meta["normalization"],
            uri=uri,
            collection=collection,
            create=False,
            **params,
        )

    def close(self) -> None:
        """Drop the connection; the last index of this process on a local database also stops
        milvus-lite's server for it, which releases the file for other processes. Idempotent."""
        if self._client is None:
            return
        self._client.close()
        self._client = None
        if self._local_path is None:
            return
        _local_users[self._local_path] -= 1
        if _local_users[self._local_path] <= 0:
            del _local_users[self._local_path]
            from milvus_lite.server_manager import server_manager_instance

            server_manager_instance.release_server(str(self._local_path))

    def __enter__(self) -> MilvusIndex:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._client is None else f"ntotal={self.ntotal}"
        return f"MilvusIndex(uri={self.uri!r}, collection={self.collection!r}, dim={self.dim}, {state})"
