"""Retrieval indexes: faiss backends in one process, Milvus when one machine is not enough.

Every backend speaks the same vocabulary (:class:`VectorIndex`: ``add``, ``remove``, ``search`` with an
optional :class:`LabelFilter`, ``ntotal``, ``save``; :func:`open_index` to read one back), stores ids and
labels beside the vectors, and explains its hits (:class:`Hit`). Which backend suits an archive of a
given size and memory budget: :func:`macl.index.recommend.recommend`.
The Milvus backend, :class:`macl.index.milvus_index.MilvusIndex` (extra ``macl[milvus]``), is imported only when used.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from macl.errors import ArgumentError
from macl.index.base import Hit, IndexFileError, LabelFilter, VectorIndex
from macl.index.faiss_index import COMPRESSED, FAISS_BACKENDS, FaissIndex
from macl.index.storage import check_model, load_faiss, load_legacy, read_meta

BACKENDS = (*FAISS_BACKENDS, "milvus")


def open_index(path: Path | str, expected_model_hash: str | None = None, mmap: bool = True) -> VectorIndex:
    """Open the index saved at ``path`` whatever its backend; refuse one built with another model."""
    path = Path(path)
    if path.is_file():  # a version-1 single-file index
        index: VectorIndex = load_legacy(path)
        check_model(path, {"model_hash": index.model_hash}, expected_model_hash)
        return index
    folder, meta = read_meta(path)
    check_model(path, meta, expected_model_hash)
    if meta["backend"] == "milvus":
        from macl.index.milvus_index import MilvusIndex

        index = MilvusIndex.open(meta, folder)
        index.postprocess = meta.get("postprocess")
        return index
    return load_faiss(path, folder, meta, mmap=mmap)


def create_index(
    backend: str,
    dim: int,
    label_names: list[str] | tuple[str, ...] = (),
    model_hash: str = "",
    normalization: dict[str, list[float]] | None = None,
    **params: Any,
) -> VectorIndex:
    """A new, empty index of ``backend`` (a faiss backend, or ``'milvus'`` with ``uri``/``collection``)."""
    if backend == "milvus":
        from macl.index.milvus_index import MilvusIndex

        return MilvusIndex(dim, label_names, model_hash, normalization, **params)
    if backend not in FAISS_BACKENDS:
        raise ArgumentError(f"index backend must be one of {BACKENDS}; got {backend!r}")
    return FaissIndex(dim, backend, label_names, model_hash, normalization, **params)


__all__ = [
    "BACKENDS",
    "COMPRESSED",
    "FAISS_BACKENDS",
    "FaissIndex",
    "Hit",
    "IndexFileError",
    "LabelFilter",
    "VectorIndex",
    "create_index",
    "open_index",
]
