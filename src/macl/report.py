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

from macl.archive import ArchiveSplits
from macl.config import Config
from macl.figures import Panel, per_label_figure, pick_queries, retrieval_grid
from macl.fileio import atomic_write
from macl.index import VectorIndex, open_index
from macl.models import Encoder

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


def _read(path: Path) -> Any:
    """A JSON results file of the run, or None where the run has not written it."""
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


def examples_figure(config: Config, index: VectorIndex, model: Encoder, queries: int = 4, k: int = 6) -> Figure:
    """Query images (rare labels first) and their top-``k`` hits in the index, with the labels they share."""
    splits = ArchiveSplits(config.dataset)
    query_split = splits.raw(config.protocol.queries)
    sized = splits.at(config.protocol.queries, config.train.image_size)
    images = splits.locate(config.protocol.database)
    freq = splits.raw("train").label_frequencies()
    rows = []
    for qi in pick_queries(query_split.label_matrix, freq, config.evaluate.rare_threshold, queries):
        with torch.no_grad():
            emb = model.embed(sized[qi]["image"][None]).numpy()
        hits = index.hits(emb, k, query_split.label_matrix[qi][None], exclude=[query_split.ids[qi]])[0]
        names = [query_split.classes[c] for c in np.flatnonzero(query_split.label_matrix[qi])]
        row = [Panel(query_split.read(qi), f"QUERY {query_split.ids[qi]}\n" + ", ".join(names), None)]
        for hit in hits:
            ds, n = images[hit.id]
            row.append(Panel(ds.read(n), f"{hit.score:.2f} shared: {', '.join(hit.shared) or '–'}", bool(hit.shared)))
        rows.append(row)
    return retrieval_grid(rows, "Top-k retrieval (green: shares ≥ 1 label with the query, red: shares none)")


def _img(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<img src="data:image/png;base64,{data}" alt="{html.escape(path.stem)}">'


def write_report(run: Path, config: Config, model: Encoder | None = None) -> Path:
    """Build ``<run>/report.html`` from the run's results files (whatever of them exist)."""
    figures = run / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    results = {name: r for name in ("untrained", "trained") if (r := _read(run / f"metrics_{name}.json"))}
    history = _read(run / "history.json") or []
    sections = [f"<h1>macl report — {html.escape(str(run))}</h1>"]
    train = config.train
    sections.append(
        "<p>Dataset <b>{}</b>, queries <b>{}</b> against <b>{}</b>; loss <b>{}</b>, backbone <b>{}</b>, "
        "{} px, {} epochs.</p>".format(
            html.escape(config.dataset.name),
            html.escape(config.protocol.queries),
            html.escape(" + ".join(config.protocol.database)),
            html.escape(train.loss),
            html.escape(train.backbone),
            train.image_size,
            train.epochs,
        )
    )
    if results:
        sections.append("<h2>Retrieval metrics</h2>" + metrics_table(results))
        series = {name: r["per_label_ap"] for name, r in results.items()}
        rare = next(iter(results.values()))["rare_labels"]
        figure = per_label_figure(series, rare, config.evaluate.rare_threshold, "per-label AP")
        sections.append(_img(_save(figure, figures, "per_label_ap")))
    if history:
        sections.append("<h2>Training</h2>" + _img(_save(curve_figure(history), figures, "training_curve")))
    index_path = run / "archive.index"
    if model is not None and index_path.is_file():
        index = open_index(index_path)
        grid = _save(examples_figure(config, index, model), figures, "retrieval_grid")
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
