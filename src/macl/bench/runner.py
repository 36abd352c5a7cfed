"""Train and evaluate benchmark cells, each once: finished cells are skipped, interrupted ones resume.

A cell lives in ``<root>/cells/<key>/seed<k>/``: ``last.pt`` while it trains (written every epoch, so
a killed run resumes from its last finished epoch) and ``result.json`` once it is done (written
atomically, then the checkpoint is deleted unless ``keep_checkpoints``). Every cell is evaluated twice
with its final weights — no checkpoint is picked by a score:

- ``val``: validation queries against the training images, the split hyper-parameters are chosen on;
- ``test``: the config's protocol (for UC Merced, test queries against train+val), reported only.

A cell is trained by :func:`macl.pipeline.train` and evaluated by :func:`macl.pipeline.evaluate_model`,
the functions ``macl train`` and ``macl evaluate`` run; each archive split is decoded once per process
and shared by every cell (one :class:`macl.archive.ArchiveSplits`).
"""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import torch

from macl import pipeline
from macl.archive import ArchiveSplits
from macl.bench.studies import UNTRAINED, Study, Variant, cell_key, resolve_train
from macl.config import Config
from macl.fileio import atomic_write
from macl.train import EpochLog

TOP_K = 6  # retrieval grids show the top 6


def machine() -> dict[str, Any]:
    """What the cell ran on, for the results page (timings and some numerics depend on it)."""
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else f"CPU, {os.cpu_count()} cores"
    return {"device": device, "platform": platform.machine(), "torch": torch.__version__}


def cell_dir(config: Config, variant: Variant, preset: str, seed: int, root: Path) -> Path:
    """The folder of a cell: its key's, or the pre-2026-12-07 key's where a finished cell waits there."""
    train_cfg = resolve_train(config, variant, preset, seed)
    trained = variant.name != UNTRAINED
    folder = Path(root) / "cells" / cell_key(config, train_cfg, trained) / f"seed{seed}"
    legacy = Path(root) / "cells" / cell_key(config, train_cfg, trained, legacy_numbers=True) / f"seed{seed}"
    if not (folder / "result.json").is_file() and (legacy / "result.json").is_file():
        return legacy
    return folder


def load_cell(config: Config, variant: Variant, preset: str, seed: int, root: Path) -> dict[str, Any] | None:
    """A finished cell's result, or None if it has not finished."""
    path = cell_dir(config, variant, preset, seed, root) / "result.json"
    return json.loads(path.read_text()) if path.is_file() else None


def run_cell(
    config: Config,
    variant: Variant,
    preset: str,
    seed: int,
    root: Path,
    splits: ArchiveSplits,
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
    cell = replace(config, train=train_cfg, output=str(folder))
    start = time.perf_counter()
    if trained:
        trainer = pipeline.train(cell, resume=True, splits=splits, validate=False, on_epoch=on_epoch)
        model, history = trainer.model, [asdict(h) for h in trainer.history]
    else:
        model, history = pipeline.untrained_model(cell, splits), []
    model.eval()
    seconds_train = time.perf_counter() - start
    val = pipeline.evaluate_model(cell, model, splits, "val", ["train"])
    test = pipeline.evaluate_model(cell, model, splits, top_k=TOP_K)
    result = {
        "variant": variant.name,
        "seed": seed,
        "preset": preset,
        "trained": trained,
        "machine": machine(),
        "train_config": asdict(train_cfg),
        "train_seconds": seconds_train,
        "history": history,
        "val": val.report.to_dict(include_per_query=True),
        "test": test.report.to_dict(include_per_query=True),
        "test_top": {"query_ids": test.query_ids, "hits": test.top_ids},
    }
    with atomic_write(folder / "result.json") as fh:
        fh.write(json.dumps(result).encode())
    if not keep_checkpoints:
        (folder / "last.pt").unlink(missing_ok=True)
    return result, True


def run_study(
    config: Config,
    study: Study,
    preset: str,
    seeds: list[int],
    root: Path,
    splits: ArchiveSplits | None = None,
    keep_checkpoints: bool = False,
    log: Callable[[str], None] = print,
) -> dict[str, list[dict[str, Any]]]:
    """Every cell of ``study`` (seed-major, so an interrupted run has whole seeds done first)."""
    splits = splits or ArchiveSplits(config.dataset)
    results: dict[str, list[dict[str, Any]]] = {v.name: [] for v in study.variants}
    for seed in seeds:
        for variant in study.variants:
            start = time.perf_counter()

            def on_epoch(entry: EpochLog, name: str = variant.name, seed: int = seed) -> None:
                log(f"  {name} seed {seed}: epoch {entry.epoch} loss {entry.loss:.4f} ({entry.images_per_s:.0f} img/s)")

            result, fresh = run_cell(config, variant, preset, seed, root, splits, keep_checkpoints, on_epoch)
            results[variant.name].append(result)
            state = f"done in {time.perf_counter() - start:.0f} s" if fresh else "already done"
            val, test = result["val"]["metrics"], result["test"]["metrics"]
            log(
                f"[{study.name}] {variant.name} seed {seed}: {state}; val mAP {val['map']:.3f}, "
                f"test mAP {test['map']:.3f}, rare AP {test['label_map_rare']:.3f}"
            )
    return results
