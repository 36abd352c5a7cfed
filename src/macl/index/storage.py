"""Saving and opening indexes: one folder per index, replaced atomically, read memory-mapped.

An index is a folder (``archive.index/``) holding ``meta.json`` (format, backend, parameters,
dimension, label names, the model's hash and input normalisation) and, for faiss backends,
``faiss.index`` (codes and structure), ``vectors.npy`` (the full float32 vectors, for exact
re-ranking and search by id), ``labels.npy``, ``alive.npy`` (tombstones) and ``ids.txt``. For a Milvus
backend the folder holds only ``meta.json``: the data lives in the database it names.

Every save goes through :func:`macl.fileio.atomic_directory` (a new folder, then one atomic rename of a
symbolic link), so a save killed half-way leaves the previous index intact. Opening reads
``vectors.npy`` memory-mapped, and inverted-list faiss indexes with ``IO_FLAG_MMAP`` (their lists stay
on disk and are paged in as searched): an opened index costs little RAM and starts fast.

Version 1 indexes (a single ``.npz`` file, written before this format) are still read.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from macl.errors import MissingFileError
from macl.fileio import atomic_directory
from macl.index.base import IndexFileError, VectorIndex
from macl.index.faiss_index import FaissIndex

FORMAT_VERSION = 2


def _meta(index: VectorIndex) -> dict[str, Any]:
    return {
        "format": FORMAT_VERSION,
        "backend": index.backend,
        "dim": index.dim,
        "label_names": list(index.label_names),
        "model_hash": index.model_hash,
        "normalization": index.normalization,
        "postprocess": index.postprocess,
    }


def save_faiss(index: FaissIndex, path: Path) -> None:
    """Write ``index`` as a folder at ``path`` (module docstring), atomically."""
    built = index.faiss_index
    meta = _meta(index) | {"params": index.params, "rows": len(index.ids)}
    with atomic_directory(path) as folder:
        (folder / "meta.json").write_text(json.dumps(meta, indent=1))
        (folder / "ids.txt").write_text("".join(f"{i}\n" for i in index.ids))
        np.save(folder / "vectors.npy", np.asarray(index._vectors, dtype=np.float32))
        np.save(folder / "labels.npy", index._labels)
        np.save(folder / "alive.npy", index._alive)
        faiss.write_index(built, str(folder / "faiss.index"))


def save_meta(index: VectorIndex, path: Path, extra: dict[str, Any]) -> None:
    """A backend whose data lives elsewhere (Milvus) records only where, and with which model."""
    with atomic_directory(path) as folder:
        (folder / "meta.json").write_text(json.dumps(_meta(index) | extra, indent=1))


def read_meta(path: Path) -> tuple[Path, dict[str, Any]]:
    """The resolved folder of the index at ``path`` and its metadata (clear errors for anything else)."""
    if not path.exists():
        raise MissingFileError(f"index {path} does not exist; build one with 'macl index'")
    folder = path.resolve()
    if not folder.is_dir():
        raise IndexFileError(f"{path} is not an index folder")
    try:
        meta = json.loads((folder / "meta.json").read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise IndexFileError(f"cannot read index {path}: {err}") from err
    if meta.get("format") != FORMAT_VERSION:
        raise IndexFileError(f"{path} has index format {meta.get('format')}, this version reads {FORMAT_VERSION}")
    return folder, meta


def check_model(path: Path, meta: dict[str, Any], expected_model_hash: str | None) -> None:
    if expected_model_hash is not None and meta["model_hash"] != expected_model_hash:
        raise IndexFileError(
            f"{path} was built from model {meta['model_hash'][:12] or '(unknown)'}, not the model in use "
            f"({expected_model_hash[:12]}); rebuild the index with this model"
        )


def load_faiss(path: Path, folder: Path, meta: dict[str, Any], mmap: bool = True) -> FaissIndex:
    """Open a saved faiss index: vectors memory-mapped, IVF lists too when ``mmap``."""
    index = FaissIndex(
        meta["dim"], meta["backend"], meta["label_names"], meta["model_hash"], meta["normalization"], **meta["params"]
    )
    try:
        ids = (folder / "ids.txt").read_text().split("\n")[:-1]
        vectors = np.load(folder / "vectors.npy", mmap_mode="r" if mmap else None)
        labels = np.load(folder / "labels.npy")
        alive = np.load(folder / "alive.npy")
        flags = faiss.IO_FLAG_MMAP if mmap and index.backend.startswith("ivf") else 0
        built = faiss.read_index(str(folder / "faiss.index"), flags)
    except (OSError, ValueError, RuntimeError) as err:
        raise IndexFileError(f"cannot read index {path}: {err}") from err
    rows = meta["rows"]
    if not (len(ids) == vectors.shape[0] == labels.shape[0] == alive.shape[0] == built.ntotal == rows):
        raise IndexFileError(f"index {path} is inconsistent ({rows} rows recorded); rebuild it")
    if vectors.shape[1] != index.dim or built.d != index.dim:
        raise IndexFileError(f"index {path} holds {vectors.shape[1]}-d vectors but records dim {index.dim}")
    index._restore(ids, vectors, labels.astype(np.uint8), alive.astype(bool), built)
    index.postprocess = meta.get("postprocess")  # absent from indexes saved before post-processing existed
    return index


def load_legacy(path: Path) -> FaissIndex:
    """A version-1 index file (one ``.npz``: meta, ids, embeddings, labels, optional faiss bytes)."""
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            ids, emb, labels = data["ids"], data["embeddings"], data["labels"]
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, json.JSONDecodeError) as err:
        raise IndexFileError(f"cannot read index file {path}: {err or type(err).__name__}") from err
    if meta.get("format") != 1:
        raise IndexFileError(f"{path} has index format {meta.get('format')}, this version reads 1 and 2")
    params = {k: v for k, v in meta.get("params", {}).items() if k in ("hnsw_m", "ef_search", "nlist", "nprobe")}
    index = FaissIndex(meta["dim"], meta["backend"], meta["label_names"], meta["model_hash"], None, **params)
    if len(ids):
        index.add(emb, [str(i) for i in ids], labels)
    return index
