"""Figures of samples: one image with its labels, or a grid of several."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle


def _label_names(label: torch.Tensor, classes: Sequence[str]) -> list[str]:
    return [classes[c] for c in torch.nonzero(label > 0.5).flatten().tolist()]


def _show(ax: Any, image: torch.Tensor) -> None:
    ax.imshow(image.detach().float().clamp(0, 1).permute(1, 2, 0).cpu().numpy())
    ax.set_axis_off()


def show_hit(ax: Any, image: torch.Tensor, caption: str, relevant: bool | None, fontsize: float = 6.5) -> None:
    """A retrieval panel: the image, its caption, and a frame — green if it shares a label with the
    query, red if it shares none, no frame for the query itself (``relevant=None``)."""
    if not image.is_floating_point():
        image = image.float() / 255
    ax.imshow(image.clamp(0, 1).permute(1, 2, 0).numpy())
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(caption, fontsize=fontsize, wrap=True)
    if relevant is not None:
        h, w = image.shape[-2:]
        colour = "limegreen" if relevant else "red"
        ax.add_patch(Rectangle((0, 0), w - 1, h - 1, fill=False, lw=3, edgecolor=colour))


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
