"""Embedding a whole archive into a folder of fixed-size shards: resumable, parallel, flat in memory.

:func:`macl.pipeline.embed_splits` holds every embedding of the archive at once, and a run killed after
hours starts again from nothing. Here the items (the given splits of the configured archive,
concatenated in order) are cut into shards of ``shard_size`` rows, and each shard is embedded and written
as its own file (``shard-00000.npz``: ``vectors`` float32 L2-normalised, ``ids`` str, ``labels`` uint8
multi-hot), atomically, so a killed run leaves only complete shards and a rerun does just the rest. A
process never holds more than one shard's embeddings, and images are resized one at a time
(``ArchiveSplits(decode=False)``), so memory does not grow with the archive.

``manifest.json`` (written before any shard) records what the shards are: the model (the checkpoint's
SHA-256), its input normalisation, the image size, the dataset configuration, the splits, the number of
items and the shard layout, the label names and the embedding dimension. A rerun into the same folder
must match it: shards of two models (or two archives) never mix silently.

Readers (the index builder) take the shards one at a time (:func:`iter_shards`) and train quantisers on
a seeded sample drawn shard by shard (:func:`sample_rows`), so they do not hold the archive either.
"""

from __future__ import annotations

import json
import math
import multiprocessing
import os
import queue
import re
import time
import traceback
import zipfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch.utils.data import ConcatDataset, Subset

from macl.archive import ArchiveSplits
from macl.config import Config
from macl.data.base import Sample
from macl.distributed import environment_world
from macl.embedding import Embeddings, embed
from macl.errors import ArgumentError, MaclError, MissingFileError
from macl.fileio import atomic_write, file_digest
from macl.models import Encoder
from macl.pipeline import load_model

if TYPE_CHECKING:
    from multiprocessing.queues import Queue

FORMAT = 1
MANIFEST = "manifest.json"
_POLL_S = 0.5  # how often a waiting process looks again (for the manifest, for worker messages)
_STALE_TEMPORARY = re.compile(r"\.shard-(\d+)\.npz\..*\.tmp")  # what atomic_write leaves when killed
_NPY_HEADER_READERS = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class ShardManifest:
    """What a shard folder holds; ``manifest.json`` holds every field but ``folder`` (where it was read).

    ``model_hash`` is the checkpoint's SHA-256 (:func:`macl.fileio.file_digest`), ``normalization`` the
    model's input statistics and ``image_size`` the side images were resized to (the checkpoint's
    training size): together what a query must go through to be comparable with the shards.
    """

    format: int
    model_hash: str
    normalization: dict[str, list[float]] | None
    image_size: int
    dataset: dict[str, Any]
    splits: list[str]
    n_items: int
    shard_size: int
    n_shards: int
    label_names: list[str]
    dim: int
    folder: Path = field(compare=False)

    @classmethod
    def load(cls, out_dir: Path | str) -> ShardManifest:
        """The manifest of shard folder ``out_dir``, checked for every field and a consistent layout."""
        folder = Path(out_dir)
        path = folder / MANIFEST
        if not path.is_file():
            raise MissingFileError(
                f"{folder} has no {MANIFEST}: it is not a shard folder, or embedding into it never started; "
                "run the embed command (embed_shards) into it"
            )
        names = [f.name for f in fields(cls) if f.name != "folder"]
        try:
            data = json.loads(path.read_text())
            if not isinstance(data, dict) or sorted(data) != sorted(names):
                raise ValueError(f"expected the keys {', '.join(names)}")
            manifest = cls(**data, folder=folder)
            newer = manifest.format > FORMAT
            consistent = manifest.shard_size >= 1 and manifest.n_shards == math.ceil(
                manifest.n_items / manifest.shard_size
            )
        except (ValueError, TypeError) as err:  # json.JSONDecodeError is a ValueError; TypeError: a wrong type
            raise ShardError(f"{path} is not a shard manifest ({err}); embed into a new folder") from err
        if newer:
            raise ShardError(f"{path} has format {manifest.format}, newer than this macl's {FORMAT}; upgrade macl")
        if not consistent:
            raise ShardError(
                f"{path} is inconsistent: {manifest.n_items} items in shards of {manifest.shard_size} "
                f"cannot make {manifest.n_shards} shards; embed into a new folder"
            )
        return manifest

    def to_json(self) -> str:
        data = {k: v for k, v in asdict(self).items() if k != "folder"}
        return json.dumps(data, indent=1)

    def shard_path(self, index: int) -> Path:
        return self.folder / f"shard-{index:05d}.npz"

    def shard_paths(self) -> list[Path]:
        """Every shard's file, in order (whether written yet or not)."""
        return [self.shard_path(i) for i in range(self.n_shards)]

    def rows(self, index: int) -> int:
        """Items in shard ``index``: ``shard_size``, but fewer in the last shard."""
        return min(self.shard_size, self.n_items - index * self.shard_size)

    def is_complete(self, index: int) -> bool:
        """Whether shard ``index`` is a readable file with the manifest's rows, dimension and label count.

        Only the arrays' headers are read (a few hundred bytes), so checking every shard of a large
        folder on resume costs nothing; a truncated or foreign file fails here (its zip directory, at the
        end of the file, is missing or names other arrays).
        """
        rows = self.rows(index)
        expected = {
            "vectors.npy": ((rows, self.dim), np.dtype(np.float32)),
            "labels.npy": ((rows, len(self.label_names)), np.dtype(np.uint8)),
            "ids.npy": ((rows,), None),  # str of any width
        }
        try:
            with zipfile.ZipFile(self.shard_path(index)) as archive:
                for name, (shape, dtype) in expected.items():
                    with archive.open(name) as fh:
                        reader = _NPY_HEADER_READERS.get(np.lib.format.read_magic(fh))
                        if reader is None:
                            return False
                        found_shape, _, found_dtype = reader(fh)
                        if found_shape != shape or (found_dtype.kind != "U" if dtype is None else found_dtype != dtype):
                            return False
        except (OSError, KeyError, ValueError, zipfile.BadZipFile):
            return False
        return True


def embed_shards(
    config: Config,
    checkpoint: Path | str,
    splits: list[str],
    out_dir: Path | str,
    shard_size: int = 4096,
    workers: int = 1,
    rank: int | None = None,
    world_size: int | None = None,
    progress: Progress | None = None,
    manifest_timeout_s: float = 600.0,
) -> ShardManifest:
    """Embed ``splits`` of the configured archive with the checkpoint's model into shards in ``out_dir``.

    Shard ``i`` holds items ``[i * shard_size, (i + 1) * shard_size)`` of the splits concatenated in
    order; images are resized to the checkpoint's training size (``config.train.image_size`` is not
    used, as for :func:`macl.pipeline.build_index`), and ``config.train.workers`` DataLoader workers
    read them. Returns the folder's manifest.

    **Resuming.** A folder whose manifest matches (same model, dataset, splits, items and shard size)
    is continued: complete shards are kept (checked from their headers; a corrupt one is embedded
    again) and the temporaries a killed run left are removed. A manifest of another model or layout
    raises :class:`ShardError` naming what differs: embed into a new folder instead.

    **Processes on one machine.** ``workers > 1`` starts that many processes, each loading the model
    from the checkpoint and using its share of the CPU threads; they take pending shards from a common
    queue. ``progress(done_items, total_items)`` is called here as shards finish, counting the items of
    this rank's shards (those found complete count as done from the start). A worker that fails stops
    the run with an error naming its shard. The workers are started with 'spawn', which imports the
    caller's main module again: a script calling this with ``workers > 1`` needs the usual
    ``if __name__ == "__main__":`` guard.

    **Several machines.** With ``world_size`` ranks sharing ``out_dir`` (a network folder), rank ``r``
    embeds the shards ``i`` with ``i % world_size == r``; ``rank`` and ``world_size`` default to the
    ``RANK`` and ``WORLD_SIZE`` environment variables that ``torchrun`` sets, else 0 and 1. Rank 0 writes
    the manifest; the other ranks wait up to ``manifest_timeout_s`` for it and check it against their
    own arguments. Run one process per rank and folder: a rank removes its own shards' temporaries.
    Every rank finishing means the folder is complete (:func:`missing_shards` is empty).
    """
    rank, world_size = _rank_and_world(rank, world_size)
    if not splits:
        raise ArgumentError("name at least one split to embed")
    if shard_size < 1:
        raise ArgumentError(f"shard_size must be at least 1; got {shard_size}")
    if workers < 1:
        raise ArgumentError(f"workers must be at least 1; got {workers}")
    out_dir = Path(out_dir)
    expected, model, archive = _prepare(config, Path(checkpoint), splits, shard_size, out_dir)
    if rank == 0:
        _write_or_check_manifest(expected)
    else:
        _wait_for_manifest(expected, rank, manifest_timeout_s)
    mine = list(range(rank, expected.n_shards, world_size))
    _remove_stale_temporaries(out_dir, rank, world_size)
    pending = [i for i in mine if not expected.is_complete(i)]
    total = sum(expected.rows(i) for i in mine)
    done = total - sum(expected.rows(i) for i in pending)
    if progress is not None:
        progress(done, total)

    def finished(index: int) -> None:
        nonlocal done
        done += expected.rows(index)
        if progress is not None:
            progress(done, total)

    processes = min(workers, len(pending))
    if processes <= 1:
        _embed_here(model, archive, config.train.workers, expected, pending, lambda index: None, finished)
    else:
        del model, archive  # the workers open their own
        _embed_in_processes(config, Path(checkpoint), expected, pending, processes, finished)
    return expected


def missing_shards(out_dir: Path | str) -> list[int]:
    """Shards of ``out_dir`` not (completely) written yet: absent, truncated or of the wrong shape."""
    manifest = ShardManifest.load(out_dir)
    return [i for i in range(manifest.n_shards) if not manifest.is_complete(i)]


def iter_shards(out_dir: Path | str) -> Iterator[Embeddings]:
    """Every shard of ``out_dir`` in order, one at a time; all are checked present before the first.

    Checking first means a consumer (an index being built) fails at once on an unfinished folder,
    not after hours of adding shards.
    """
    manifest = ShardManifest.load(out_dir)
    _require_complete(manifest)
    for path in manifest.shard_paths():
        with np.load(path, allow_pickle=False) as data:
            yield Embeddings(data["vectors"], data["labels"], data["ids"].tolist())


def sample_rows(out_dir: Path | str, n: int, seed: int) -> np.ndarray:
    """``n`` vectors drawn uniformly without replacement from all shards, (n, D) float32, in archive order.

    For training quantisers without loading the archive: the rows are chosen first (seeded), then
    each shard holding some is read, one at a time. Shuffle the result if its order matters.
    """
    manifest = ShardManifest.load(out_dir)
    if not 1 <= n <= manifest.n_items:
        raise ArgumentError(f"cannot sample {n} rows from {out_dir}: it holds {manifest.n_items} items")
    _require_complete(manifest)
    chosen = np.sort(np.random.default_rng(seed).choice(manifest.n_items, size=n, replace=False))
    starts = np.arange(manifest.n_shards + 1) * manifest.shard_size
    bounds = np.searchsorted(chosen, starts)  # chosen[bounds[i]:bounds[i + 1]] lie in shard i
    out = np.empty((n, manifest.dim), dtype=np.float32)
    for i, path in enumerate(manifest.shard_paths()):
        lo, hi = bounds[i], bounds[i + 1]
        if lo < hi:
            with np.load(path, allow_pickle=False) as data:
                out[lo:hi] = data["vectors"][chosen[lo:hi] - starts[i]]
    return out


# --- the manifest -----------------------------------------------------------------------------------------
def _rank_and_world(rank: int | None, world_size: int | None) -> tuple[int, int]:
    if rank is None or world_size is None:  # torchrun's environment fills what the caller leaves unset
        env = environment_world()
        rank = env.rank if rank is None else rank
        world_size = env.size if world_size is None else world_size
    own, world = rank, world_size
    if world < 1:
        raise ArgumentError(f"world_size must be at least 1; got {world}")
    if not 0 <= own < world:
        raise ArgumentError(f"rank {own} is outside 0..{world - 1} (world_size {world})")
    return own, world


def _prepare(
    config: Config, checkpoint: Path, splits: list[str], shard_size: int, out_dir: Path
) -> tuple[ShardManifest, Encoder, ArchiveSplits]:
    """The manifest these arguments produce, the checkpoint's model (built to learn its dimension) and the archive."""
    model, state = load_model(checkpoint)
    model_hash = file_digest(checkpoint)
    image_size = int(state["config"]["image_size"])
    archive = ArchiveSplits(config.dataset, decode=False)
    n_items = sum(len(archive.at(split, image_size)) for split in splits)
    if n_items == 0:
        raise ArgumentError(f"nothing to embed: splits {splits} of the archive are empty")
    manifest = ShardManifest(
        format=FORMAT,
        model_hash=model_hash,
        normalization=model.config["normalization"],
        image_size=image_size,
        dataset=asdict(config.dataset),
        splits=list(splits),
        n_items=n_items,
        shard_size=shard_size,
        n_shards=math.ceil(n_items / shard_size),
        label_names=list(archive.classes),
        dim=model.embedding_dim,
        folder=out_dir,
    )
    # As JSON will give it back (tuples become lists), so that comparing with a loaded manifest is exact.
    return ShardManifest(**json.loads(manifest.to_json()), folder=out_dir), model, archive


def _check_manifest(found: ShardManifest, expected: ShardManifest) -> None:
    """Refuse to continue a folder embedded with another model or layout, naming what differs."""
    folder = expected.folder
    if found.model_hash != expected.model_hash:
        raise ShardError(
            f"{folder} holds shards of another model (model {found.model_hash[:12]}, this checkpoint "
            f"{expected.model_hash[:12]}); embed into a new folder, or delete {folder} to start over"
        )
    differ = [
        f.name for f in fields(ShardManifest) if f.compare and getattr(found, f.name) != getattr(expected, f.name)
    ]
    if differ:
        details = "; ".join(f"{k}: {getattr(found, k)!r} there, {getattr(expected, k)!r} now" for k in differ)
        raise ShardError(
            f"{folder / MANIFEST} was written with a different {', '.join(differ)} ({details}); "
            "embed into a new folder, or rerun with the settings it was written with"
        )


def _write_or_check_manifest(expected: ShardManifest) -> None:
    path = expected.folder / MANIFEST
    if path.is_file():
        _check_manifest(ShardManifest.load(expected.folder), expected)
        return
    orphans = sorted(expected.folder.glob("shard-*.npz"))
    if orphans:  # their model and layout are unknown: taking them as done could mix two models silently
        raise ShardError(
            f"{expected.folder} holds shards ({orphans[0].name}, …) but no {MANIFEST}; embed into a new folder, "
            "or delete the shards to start over"
        )
    for stale in expected.folder.glob(f".{MANIFEST}.*.tmp"):  # left by a killed rank 0: only it writes here
        stale.unlink(missing_ok=True)
    with atomic_write(path) as fh:
        fh.write(expected.to_json().encode())


def _wait_for_manifest(expected: ShardManifest, rank: int, timeout_s: float) -> None:
    path = expected.folder / MANIFEST
    deadline = time.monotonic() + timeout_s
    while not path.is_file():
        if time.monotonic() > deadline:
            raise ShardError(
                f"rank {rank} waited {timeout_s:g} s for {path}, which rank 0 writes; start rank 0 with the same "
                "arguments, and check that every machine sees the same folder"
            )
        time.sleep(_POLL_S)
    _check_manifest(ShardManifest.load(expected.folder), expected)


def _require_complete(manifest: ShardManifest) -> None:
    missing = [i for i in range(manifest.n_shards) if not manifest.is_complete(i)]
    if missing:
        names = ", ".join(manifest.shard_path(i).name for i in missing[:5]) + (", …" if len(missing) > 5 else "")
        raise ShardError(
            f"{manifest.folder} is incomplete: {len(missing)} of {manifest.n_shards} shards missing or unreadable "
            f"({names}); rerun the embed command with the same arguments to finish them"
        )


def _remove_stale_temporaries(out_dir: Path, rank: int, world_size: int) -> None:
    """Remove the half-written shards a killed run of this rank left (only its own: others may be writing)."""
    for path in out_dir.glob(".shard-*.tmp"):
        match = _STALE_TEMPORARY.fullmatch(path.name)
        if match is not None and int(match.group(1)) % world_size == rank:
            path.unlink(missing_ok=True)


# --- embedding ----------------------------------------------------------------------------------------------
def _open_model(checkpoint: Path, manifest: ShardManifest) -> Encoder:
    """The checkpoint's model, refused if the file is no longer the one the manifest records."""
    digest = file_digest(checkpoint)
    if digest != manifest.model_hash:
        raise ShardError(
            f"{checkpoint} changed since {manifest.folder / MANIFEST} was written (now "
            f"{digest[:12]}, there {manifest.model_hash[:12]}); embed from a checkpoint that "
            "is not being written, into a new folder"
        )
    return load_model(checkpoint)[0]


def _embed_here(
    model: Encoder,
    archive: ArchiveSplits,
    loader_workers: int,
    manifest: ShardManifest,
    shards: Iterable[int],
    on_start: Callable[[int], None],
    on_done: Callable[[int], None],
) -> None:
    """Embed and write ``shards`` in this process, one at a time (the body of every worker, too).

    On a GPU machine the model runs on this rank's GPU (``cuda:<LOCAL_RANK>``, so ``torchrun`` with one
    process per GPU embeds on all of them).
    """
    model = model.to(environment_world().device())
    items: ConcatDataset[Sample] = ConcatDataset([archive.at(split, manifest.image_size) for split in manifest.splits])
    for index in shards:
        on_start(index)
        path, start = manifest.shard_path(index), index * manifest.shard_size
        try:
            emb = embed(model, Subset(items, range(start, start + manifest.rows(index))), workers=loader_workers)
            with atomic_write(path) as fh:
                np.savez(fh, vectors=emb.vectors, ids=np.array(emb.ids, dtype=str), labels=emb.labels)
        except MaclError as err:
            raise ShardError(f"shard {index} ({path}): {err}") from err
        except Exception as err:
            err.add_note(f"while embedding shard {index} ({path})")
            raise
        del emb  # hold one shard's embeddings at a time, not two
        on_done(index)


def _cpu_count() -> int:
    """CPUs this process may run on (the affinity mask, which containers and ``taskset`` narrow)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _embed_in_processes(
    config: Config,
    checkpoint: Path,
    manifest: ShardManifest,
    pending: list[int],
    processes: int,
    on_done: Callable[[int], None],
) -> None:
    """Embed ``pending`` in ``processes`` worker processes fed from one queue; report shards as they finish.

    'spawn', not 'fork': the parent has already run torch (its OpenMP thread pool, and CUDA if
    present), and forking a process with live threads can deadlock the child; a spawned worker starts
    clean, imports macl and loads the model from the checkpoint itself (only the config, paths and the
    manifest cross the process boundary). The start-up (importing torch: seconds) is small beside a shard.
    """
    context = multiprocessing.get_context("spawn")
    tasks: Queue[int | None] = context.Queue()
    results: Queue[tuple[Any, ...]] = context.Queue()
    tasks.cancel_join_thread()  # after a failure, unsent tasks must not keep this process from exiting
    for index in pending:
        tasks.put(index)
    for _ in range(processes):
        tasks.put(None)
    threads = max(1, _cpu_count() // processes)
    workers = [
        context.Process(
            target=_worker,
            args=(number, config, checkpoint, manifest, threads, tasks, results, os.getpid()),
            name=f"macl-shards-{number}",
        )
        for number in range(processes)
    ]
    for worker in workers:
        worker.start()
    current: dict[int, int] = {}  # worker number → the shard it is embedding
    remaining = set(pending)
    try:
        while remaining:
            try:
                message = results.get(timeout=_POLL_S)
            except queue.Empty:
                _check_alive(workers, current, manifest, remaining)
                continue
            kind, number, index, *rest = message
            if kind == "start":
                current[number] = index
            elif kind == "done":
                del current[number]
                remaining.discard(index)
                on_done(index)
            else:
                _raise_worker_failure(number, index, manifest, *rest)
        for worker in workers:
            worker.join()
    finally:
        for worker in workers:
            if worker.is_alive():
                worker.terminate()
            worker.join()


def _check_alive(
    workers: Sequence[multiprocessing.process.BaseProcess],
    current: dict[int, int],
    manifest: ShardManifest,
    remaining: set[int],
) -> None:
    """Raise if a worker died without reporting (killed, out of memory) or all exited with work left."""
    for number, worker in enumerate(workers):
        if worker.exitcode not in (None, 0):
            where = (
                f"while embedding shard {current[number]} ({manifest.shard_path(current[number])})"
                if number in current
                else "before embedding any shard"
            )
            raise ShardError(
                f"embedding worker {number} (pid {worker.pid}) died with exit code {worker.exitcode} {where}"
            )
    if all(worker.exitcode is not None for worker in workers):  # defensive: never loop forever
        raise ShardError(f"the embedding workers exited with shards {sorted(remaining)} not written; run again")


def _raise_worker_failure(number: int, index: int | None, manifest: ShardManifest, user_error: bool, text: str) -> None:
    """Re-raise a worker's error here: a user error as :class:`ShardError`, a bug with the worker's traceback."""
    where = f"on shard {index} ({manifest.shard_path(index)})" if index is not None else "before embedding any shard"
    if user_error:
        raise ShardError(text)
    raise RuntimeError(f"embedding worker {number} crashed {where}; its traceback:\n{text}")


def _worker(
    number: int,
    config: Config,
    checkpoint: Path,
    manifest: ShardManifest,
    threads: int,
    tasks: Queue[int | None],
    results: Queue[tuple[Any, ...]],
    parent: int,
) -> None:
    """A worker process: take shards from ``tasks`` until ``None`` and report on ``results``.

    It stops early if its parent has gone (it was killed): the shards it wrote stay, the rest are for
    the rerun.
    """
    torch.set_num_threads(threads)
    current: int | None = None

    def started(index: int) -> None:
        nonlocal current
        current = index
        results.put(("start", number, index))

    def finished(index: int) -> None:
        results.put(("done", number, index))

    def shards() -> Iterator[int]:
        for index in iter(tasks.get, None):
            if os.getppid() != parent:
                return
            yield index

    try:
        model, archive = _open_model(checkpoint, manifest), ArchiveSplits(config.dataset, decode=False)
        _embed_here(model, archive, config.train.workers, manifest, shards(), started, finished)
    except Exception as err:
        text = str(err) if isinstance(err, MaclError) else traceback.format_exc()
        results.put(("fail", number, current, isinstance(err, MaclError), text))


class ShardError(MaclError, ValueError):
    """A shard folder that cannot be continued or read: another model or layout, missing shards, a failed worker."""
