"""The steps a user runs, each from a config and files on disk: train, index, search, evaluate, demo.

The CLI parses arguments and displays progress; these functions do the work and return plain values, so
scripts and notebooks can call them the same way.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from macl.config import open_split, train_config
from macl.data.cache import CachedArchive
from macl.data.images import read_image
from macl.data.transforms import OnImage, eval_transform
from macl.evaluate import embed_splits, run_protocol, write_report
from macl.fileio import atomic_write, file_digest
from macl.index import Hit, RetrievalIndex
from macl.metrics import RetrievalReport
from macl.models import Encoder
from macl.train import EpochLog, Trainer, build_model

StepCallback = Callable[[float, float], None]


def run_dir(config: dict[str, Any]) -> Path:
    return Path(config["output"])


def train(
    config: dict[str, Any],
    resume: bool = False,
    on_start: Callable[[Trainer], None] | None = None,
    on_step: StepCallback | None = None,
    on_epoch: Callable[[EpochLog], None] | None = None,
) -> Trainer:
    """Train the configured model; with ``resume``, continue from ``<output>/last.pt`` if it exists.

    The training split is decoded once into memory at 1.25× the training side (crops then resize down).
    """
    out = run_dir(config)
    out.mkdir(parents=True, exist_ok=True)
    cfg = train_config(config)
    cache_side = round(cfg.image_size * 1.25)
    train_set = CachedArchive(open_split(config, "train"), cache_side)
    val_set = CachedArchive(open_split(config, "val"), cfg.image_size)
    trainer = Trainer(cfg, train_set, val_set, out)
    last = out / "last.pt"
    if resume and last.is_file():
        trainer.resume(last)
    with atomic_write(out / "config.yaml") as fh:
        fh.write(yaml.safe_dump(config, sort_keys=False).encode())
    if on_start is not None:
        on_start(trainer)
    trainer.fit(on_step, on_epoch)
    with atomic_write(out / "history.json") as fh:
        fh.write(json.dumps([asdict(h) for h in trainer.history], indent=1).encode())
    return trainer


def load_model(checkpoint: Path | str) -> tuple[Encoder, dict[str, Any]]:
    """The model of a checkpoint written by training, in eval mode, and the checkpoint's contents."""
    path = Path(checkpoint)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist; train first ('macl train') or fix the path")
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
        model = build_model(train_config({"train": state["config"]}), len(state["classes"]))
        model.load_state_dict(state["model"])
    except (RuntimeError, KeyError, EOFError, ValueError) as err:
        raise ValueError(f"cannot load checkpoint {path}: {err}") from err
    return model.eval(), state


def untrained_model(config: dict[str, Any]) -> Encoder:
    """The configured architecture at its (seeded) initialisation: the baseline a trained model must beat."""
    cfg = train_config(config)
    torch.manual_seed(cfg.seed)
    classes = open_split(config, "train").classes
    return build_model(cfg, len(classes)).eval()


def evaluate(config: dict[str, Any], model: Encoder, name: str, extra: dict[str, Any] | None = None) -> RetrievalReport:
    """Run the protocol with ``model`` and write ``<output>/<name>.json`` and ``.md``."""
    cfg = train_config(config)
    report = run_protocol(model, config, cfg.image_size, cfg.workers)
    write_report(report, run_dir(config), name, {"protocol": config["protocol"], **(extra or {})})
    return report


def build_index(
    config: dict[str, Any],
    checkpoint: Path | str,
    out: Path | str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Embed the protocol's database with the checkpoint's model and save a :class:`RetrievalIndex`."""
    model, state = load_model(checkpoint)
    cfg = train_config({"train": state["config"]})
    database = list(config["protocol"]["database"])
    emb, labels, ids, classes = embed_splits(model, config, database, cfg.image_size, cfg.workers, progress)
    index = RetrievalIndex(emb.shape[1], config["index"]["backend"], classes, file_digest(checkpoint))
    index.add(emb, ids, labels)
    path = Path(out) if out is not None else run_dir(config) / "archive.index"
    index.save(path)
    return path


def search(
    index_path: Path | str,
    checkpoint: Path | str,
    k: int = 10,
    image: Path | str | None = None,
    image_id: str | None = None,
    labels: list[str] | None = None,
) -> tuple[str, list[Hit]]:
    """Top-``k`` hits for one query given as an image file, an archive id, or a set of label names.

    A label query has no image: it searches with the mean embedding of the indexed images that carry all
    the requested labels (the archive's own picture of that combination), and reports what each hit shares
    with the requested labels. Returns a description of the query and the hits.
    """
    if sum(x is not None for x in (image, image_id, labels)) != 1:
        raise ValueError("give exactly one of an image path, an archive id, or label names")
    index = RetrievalIndex.load(index_path, expected_model_hash=file_digest(checkpoint))
    names = list(index.label_names)
    if image is not None:
        if not Path(image).is_file():
            raise FileNotFoundError(f"query image {image} does not exist")
        model, state = load_model(checkpoint)
        side = state["config"]["image_size"]
        query = model.embed(OnImage(eval_transform(side))({"image": read_image(image).float() / 255})["image"][None])
        return f"image {image}", index.hits(query.numpy(), k)[0]
    if image_id is not None:
        if image_id not in index.ids:
            raise ValueError(f"id {image_id!r} is not in {index_path} (ids look like {index.ids[0]!r})")
        emb, own = index.embedding_of(image_id)[None], index.labels_of(image_id)[None]
        return f"archive image {image_id}", index.hits(emb, k, own, exclude=[image_id])[0]
    assert labels is not None
    unknown = [name for name in labels if name not in names]
    if unknown:
        raise ValueError(f"unknown label(s) {unknown}; this archive's labels are {names}")
    wanted = np.isin(names, labels)
    carriers = [i for i in index.ids if (index.labels_of(i).astype(bool) >= wanted).all()]
    if not carriers:
        raise ValueError(f"no indexed image carries all of {labels}; try fewer labels")
    prototype = np.mean([index.embedding_of(i) for i in carriers], axis=0, keepdims=True)
    return f"labels {', '.join(labels)} ({len(carriers)} images carry them)", index.hits(prototype, k, wanted[None])[0]
