"""The retrieval figures the run report and the benchmark results page share.

- :func:`pick_queries`: which queries a retrieval grid shows — those carrying the most rare labels first
  (the paper's point), then one typical query; rarity is the config's ``evaluate.rare_threshold``.
- :func:`per_label_figure`: per-label AP bars of several models, rare labels shaded and starred.
- :func:`retrieval_grid`: rows of a query and its top hits, framed green when a hit shares a label with
  the query and red when it shares none.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle


def pick_queries(label_matrix: np.ndarray, label_freq: np.ndarray, rare_threshold: float, n: int) -> list[int]:
    """``n`` query rows: the ``n - 1`` carrying most rare labels (stable order), then the median one."""
    rarity = (np.asarray(label_matrix).astype(np.int64) * (np.asarray(label_freq) <= rare_threshold)).sum(1)
    order = np.argsort(-rarity, kind="stable")  # int64: a negated uint8 count would wrap
    chosen = [int(i) for i in order[: max(n - 1, 0)]]
    typical = int(order[len(order) // 2])
    return chosen + ([typical] if n > 0 and typical not in chosen else [])


def per_label_figure(
    series: Mapping[str, Mapping[str, float | None]], rare: Sequence[str], rare_threshold: float, ylabel: str
) -> Figure:
    """Grouped per-label AP bars, one colour per entry of ``series`` (name → label → AP; None counts 0)."""
    labels = list(next(iter(series.values())))
    rare_set = set(rare)
    fig = Figure(figsize=(max(7.0, 0.6 * len(labels)), 3.8))
    ax = fig.add_subplot()
    width = 0.8 / len(series)
    for i, label in enumerate(labels):
        if label in rare_set:
            ax.axvspan(i - 0.1, i + 0.9, color="gold", alpha=0.25, lw=0)
    for k, (name, values) in enumerate(series.items()):
        ax.bar(np.arange(len(labels)) + k * width, [values.get(label) or 0.0 for label in labels], width, label=name)
    ax.set_xticks(np.arange(len(labels)) + 0.4 - width / 2)
    ax.set_xticklabels([f"{label} *" if label in rare_set else label for label in labels], rotation=60, ha="right")
    ax.set_ylim(0, 1)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.set_title(f"Per-label AP (* and shading: rare labels, ≤ {rare_threshold:.0%} of training images)")
    fig.tight_layout()
    return fig


@dataclass(frozen=True)
class Panel:
    """One image of a retrieval grid: ``relevant`` is None for the query, else whether it shares a label."""

    image: torch.Tensor
    caption: str
    relevant: bool | None


def show_panel(ax: Axes, panel: Panel, fontsize: float = 6.5) -> None:
    """The image, its caption, and a frame: green if it shares a label with the query, red if none."""
    image = panel.image if panel.image.is_floating_point() else panel.image.float() / 255
    ax.imshow(image.clamp(0, 1).permute(1, 2, 0).numpy())
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(panel.caption, fontsize=fontsize, wrap=True)
    if panel.relevant is not None:
        h, w = image.shape[-2:]
        colour = "limegreen" if panel.relevant else "red"
        ax.add_patch(Rectangle((0, 0), w - 1, h - 1, fill=False, lw=3, edgecolor=colour))


def retrieval_grid(rows: Sequence[Sequence[Panel]], title: str, fontsize: float = 6.5) -> Figure:
    """One row per query: the query panel, then its hits in rank order."""
    cols = max(len(row) for row in rows)
    fig = Figure(figsize=(1.8 * cols, 2.0 * len(rows) + 0.4))
    for r, row in enumerate(rows):
        for c, panel in enumerate(row):
            show_panel(fig.add_subplot(len(rows), cols, r * cols + c + 1), panel, fontsize)
    fig.suptitle(title)
    fig.tight_layout()
    return fig
