"""Train and evaluate benchmark cells, each once: finished cells are skipped, interrupted ones resume.

A cell lives in ``<root>/cells/<key>/seed<k>/``: ``last.pt`` while it trains (written every epoch, so
a killed run resumes from its last finished epoch) and ``result.json`` once it is done (written
atomically, then the checkpoint is deleted unless ``keep_checkpoints``). Every cell is evaluated twice
with its final weights — no checkpoint is picked by a score:

- ``val``: validation queries against the training images, the split hyper-parameters are chosen on;
- ``test``: the config's protocol (for UC Merced, test queries against train+val), reported only.

Each archive split is decoded once per process and shared by every cell (:class:`ArchiveCache`).
"""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from macl.bench.studies import UNTRAINED, Study, Variant, cell_key, resolve_train
from macl.config import open_split
from macl.data.cache import CachedArchive
from macl.fileio import atomic_write
from macl.metrics import RetrievalReport, evaluate_retrieval
from macl.models import Encoder
from macl.train import EpochLog, TrainConfig, Trainer, build_model, embed

TOP_K = 6  # retrieval grids show the top 6


class ArchiveCache:
    """The config's splits decoded once at each side a cell asks for."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self._cache: dict[tuple[str, int], CachedArchive] = {}

    def get(self, split: str, side: int) -> CachedArchive:
        if (split, side) not in self._cache:
            self._cache[split, side] = CachedArchive(open_split(self.config, split), side)
        archive = self._cache[split, side]
        archive.transforms = None
        return archive


def _embed_splits(model: Encoder, cache: ArchiveCache, splits: list[str], side: int) -> tuple[np.ndarray, ...]:
    parts = [embed(model, cache.get(split, side)) for split in splits]
    emb = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts])
    ids = np.array([i for p in parts for i in p[2]])
    return emb, labels, ids


def evaluate_cell(
    model: Encoder, cache: ArchiveCache, queries: str, database: list[str], side: int, rare_threshold: float
) -> tuple[RetrievalReport, dict[str, Any]]:
    """Every retrieval metric of ``queries`` against ``database``, and each query's top-6 database ids."""
    q, q_labels, q_ids = _embed_splits(model, cache, [queries], side)
    same = database == [queries]
    db, db_labels, db_ids = (q, q_labels, q_ids) if same else _embed_splits(model, cache, database, side)
    position = {image_id: k for k, image_id in enumerate(db_ids)}
    query_db_index = np.array([position.get(i, -1) for i in q_ids], dtype=np.int64)
    train = cache.get("train", side)
    report = evaluate_retrieval(
        q,
        q_labels,
        db,
        db_labels,
        ks=(10, 20, 50, 100),
        query_db_index=query_db_index,
        rare_threshold=rare_threshold,
        label_freq=train.label_matrix.mean(0),
        label_names=train.classes,
    )
    scores = q @ db.T
    rows = np.flatnonzero(query_db_index >= 0)
    scores[rows, query_db_index[rows]] = -np.inf  # a query never retrieves itself
    top = np.argsort(-scores, axis=1, kind="stable")[:, :TOP_K]
    return report, {"query_ids": q_ids.tolist(), "hits": db_ids[top].tolist()}


def _train(
    train_cfg: TrainConfig, cache: ArchiveCache, cell_dir: Path, on_epoch: Callable[[EpochLog], None]
) -> Trainer:
    train_set = cache.get("train", round(train_cfg.image_size * 1.25))  # random crops, then resize down
    trainer = Trainer(train_cfg, train_set, None, cell_dir)
    if (cell_dir / "last.pt").is_file():
        trainer.resume(cell_dir / "last.pt")
    while trainer.epoch < train_cfg.epochs:
        on_epoch(trainer.train_epoch())
    return trainer


def machine() -> dict[str, Any]:
    """What the cell ran on, for the results page (timings and some numerics depend on it)."""
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else f"CPU, {os.cpu_count()} cores"
    return {"device": device, "platform": platform.machine(), "torch": torch.__version__}


def cell_dir(config: dict[str, Any], variant: Variant, preset: str, seed: int, root: Path) -> Path:
    train_cfg = resolve_train(config, variant, preset, seed)
    return Path(root) / "cells" / cell_key(config, train_cfg, variant.name != UNTRAINED) / f"seed{seed}"


def load_cell(config: dict[str, Any], variant: Variant, preset: str, seed: int, root: Path) -> dict[str, Any] | None:
    """A finished cell's result, or None if it has not finished."""
    path = cell_dir(config, variant, preset, seed, root) / "result.json"
    return json.loads(path.read_text()) if path.is_file() else None


def run_cell(
    config: dict[str, Any],
    variant: Variant,
    preset: str,
    seed: int,
    root: Path,
    cache: ArchiveCache,
    keep_checkpoints: bool = False,
    on_epoch: Callable[[EpochLog], None] = lambda log: None,
) -> tuple[dict[str, Any], bool]:
    """The result of one (variant, seed) cell, training it unless ``result.json`` exists.

    Returns the result and whether it was computed now (False: read from disk).
    """
    train_cfg = resolve_train(config, variant, preset, seed)
    trained = variant.name != UNTRAINED
    folder = cell_dir(config, variant, preset, seed, root)
    done = load_cell(config, variant, preset, seed, root)
    if done is not None:
        return done, False
    folder.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    if trained:
        trainer = _train(train_cfg, cache, folder, on_epoch)
        model, history = trainer.model, [asdict(h) for h in trainer.history]
    else:
        torch.manual_seed(seed)
        model, history = build_model(train_cfg, len(cache.get("train", train_cfg.image_size).classes)), []
    model.eval()
    seconds_train = time.perf_counter() - start
    side, rare = train_cfg.image_size, config["evaluate"]["rare_threshold"]
    val, _ = evaluate_cell(model, cache, "val", ["train"], side, rare)
    protocol = config["protocol"]
    test, top = evaluate_cell(model, cache, protocol["queries"], list(protocol["database"]), side, rare)
    result = {
        "variant": variant.name,
        "seed": seed,
        "preset": preset,
        "trained": trained,
        "machine": machine(),
        "train_config": asdict(train_cfg),
        "train_seconds": seconds_train,
        "history": history,
        "val": val.to_dict(include_per_query=True),
        "test": test.to_dict(include_per_query=True),
        "test_top": top,
    }
    with atomic_write(folder / "result.json") as fh:
        fh.write(json.dumps(result).encode())
    if not keep_checkpoints:
        (folder / "last.pt").unlink(missing_ok=True)
    return result, True


def run_study(
    config: dict[str, Any],
    study: Study,
    preset: str,
    seeds: list[int],
    root: Path,
    cache: ArchiveCache | None = None,
    keep_checkpoints: bool = False,
    log: Callable[[str], None] = print,
) -> dict[str, list[dict[str, Any]]]:
    """Every cell of ``study`` (seed-major, so an interrupted run has whole seeds done first)."""
    cache = cache or ArchiveCache(config)
    results: dict[str, list[dict[str, Any]]] = {v.name: [] for v in study.variants}
    for seed in seeds:
        for variant in study.variants:
            start = time.perf_counter()

            def on_epoch(entry: EpochLog, name: str = variant.name, seed: int = seed) -> None:
                log(f"  {name} seed {seed}: epoch {entry.epoch} loss {entry.loss:.4f} ({entry.images_per_s:.0f} img/s)")

            result, fresh = run_cell(config, variant, preset, seed, root, cache, keep_checkpoints, on_epoch)
            results[variant.name].append(result)
            state = f"done in {time.perf_counter() - start:.0f} s" if fresh else "already done"
            val, test = result["val"]["metrics"], result["test"]["metrics"]
            log(
                f"[{study.name}] {variant.name} seed {seed}: {state}; val mAP {val['map']:.3f}, "
                f"test mAP {test['map']:.3f}, rare AP {test['label_map_rare']:.3f}"
            )
    return results
