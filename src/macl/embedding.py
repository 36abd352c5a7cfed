"""Embedding a dataset with an encoder: the one path training validation, evaluation, the benchmark
harness and the index all take from images to retrieval vectors."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import ConcatDataset, DataLoader, Dataset

from macl.data.base import Sample
from macl.errors import ArgumentError
from macl.models import Encoder


@dataclass(frozen=True)
class Embeddings:
    """Retrieval embeddings (N, D) float32, L2-normalised; multi-hot labels (N, C) uint8; ids, in one order.

    ``probabilities`` (N, C) float32 are the model's predicted label probabilities when asked for (a model
    with a label classifier: the BCE baseline or a hybrid), what late fusion ranks with; else ``None``.
    """

    vectors: np.ndarray
    labels: np.ndarray
    ids: list[str]
    probabilities: np.ndarray | None = None


@torch.no_grad()
def embed(
    model: Encoder,
    datasets: Dataset[Sample] | Sequence[Dataset[Sample]],
    batch_size: int = 128,
    workers: int = 0,
    progress: Callable[[int, int], None] | None = None,
    probabilities: bool = False,
) -> Embeddings:
    """Embed a dataset (or several, concatenated in order) whose samples are model-ready images.

    ``progress(done, total)`` is called after every batch (the CLI's progress bar). The model is put in
    eval mode: batch-norm statistics are not updated by embedding. ``probabilities`` also returns the
    model's predicted label probabilities, from the same backbone pass.
    """
    dataset = ConcatDataset(list(datasets)) if isinstance(datasets, Sequence) else datasets
    total = len(dataset)  # type: ignore[arg-type]
    model.eval()
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=workers)
    vectors, labels, ids, probs = [], [], [], []
    for batch in loader:
        if probabilities:
            vector, prob = model.embed_and_predict(batch["image"])
            probs.append(prob.numpy())
        else:
            vector = model.embed(batch["image"])
        vectors.append(vector.cpu().numpy())
        labels.append(batch["label"].numpy().astype(np.uint8))
        ids += list(batch["id"])
        if progress is not None:
            progress(len(ids), total)
    if not ids:
        raise ArgumentError("nothing to embed: the dataset is empty (check the split and the archive)")
    return Embeddings(
        np.concatenate(vectors), np.concatenate(labels), ids, np.concatenate(probs) if probabilities else None
    )
