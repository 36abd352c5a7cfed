"""``macl bench-page``: the results file and the results page with its figures, from finished cells.

Nothing here trains: it reads the cells that ``macl bench`` finished (any subset — a study still
running shows what is done), writes the machine-readable results file, draws every figure and writes
the page (the repository's ``docs/results.md`` is one). A page can also be re-rendered from its
results file alone (``--from-results``): the same numbers under today's labels. Each figure carries
the command that made it, and the page says which machine and preset produced the numbers, so a
reader can rerun any of it.
"""

from __future__ import annotations

import json
import platform
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from macl.archive import ArchiveSplits
from macl.bench.summary import TABLE_METRICS
from macl.config import Config
from macl.figures import Panel, per_label_figure, pick_queries, retrieval_grid
from macl.fileio import atomic_write

GRID_METHODS = ("macl", "mulsupcon", "bce", "supcon-any")  # rows of the retrieval grids
COMPARISONS = ("compare", "headline", "reference")  # studies shown with full metric and paired-test tables


def _fmt(stat: dict[str, Any] | None, std: bool = True) -> str:
    if not stat or stat.get("mean") is None:
        return "–"
    if std and len(stat["values"]) > 1:
        return f"{stat['mean']:.3f} ± {stat['std']:.3f}"
    return f"{stat['mean']:.3f}"


def _p(test: dict[str, Any] | None) -> str:
    if not test or test.get("wilcoxon_p") is None:
        return "–"
    sign = "+" if test["mean_difference"] > 0 else "−"
    p = test["wilcoxon_p"]
    return (
        f"{sign}{abs(test['mean_difference']):.3f} (p={p:.1e})"
        if p < 1e-3
        else f"{sign}{abs(test['mean_difference']):.3f} (p={p:.3f})"
    )


def _save(fig: Figure, folder: Path, name: str, command: str, photo: bool = False) -> str:
    """Write ``fig`` beside the page: PNG for plots, JPEG for ``photo`` figures (image grids).

    A grid of aerial photographs is 5-6 MB as PNG and a tenth of that as quality-90 JPEG with no
    visible loss; plots stay PNG, where JPEG would smear the lines and text.
    """
    fig.text(0.01, -0.01, f"made by: {command}", fontsize=6.5, color="0.35", ha="left", va="top")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.{'jpg' if photo else 'png'}"
    with atomic_write(path) as fh:
        if photo:
            fig.savefig(fh, format="jpeg", dpi=110, bbox_inches="tight", pil_kwargs={"quality": 90})
        else:
            fig.savefig(fh, format="png", dpi=110, bbox_inches="tight")
    return path.name


# --- figures -------------------------------------------------------------------------------------------
def _grouped_bars(ax: Any, variants: list[dict[str, Any]], split: str, keys: tuple[tuple[str, str], ...]) -> None:
    """One group of bars per variant, one bar (mean, whisker: std over seeds) per metric, values printed.

    The y axis starts just below the smallest bar (not at 0) because the differences that matter are a
    few hundredths; the printed values keep the scale honest.
    """
    width = 0.8 / len(keys)
    x = np.arange(len(variants))
    low, high = 1.0, 0.0
    for k, (key, title) in enumerate(keys):
        means = np.array([v[split]["metrics"][key]["mean"] or 0.0 for v in variants])
        stds = np.array([v[split]["metrics"][key]["std"] or 0.0 for v in variants])
        bars = ax.bar(x + k * width, means, width, yerr=stds, capsize=2, label=title)
        ax.bar_label(bars, labels=[f"{m:.3f}" for m in means], fontsize=5.5, rotation=90, padding=2)
        low, high = min(low, float(means.min())), max(high, float((means + stds).max()))
    ax.set_ylim(max(0.0, low - 0.08), min(1.0, high + 0.08))
    ax.set_xticks(x + 0.4 - width / 2)
    ax.set_xticklabels([v["name"] for v in variants], rotation=30, ha="right", fontsize=8)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))


def comparison_figure(study: dict[str, Any]) -> Figure:
    """Grouped bars (mean ± std over seeds) of four test metrics for every loss of the comparison."""
    keys = (("map", "mAP"), ("wap_jac@10", "WAP-jac@10"), ("ndcg_jac@10", "nDCG-jac@10"), ("label_map_rare", "rare AP"))
    variants = study["variants"]
    fig = Figure(figsize=(max(7.0, 0.9 * len(variants) + 2), 3.8))
    ax = fig.add_subplot()
    _grouped_bars(ax, variants, "test", keys)
    ax.set_ylabel("test score")
    ax.set_title(study["title"] + " (test queries; bars: mean, whiskers: std over seeds)")
    fig.tight_layout()
    return fig


def study_per_label_figure(study: dict[str, Any], names: tuple[str, ...], rare_threshold: float) -> Figure:
    """Per-label test AP (mean over seeds) of a few methods of a study."""
    chosen = [v for v in study["variants"] if v["name"] in names]
    series = {v["label"]: v["test"]["per_label_ap"] for v in chosen}
    return per_label_figure(series, chosen[0]["test"]["rare_labels"], rare_threshold, "per-label AP (test)")


def heatmap_figure(study: dict[str, Any]) -> Figure:
    """Validation mAP and rare-label AP over the study's two coordinates (alpha × beta)."""
    variants = study["variants"]
    xs = sorted({v["coords"]["alpha"] for v in variants})
    ys = sorted({v["coords"]["beta"] for v in variants})
    fig = Figure(figsize=(8.5, 3.6))
    for panel, (key, title) in enumerate((("map", "validation mAP"), ("label_map_rare", "validation rare-label AP"))):
        grid = np.full((len(ys), len(xs)), np.nan)
        for v in variants:
            grid[ys.index(v["coords"]["beta"]), xs.index(v["coords"]["alpha"])] = v["val"]["metrics"][key]["mean"]
        ax = fig.add_subplot(1, 2, panel + 1)
        image = ax.imshow(grid, origin="lower", cmap="viridis")
        for (r, c), value in np.ndenumerate(grid):
            if not np.isnan(value):
                ax.text(c, r, f"{value:.3f}", ha="center", va="center", color="white", fontsize=9)
        ax.set_xticks(range(len(xs)), [f"{x:g}" for x in xs])
        ax.set_yticks(range(len(ys)), [f"{y:g}" for y in ys])
        ax.set_xlabel("alpha (shared-label sharpening)")
        ax.set_ylabel("beta (rare-anchor sharpening)")
        ax.set_title(title)
        fig.colorbar(image, ax=ax, shrink=0.8)
    fig.suptitle(study["title"])
    fig.tight_layout()
    return fig


def curve_figure(study: dict[str, Any]) -> Figure:
    """Validation mAP and rare-label AP against the study's single coordinate."""
    variants = sorted(study["variants"], key=lambda v: next(iter(v["coords"].values())))
    name = next(iter(variants[0]["coords"]))
    xs = [v["coords"][name] for v in variants]
    fig = Figure(figsize=(5.5, 3.4))
    ax = fig.add_subplot()
    for key, title in (("map", "val mAP"), ("label_map_rare", "val rare-label AP"), ("ndcg_jac@10", "val nDCG-jac@10")):
        means = np.array([v["val"]["metrics"][key]["mean"] for v in variants], dtype=float)
        stds = np.array([v["val"]["metrics"][key]["std"] or 0.0 for v in variants], dtype=float)
        ax.errorbar(xs, means, yerr=stds, marker="o", capsize=3, label=title)
    if name in ("lr", "tau"):
        ax.set_xscale("log")
        ax.minorticks_off()
    ax.set_xticks(xs, [f"{x:g}" for x in xs])
    ax.set_xlabel(name)
    ax.set_ylabel("score")
    ax.legend(fontsize=8)
    ax.set_title(study["title"])
    fig.tight_layout()
    return fig


def bars_figure(study: dict[str, Any]) -> Figure:
    """Validation mAP and rare-label AP of each variant (an on/off ablation)."""
    variants = study["variants"]
    keys = (("map", "val mAP"), ("label_map_rare", "val rare-label AP"), ("ndcg_jac@10", "val nDCG-jac@10"))
    fig = Figure(figsize=(max(5.5, 1.2 * len(variants) + 2), 3.8))
    ax = fig.add_subplot()
    _grouped_bars(ax, variants, "val", keys)
    ax.set_title(study["title"], fontsize=10)
    fig.tight_layout()
    return fig


def grid_figure(config: Config, tops: dict[str, dict[str, Any]], n_queries: int = 3) -> Figure:
    """The same test queries' top-6 under each method (seed 0); green frame: shares a label, red: none."""
    splits = ArchiveSplits(config.dataset)
    query_split = splits.raw(config.protocol.queries)
    images = splits.locate(config.protocol.database)
    freq = splits.raw("train").label_frequencies()
    rows = []
    for qi in pick_queries(query_split.label_matrix, freq, config.evaluate.rare_threshold, n_queries):
        qid, q_labels = query_split.ids[qi], query_split.label_matrix[qi].astype(bool)
        names = ", ".join(query_split.classes[c] for c in np.flatnonzero(q_labels))
        for method, top in tops.items():
            row = [Panel(query_split.read(qi), f"{method}\nquery: {names}", None)]
            for hit in top["hits"][top["query_ids"].index(qid)]:
                ds, n = images[hit]
                shared = [ds.classes[c] for c in np.flatnonzero(ds.label_matrix[n].astype(bool) & q_labels)]
                row.append(Panel(ds.read(n), ", ".join(shared) or "–", bool(shared)))
            rows.append(row)
    return retrieval_grid(rows, "Top-6 for the same test queries (seed 0); captions: labels shared with the query", 5.5)


# --- the page ------------------------------------------------------------------------------------------
def distinct(study: dict[str, Any]) -> dict[str, Any]:
    """``study`` without the variants that are the same training run as an earlier one (``same_as``)."""
    return {**study, "variants": [v for v in study["variants"] if not v.get("same_as")]}


def _same_run_notes(study: dict[str, Any]) -> list[str]:
    labels = {v["name"]: v["label"] for v in study["variants"]}
    notes = [
        f"- *{v['label']}* is the same training run as *{labels[v['same_as']]}* (identical settings under this "
        "config), so its row is not repeated."
        for v in study["variants"]
        if v.get("same_as")
    ]
    return [*notes, ""] if notes else []


def _metric_table(study: dict[str, Any], split: str) -> list[str]:
    head = "| variant | seeds | " + " | ".join(t for _, t in TABLE_METRICS) + " |"
    lines = [head, "|---" * (len(TABLE_METRICS) + 2) + "|"]
    for v in study["variants"]:
        cells = [_fmt(v[split]["metrics"].get(key)) for key, _ in TABLE_METRICS]
        lines.append(f"| {v['label']} | {len(v[split]['seeds'])} | " + " | ".join(cells) + " |")
    return lines


def _test_table(study: dict[str, Any], split: str) -> list[str]:
    ref = study["reference"]
    lines = [
        f"| variant | mAP Δ vs `{ref}` (Wilcoxon p) | nDCG-jac@10 Δ (p) | rare-label AP Δ (p) | train s/seed |",
        "|---|---|---|---|---|",
    ]
    for v in study["variants"]:
        tests = v[split].get("vs_reference", {})
        cells = [_p(tests.get(k)) for k in ("map", "ndcg_jac@10", "label_map_rare")]
        lines.append(f"| {v['label']} | " + " | ".join(cells) + f" | {v[split]['train_seconds']:.0f} |")
    return lines


def _ablation_table(study: dict[str, Any]) -> list[str]:
    ref = study["reference"]
    lines = [
        f"| variant | val mAP | val rare AP | val nDCG-jac@10 | val mAP Δ vs {ref} (p) | val rare AP Δ (p) "
        "| test mAP | test rare AP |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for v in study["variants"]:
        val, test, tests = v["val"]["metrics"], v["test"]["metrics"], v["val"].get("vs_reference", {})
        lines.append(
            f"| {v['label']} | {_fmt(val['map'])} | {_fmt(val['label_map_rare'])} | {_fmt(val['ndcg_jac@10'])} | "
            f"{_p(tests.get('map'))} | {_p(tests.get('label_map_rare'))} | {_fmt(test['map'])} | "
            f"{_fmt(test['label_map_rare'])} |"
        )
    return lines


def machine_description(results: list[dict[str, Any]]) -> str:
    machines = sorted({json.dumps(r["machine"], sort_keys=True) for r in results if r.get("machine")})
    return "; ".join(", ".join(f"{k}: {v}" for k, v in json.loads(m).items()) for m in machines) or "unknown"


def write_page(
    config: Config,
    config_args: str,
    preset: str,
    summaries: dict[str, dict[str, Any]],
    machine: str,
    tops: dict[str, dict[str, Any]],
    page: Path,
    results_file: Path,
    keep_grid: bool = False,
    studies: list[str] | None = None,
    seeds: list[int] | None = None,
) -> None:
    """Write ``results_file`` (JSON) and ``page`` (Markdown) with figures in ``<page dir>/figures/<page stem>``.

    Each page has its own figure folder, so pages of two presets side by side do not overwrite each
    other's figures.

    ``tops`` (the compare study's top-6 lists) draw the retrieval grids; a page re-rendered from a results
    file (which does not hold them) passes ``keep_grid`` to keep the grid figure already beside it.
    ``config_args`` are the command-line arguments that name the configuration (``-c FILE --set K=V …``,
    shell-quoted), so that every command the page quotes reruns the same cells; ``studies`` names the
    studies the page was restricted to (``None``: all), and ``seeds`` the seeds it gathered (``None``: read
    from a results file), for the command it quotes.
    """
    page = Path(page)
    figures = page.parent / "figures" / page.stem
    rel = f"figures/{page.stem}"
    where = f" {config_args}" if config_args else ""
    base = f"macl bench{where} --preset {preset}"
    page_cmd = f"macl bench-page{where} --preset {preset}" + (f" --study {' '.join(studies)}" if studies else "")
    page_cmd += f" --seeds {' '.join(map(str, seeds))}" if seeds else ""
    payload = {
        "dataset": asdict(config.dataset),
        "protocol": asdict(config.protocol),
        "preset": preset,
        "machine": machine,
        "python": platform.python_version(),
        "generated_by": page_cmd,
        "studies": summaries,
    }
    results_file.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(results_file) as fh:
        fh.write(json.dumps(payload, indent=1).encode())
    lines = [
        "# Results: MACL against its baselines, and its ablations",
        "",
        f"<!-- generated by `{page_cmd}`; do not edit by hand -->",
        "",
        f"Generated by `{page_cmd}` from {'finished benchmark cells' if not keep_grid else 'its results file'}; "
        f"numbers in `{results_file.as_posix()}`.",
        f"Dataset `{config.dataset.name}`, preset `{preset}`, machine: {machine}.",
        "",
    ]
    for name, full_study in summaries.items():
        if not full_study["variants"]:
            continue
        study = distinct(full_study)
        seeds = sorted({s for v in study["variants"] for s in v["test"]["seeds"]})
        cmd = f"{base} --study {name} --seeds {' '.join(map(str, seeds))}"
        lines += [f"## {study['title']}", "", f"Command: `{cmd}`", ""]
        if study["question"]:
            lines += [study["question"], ""]
        lines += _same_run_notes(full_study)
        if study["figure"] == "bars" and name in COMPARISONS:
            lines += ["Test split (queries against the database of the protocol), mean ± std over seeds:", ""]
            lines += [*_metric_table(study, "test"), ""]
            lines += [
                f"Paired tests against `{study['reference']}` over seeds × queries (rare AP: seeds × rare "
                "labels); Δ = variant − reference:",
                "",
            ]
            lines += [*_test_table(study, "test"), ""]
            lines += ["Validation split (val queries against train), the split used for choices:", ""]
            lines += [*_metric_table(study, "val"), ""]
            fig_name = _save(comparison_figure(study), figures, f"{name}_bars", cmd)
            lines += [f"![{study['title']}]({rel}/{fig_name})", ""]
            present = tuple(n for n in GRID_METHODS if any(v["name"] == n for v in study["variants"]))
            if name in ("compare", "headline") and present:
                figure = study_per_label_figure(study, present, config.evaluate.rare_threshold)
                fig_name = _save(figure, figures, "per_label_ap" if name == "compare" else f"per_label_ap_{name}", cmd)
                lines += [f"![per-label AP]({rel}/{fig_name})", ""]
            continue
        lines += [*_ablation_table(study), ""]
        draw = {"heatmap": heatmap_figure, "curve": curve_figure, "bars": bars_figure}[study["figure"]]
        fig_name = _save(draw(study), figures, f"ablation_{name}", cmd)
        lines += [f"![{study['title']}]({rel}/{fig_name})", ""]
    grid = "retrieval_grids.jpg"
    if tops:
        _save(grid_figure(config, tops), figures, "retrieval_grids", f"{base} --study compare --seeds 0", photo=True)
    if tops or (keep_grid and (figures / grid).is_file()):
        lines += ["## Retrieval grids", "", f"![top-6 retrieval]({rel}/{grid})", ""]
    with atomic_write(page) as fh:
        fh.write("\n".join(lines).encode())
