"""Figures of samples: one image with its labels, a grid of several, or a sample sheet that shows every label."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure


def _label_names(label: torch.Tensor, classes: Sequence[str]) -> list[str]:
    return [classes[c] for c in torch.nonzero(label > 0.5).flatten().tolist()]


def _show(ax: Any, image: torch.Tensor) -> None:
    ax.imshow(image.detach().float().clamp(0, 1).permute(1, 2, 0).cpu().numpy())
    ax.set_axis_off()


def plot_sample(
    sample: dict[str, Any], classes: Sequence[str], show_titles: bool = True, suptitle: str | None = None
) -> Figure:
    """One image with its label names; predicted labels, if present, on a second line."""
    fig = Figure(figsize=(4, 4.6))
    ax = fig.add_subplot()
    _show(ax, sample["image"])
    if show_titles:
        title = ", ".join(_label_names(sample["label"], classes)) or "(no label)"
        if "prediction" in sample:
            title += "\npredicted: " + (", ".join(_label_names(sample["prediction"], classes)) or "(none)")
        ax.set_title(title, fontsize=9, wrap=True)
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return fig


def plot_grid(dataset: Any, indices: Sequence[int], ncols: int = 4, suptitle: str | None = None) -> Figure:
    """A grid of samples of ``dataset`` with their ids and label names (the archive's sample sheet)."""
    nrows = (len(indices) + ncols - 1) // ncols
    fig = Figure(figsize=(3.2 * ncols, 3.6 * nrows))
    for k, index in enumerate(indices):
        sample = dataset[index]
        ax = fig.add_subplot(nrows, ncols, k + 1)
        _show(ax, sample["image"])
        names = ", ".join(_label_names(sample["label"], dataset.classes)) or "(no label)"
        ax.set_title(f"{sample['id']}\n{names}", fontsize=8, wrap=True)
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return fig


def example_indices(label_matrix: np.ndarray, n: int = 16) -> list[int]:
    """``n`` items that together show as many labels as possible, rarest labels first.

    Greedy: while some label is not shown, take the rarest one and, among the items carrying it, the one
    that adds the most labels not yet shown (the lowest index on ties); then fill up with the items whose
    label sets are furthest (in Jaccard distance) from those already chosen. A sample sheet drawn at random
    would show no airplane or ship.
    """
    labels = np.asarray(label_matrix, dtype=bool)
    counts = labels.sum(0)
    chosen: list[int] = []
    shown = np.zeros(labels.shape[1], dtype=bool)
    while len(chosen) < n:
        missing = np.flatnonzero(~shown & (counts > 0))
        if missing.size == 0:
            break
        rarest = missing[np.argmin(counts[missing])]
        carriers = np.flatnonzero(labels[:, rarest])
        carriers = carriers[~np.isin(carriers, chosen)]
        best = int(carriers[np.argmax((labels[carriers] & ~shown).sum(1))])
        chosen.append(best)
        shown |= labels[best]
    as_float = labels.astype(np.float32)
    while len(chosen) < min(n, len(labels)):
        shared = as_float @ as_float[chosen].T if chosen else np.zeros((len(labels), 1), np.float32)
        sizes = as_float.sum(1)
        union = sizes[:, None] + (sizes[chosen][None, :] if chosen else 0) - shared
        distance = (1 - shared / np.maximum(union, 1)).min(1)
        distance[chosen] = -1
        chosen.append(int(np.argmax(distance)))
    return sorted(chosen)


def plot_examples(dataset: Any, n: int = 16, ncols: int = 4, suptitle: str | None = None) -> Figure:
    """A sample sheet of ``dataset`` (any archive) whose ``n`` items show every label (:func:`plot_grid`)."""
    return plot_grid(dataset, example_indices(dataset.label_matrix, n), ncols=ncols, suptitle=suptitle)
