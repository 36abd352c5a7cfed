"""Retrieval post-processing, and the literature protocol, evaluated on a study's trained cells without
training anything again.

Every cell of a study run with ``--keep-checkpoints`` keeps its final weights (``last.pt``). For each such
cell this module embeds the validation protocol (val queries against the training images) and the
config's test protocol once — with the predicted label probabilities when the model has a label
classifier (the BCE baseline, a hybrid) — then scores every post-processing option of :data:`OPTIONS` on
those embeddings (:func:`macl.evaluate.score_embeddings`, what ``macl evaluate`` runs), on validation,
on the test protocol and on the literature protocol (20 % of the test split, OML's seed, against the
rest of it). Each result has
the shape of a cell's ``result.json`` (val and test reports with per-query values), so a (variant,
option) pair is summarised and paired-tested exactly like a trained variant
(:func:`macl.bench.summary.summarize_variant`).

Options are chosen on validation only (:func:`choose`); the test numbers are reported beside them.
Results are cached per cell in ``<cell>/postprocess.json`` keyed by the options' settings.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from macl import pipeline
from macl.archive import ArchiveSplits
from macl.bench.runner import cell_dir
from macl.bench.studies import UNTRAINED, Study
from macl.bench.summary import compare, per_query_values, rare_label_ap, summarize_variant
from macl.config import Config
from macl.evaluate import embed_protocol, literature_split, score_embeddings
from macl.fileio import atomic_write
from macl.postprocess import PostProcessing

# The options compared. Fusion weights need a label classifier; they are skipped for the others.
OPTIONS: dict[str, PostProcessing] = {
    "none": PostProcessing(),
    "center": PostProcessing(center=True),
    "whiten-128": PostProcessing(whiten=128),
    "whiten-256": PostProcessing(whiten=256),
    "center+qe5": PostProcessing(center=True, qe_k=5),
    "center+dba5+qe5": PostProcessing(center=True, qe_k=5, dba_k=5),
    "fusion-0.25": PostProcessing(fusion=0.25),
    "fusion-0.5": PostProcessing(fusion=0.5),
    "fusion-0.75": PostProcessing(fusion=0.75),
    "center+fusion-0.5": PostProcessing(center=True, fusion=0.5),
}
# What "best on validation" means: the best rare-label AP among the options that keep binary mAP within
# MAP_TOLERANCE of no post-processing (the goal: tie on mAP, win on rare labels).
MAP_TOLERANCE = 0.01


def _key(option: PostProcessing) -> str:
    return json.dumps(asdict(option), sort_keys=True)


def evaluate_cell(
    config: Config, folder: Path, splits: ArchiveSplits, options: dict[str, PostProcessing]
) -> dict[str, dict[str, Any]]:
    """``{option name: {"val": report, "test": report}}`` of one cell's kept checkpoint (cached)."""
    cache_path = folder / "postprocess.json"
    cache: dict[str, Any] = json.loads(cache_path.read_text()) if cache_path.is_file() else {}
    model, state = pipeline.load_model(folder / "last.pt")
    wanted = {name: option for name, option in options.items() if option.fusion == 0 or model.predicts_labels}
    missing = {name: option for name, option in wanted.items() if _key(option) not in cache}
    if missing:
        cell = replace(config, train=replace(config.train, image_size=state["config"]["image_size"]))
        size, workers = cell.train.image_size, 0
        test = embed_protocol(model, splits, cell.protocol.queries, list(cell.protocol.database), size, workers)
        protocols = {
            "val": embed_protocol(model, splits, "val", ["train"], size, workers),
            "test": test,
            # the literature's protocol within the test split (OML: 20 % of it, seed 24, query the rest)
            "literature": literature_split(test[0], cell.protocol.query_fraction, cell.protocol.split_seed),
        }
        for option in missing.values():
            entry = {}
            for split, (q, db) in protocols.items():
                result = score_embeddings(q, db, splits, cell.evaluate, 0, option, literature=split == "literature")
                entry[split] = result.report.to_dict(include_per_query=True)
                if result.literature is not None:
                    entry[split]["literature"] = result.literature.to_dict(include_per_query=True)
            cache[_key(option)] = entry
        with atomic_write(cache_path) as fh:
            fh.write(json.dumps(cache).encode())
    return {name: cache[_key(option)] for name, option in wanted.items()}


def evaluate_study(
    config: Config,
    study: Study,
    preset: str,
    seeds: list[int],
    root: Path,
    options: dict[str, PostProcessing] | None = None,
    log: Callable[[str], None] = print,
) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """``{variant: {option: [cell-like results, one per seed]}}`` for every finished cell with a checkpoint."""
    options = options or OPTIONS
    splits = ArchiveSplits(config.dataset)
    out: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for variant in study.variants:
        if variant.name == UNTRAINED:
            continue
        for seed in seeds:
            folder = cell_dir(config, variant, preset, seed, root)
            result_path = folder / "result.json"
            if not (folder / "last.pt").is_file() or not result_path.is_file():
                log(f"  {variant.name} seed {seed}: no finished cell with a kept checkpoint, skipped")
                continue
            result = json.loads(result_path.read_text())
            for name, reports in evaluate_cell(config, folder, splits, options).items():
                cell = {**reports, "seed": seed, "train_seconds": result["train_seconds"]}
                out.setdefault(variant.name, {}).setdefault(name, []).append(cell)
            log(f"  {variant.name} seed {seed}: {len(out[variant.name])} post-processings scored")
    return out


def choose(per_option: dict[str, list[dict[str, Any]]]) -> str:
    """The option with the best validation rare-label AP among those whose validation mAP is within
    :data:`MAP_TOLERANCE` of ``none`` (seed means; ties: the one listed first)."""

    def val(name: str, key: str) -> float:
        return float(summarize_variant(per_option[name], "val")["metrics"][key]["mean"])

    floor = val("none", "map") - MAP_TOLERANCE
    allowed = [name for name in per_option if val(name, "map") >= floor]
    return max(allowed, key=lambda name: val(name, "label_map_rare"))


def summarize(results: dict[str, dict[str, list[dict[str, Any]]]], reference: tuple[str, str]) -> dict[str, Any]:
    """Per variant and option: val/test summaries, paired tests against ``reference`` = (variant, option),
    and each variant's option chosen on validation."""
    ref = results.get(reference[0], {}).get(reference[1], [])
    table: dict[str, Any] = {}
    for variant, per_option in results.items():
        entries = {}
        for name, cells in per_option.items():
            entry: dict[str, Any] = {}
            for split in ("val", "test"):
                entry[split] = summarize_variant(cells, split)
                if ref and (variant, name) != reference:
                    tests = {
                        k: compare(per_query_values(cells, split, k), per_query_values(ref, split, k))
                        for k in ("map", "ndcg_jac@10")
                    }
                    tests["label_map_rare"] = compare(rare_label_ap(cells, split), rare_label_ap(ref, split))
                    entry[split]["vs_reference"] = tests
            entries[name] = entry
        table[variant] = {"options": entries, "chosen": choose(per_option)}
    return {"reference": list(reference), "map_tolerance": MAP_TOLERANCE, "variants": table}


def _cell(stat: dict[str, Any] | None) -> str:
    if not stat or stat.get("mean") is None:
        return "–"
    return f"{stat['mean']:.3f} ± {stat['std']:.3f}" if len(stat["values"]) > 1 else f"{stat['mean']:.3f}"


def _p(test: dict[str, Any] | None) -> str:
    if not test or test.get("mean_difference") is None:
        return "–"
    p = test.get("wilcoxon_p")
    return f"{test['mean_difference']:+.3f} ({'–' if p is None else f'{p:.2g}'})"


def literature_summary(cells: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean ± std over seeds of the literature protocol's OML metrics."""
    from macl.bench.summary import _mean_std

    keys = cells[0]["literature"]["literature"]["metrics"].keys()
    return {k: _mean_std([c["literature"]["literature"]["metrics"][k] for c in cells]) for k in keys}


def page_lines(
    summary: dict[str, Any], results: dict[str, dict[str, list[dict[str, Any]]]], labels: dict[str, str]
) -> list[str]:
    """Markdown: every option per method (val and test), each method with its validation-chosen option
    against the reference, and the literature protocol's table."""
    ref_variant, ref_option = summary["reference"]
    lines = [
        "### Every post-processing option, per method",
        "",
        "Options are learnt on the database of each protocol (validation: the training images; test: "
        "train + val). Chosen on validation: the best rare-label AP among the options whose validation mAP "
        f"is within {summary['map_tolerance']} of no post-processing.",
        "",
    ]
    head = "| method | option | val mAP | val rare AP | test mAP | test rare AP | test nDCG-jac@10 | test ACG@10 |"
    lines += [head, "|---|---|---|---|---|---|---|---|"]
    for variant, entry in summary["variants"].items():
        for option, o in entry["options"].items():
            v, t = o["val"]["metrics"], o["test"]["metrics"]
            mark = " **(chosen)**" if option == entry["chosen"] else ""
            lines.append(
                f"| {labels.get(variant, variant)} | {option}{mark} | {_cell(v['map'])} | {_cell(v['label_map_rare'])}"
                f" | {_cell(t['map'])} | {_cell(t['label_map_rare'])} | {_cell(t['ndcg_jac@10'])} | "
                f"{_cell(t['acg@10'])} |"
            )
    lines += [
        "",
        f"### Each method with and without its chosen post-processing (test), against `{ref_variant}` + `{ref_option}`",
        "",
        "Δ = row − reference, Wilcoxon p over seeds × queries (rare AP: seeds × rare labels).",
        "",
        "| method | option | mAP | nDCG-jac@10 | ACG@10 | mAP J≥0.6 | rare-label AP | frequent-label AP "
        "| mAP Δ (p) | rare AP Δ (p) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for variant, entry in summary["variants"].items():
        for option in dict.fromkeys(("none", entry["chosen"])):
            o = entry["options"][option]
            t, tests = o["test"]["metrics"], o["test"].get("vs_reference", {})
            lines.append(
                f"| {labels.get(variant, variant)} | {option} | {_cell(t['map'])} | {_cell(t['ndcg_jac@10'])} | "
                f"{_cell(t['acg@10'])} | {_cell(t['map_jac0.6'])} | {_cell(t['label_map_rare'])} | "
                f"{_cell(t['label_map_frequent'])} | {_p(tests.get('map'))} | {_p(tests.get('label_map_rare'))} |"
            )
    first = next(iter(results.values()))["none"][0]["literature"]["literature"]
    keys = [k for k in first["metrics"] if k.startswith("lit_map") or k.endswith(("@20", "@100"))]
    lines += [
        "",
        "### The literature protocol (OML's definitions; 20 % of the test split, seed 24, against the rest)",
        "",
        f"{first['n_queries']} queries; mAP over the {first['n_map_queries']} with an item at Jaccard distance "
        "≤ 0.2 (seed 0's count). Definitions and their differences from ours: [literature.md](literature.md).",
        "",
        "| method | option | " + " | ".join(keys) + " |",
        "|---|---" + "|---" * len(keys) + "|",
    ]
    for variant, entry in summary["variants"].items():
        for option in dict.fromkeys(("none", entry["chosen"])):
            stats = literature_summary(results[variant][option])
            lines.append(
                f"| {labels.get(variant, variant)} | {option} | " + " | ".join(_cell(stats[k]) for k in keys) + " |"
            )
    return [*lines, ""]
