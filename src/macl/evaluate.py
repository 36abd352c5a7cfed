"""The evaluation protocol as data: which split queries which database, then every metric, to JSON/Markdown.

``protocol: {queries: test, database: [train, val]}`` is UC Merced's (test images query the train+val
archive); ``{queries: test, database: [train]}`` is ML-AID's official one; ``{queries: val, database:
[val]}`` is leave-one-out within a split (each query is removed from its own ranking, as is any query
that also sits in the database).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from torch.utils.data import ConcatDataset

from macl.config import open_split
from macl.data.transforms import OnImage, eval_transform
from macl.fileio import atomic_write
from macl.metrics import RetrievalReport, evaluate_retrieval
from macl.models import Encoder
from macl.train import embed


def embed_splits(
    model: Encoder,
    config: dict[str, Any],
    splits: list[str],
    image_size: int,
    workers: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[np.ndarray, np.ndarray, list[str], tuple[str, ...]]:
    """Embeddings, labels, ids and class names of the union of ``splits`` (in that order).

    ``progress(done, total)`` is called after every batch (the CLI's progress bar).
    """
    resize = OnImage(eval_transform(image_size))
    dataset = ConcatDataset([open_split(config, split, resize) for split in splits])
    done = 0

    def step(n: int) -> None:
        nonlocal done
        done += n
        if progress is not None:
            progress(done, len(dataset))

    emb, labels, ids = embed(model, dataset, workers=workers, progress=step)
    return emb, labels, ids, dataset.datasets[0].classes


def run_protocol(model: Encoder, config: dict[str, Any], image_size: int, workers: int = 0) -> RetrievalReport:
    """Embed the protocol's queries and database with ``model`` and compute every retrieval metric.

    Rare labels are decided by the training split's label frequencies (the rarity the model saw).
    """
    protocol, options = config["protocol"], config["evaluate"]
    database = list(protocol["database"])
    q_emb, q_labels, q_ids, classes = embed_splits(model, config, [protocol["queries"]], image_size, workers)
    if database == [protocol["queries"]]:
        db_emb, db_labels, db_ids = q_emb, q_labels, q_ids
    else:
        db_emb, db_labels, db_ids, _ = embed_splits(model, config, database, image_size, workers)
    position = {image_id: k for k, image_id in enumerate(db_ids)}
    query_db_index = np.array([position.get(i, -1) for i in q_ids], dtype=np.int64)
    train_freq = open_split(config, "train").label_frequencies()
    return evaluate_retrieval(
        q_emb,
        q_labels,
        db_emb,
        db_labels,
        ks=tuple(options["ks"]),
        query_db_index=query_db_index,
        rare_threshold=options["rare_threshold"],
        label_freq=train_freq,
        label_names=classes,
    )


def write_report(report: RetrievalReport, folder: Path, name: str, extra: dict[str, Any] | None = None) -> Path:
    """``<name>.json`` (metrics, per-label AP, per-query values) and ``<name>.md`` in ``folder``."""
    payload = {**(extra or {}), **report.to_dict(include_per_query=True)}
    path = folder / f"{name}.json"
    with atomic_write(path) as fh:
        fh.write(json.dumps(payload, indent=1, allow_nan=False).encode())
    with atomic_write(folder / f"{name}.md") as fh:
        fh.write(report.to_markdown().encode())
    return path
