"""``macl report``: one self-contained HTML page (and its PNG figures) for a run — the paper's Figure 7.

It shows the metric table (trained beside untrained, so a reader sees what training bought), per-label
AP bars with the rare labels highlighted, the training curve, and top-k retrieval grids for a few
queries with the labels each hit shares with the query. Figures are PNG files in ``<run>/figures`` and
are also embedded in the page, so the page can be mailed or archived alone.
"""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure

from macl.config import open_split
from macl.data.plotting import show_hit
from macl.fileio import atomic_write
from macl.index import RetrievalIndex

HEADLINE = [
    "map",
    "map@10",
    "p@10",
    "ndcg@10",
    "ndcg_cos@10",
    "ndcg_jac@10",
    "wap@10",
    "acg@10",
    "map_jac0.4",
    "label_map_macro",
    "label_map_rare",
    "label_map_frequent",
]


def _read(path: Path) -> dict[str, Any] | None:
    return json.loads(path.read_text()) if path.is_file() else None


def _save(fig: Figure, folder: Path, name: str) -> Path:
    path = folder / f"{name}.png"
    fig.savefig(path, dpi=110, bbox_inches="tight")
    return path


def metrics_table(results: dict[str, dict[str, Any]]) -> str:
    names = list(results)
    head = "".join(f"<th>{html.escape(n)}</th>" for n in names)
    rows = []
    for key in HEADLINE:
        cells = []
        for n in names:
            value = results[n]["metrics"].get(key)
            cells.append(f"<td>{value:.3f}</td>" if isinstance(value, float) else "<td>–</td>")
        rows.append(f"<tr><td><code>{key}</code></td>{''.join(cells)}</tr>")
    return f"<table><tr><th>metric</th>{head}</tr>{''.join(rows)}</table>"


def per_label_figure(results: dict[str, dict[str, Any]]) -> Figure:
    first = next(iter(results.values()))
    labels = list(first["per_label_ap"])
    rare = set(first["rare_labels"])
    fig = Figure(figsize=(max(6, 0.55 * len(labels)), 3.6))
    ax = fig.add_subplot()
    width = 0.8 / len(results)
    for k, (name, result) in enumerate(results.items()):
        values = [result["per_label_ap"].get(label) or 0.0 for label in labels]
        bars = ax.bar(np.arange(len(labels)) + k * width, values, width, label=name)
        for bar, label in zip(bars, labels, strict=True):
            if label in rare:
                bar.set_hatch("//")
                bar.set_edgecolor("black")
    ax.set_xticks(np.arange(len(labels)) + 0.4 - width / 2)
    ax.set_xticklabels([f"{label} *" if label in rare else label for label in labels], rotation=60, ha="right")
    ax.set_ylabel("per-label AP")
    ax.set_ylim(0, 1)
    ax.legend(loc="upper right", fontsize=8)
    ax.set_title("Per-label AP (* hatched: rare labels, ≤ 10 % of training images)")
    fig.tight_layout()
    return fig


def curve_figure(history: list[dict[str, Any]]) -> Figure:
    fig = Figure(figsize=(7, 3))
    ax = fig.add_subplot()
    epochs = [h["epoch"] for h in history]
    ax.plot(epochs, [h["loss"] for h in history], "o-", color="tab:blue", label="training loss")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss", color="tab:blue")
    val = [(h["epoch"], h["val_map"]) for h in history if h.get("val_map") is not None]
    if val:
        twin = ax.twinx()
        twin.plot(*zip(*val, strict=True), "s--", color="tab:orange", label="validation mAP")
        twin.set_ylabel("validation mAP", color="tab:orange")
    ax.set_title("Training curve")
    fig.tight_layout()
    return fig


def retrieval_grid(config: dict[str, Any], index: RetrievalIndex, model: Any, queries: int = 4, k: int = 6) -> Figure:
    """Query image and its top-``k`` hits; a green frame marks a hit sharing a label, red one sharing none."""
    from macl.data.transforms import OnImage, eval_transform

    query_split = open_split(config, config["protocol"]["queries"])
    images = {}
    for split in config["protocol"]["database"]:
        ds = open_split(config, split)
        images.update({i: (ds, n) for n, i in enumerate(ds.ids)})
    freq = open_split(config, "train").label_frequencies()
    rarity = (query_split.label_matrix.astype(np.int64) * (freq <= 0.1)).sum(1)  # uint8 would wrap on negation
    order = np.argsort(-rarity, kind="stable")  # queries with rare labels first: the paper's point
    chosen = [int(i) for i in order[: queries // 2]] + [int(i) for i in order[-(queries - queries // 2) :]]
    side = config["train"].get("image_size", 96)
    resize = OnImage(eval_transform(side))
    fig = Figure(figsize=(2.0 * (k + 1), 2.35 * len(chosen)))
    for row, qi in enumerate(chosen):
        sample = resize(query_split[qi])
        with torch.no_grad():
            emb = model.embed(sample["image"][None]).numpy()
        hits = index.hits(emb, k, query_split.label_matrix[qi][None], exclude=[query_split.ids[qi]])[0]
        panels = [(sample["image"], f"QUERY {query_split.ids[qi]}\n" + ", ".join(_names(query_split, qi)), None)]
        for hit in hits:
            ds, n = images[hit.id]
            caption = f"{hit.score:.2f} shared: {', '.join(hit.shared) or '–'}"
            panels.append((ds.read(n).float() / 255, caption, bool(hit.shared)))
        for col, (image, caption, good) in enumerate(panels):
            show_hit(fig.add_subplot(len(chosen), k + 1, row * (k + 1) + col + 1), image, caption, good)
    fig.suptitle("Top-k retrieval (green: shares ≥ 1 label with the query, red: shares none)")
    fig.tight_layout()
    return fig


def _names(ds: Any, i: int) -> list[str]:
    return [ds.classes[c] for c in np.flatnonzero(ds.label_matrix[i])]


def _img(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<img src="data:image/png;base64,{data}" alt="{html.escape(path.stem)}">'


def write_report(run: Path, config: dict[str, Any], model: Any | None = None) -> Path:
    """Build ``<run>/report.html`` from the run's results files (whatever of them exist)."""
    figures = run / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    results = {name: r for name in ("untrained", "trained") if (r := _read(run / f"metrics_{name}.json"))}
    history = _read(run / "history.json") or []
    sections = [f"<h1>macl report — {html.escape(str(run))}</h1>"]
    train = config.get("train", {})
    sections.append(
        "<p>Dataset <b>{}</b>, queries <b>{}</b> against <b>{}</b>; loss <b>{}</b>, backbone <b>{}</b>, "
        "{} px, {} epochs.</p>".format(
            html.escape(str(config["dataset"]["name"])),
            html.escape(str(config["protocol"]["queries"])),
            html.escape(" + ".join(config["protocol"]["database"])),
            html.escape(str(train.get("loss", "macl"))),
            html.escape(str(train.get("backbone", "resnet18"))),
            train.get("image_size", 96),
            train.get("epochs", 20),
        )
    )
    if results:
        sections.append("<h2>Retrieval metrics</h2>" + metrics_table(results))
        sections.append(_img(_save(per_label_figure(results), figures, "per_label_ap")))
    if history:
        sections.append("<h2>Training</h2>" + _img(_save(curve_figure(history), figures, "training_curve")))
    index_path = run / "archive.index"
    if model is not None and index_path.is_file():
        index = RetrievalIndex.load(index_path)
        grid = _save(retrieval_grid(config, index, model), figures, "retrieval_grid")
        sections.append("<h2>Retrieval examples</h2>" + _img(grid))
    style = (
        "body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}"
        "img{max-width:100%;margin:1em 0}"
    )
    page = f"<!doctype html><html><head><meta charset='utf-8'><title>macl report</title><style>{style}</style>"
    page += f"</head><body>{''.join(sections)}</body></html>"
    path = run / "report.html"
    with atomic_write(path) as fh:
        fh.write(page.encode())
    return path
