"""The ``macl`` command. It parses arguments, shows progress and tables, and calls the library.

Every failure a user can cause (a missing file, a corrupt image or index, a bad config value) raises a
:class:`macl.errors.MaclError` and ends with one line ``macl: error: …`` naming the culprit and exit
status 2. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from macl.bench.studies import PRESETS
from macl.config import Config, load_config
from macl.errors import ArgumentError, MaclError
from macl.fileio import atomic_write
from macl.losses import LOSSES

console = Console()
errors = Console(stderr=True)


def _config(args: argparse.Namespace) -> Config:
    return load_config(args.config, args.set)


def _add_config_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", "-c", type=Path, help="YAML config (default: the built-in synthetic archive)")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value, e.g. --set train.epochs=5 --set dataset.root=/data/ucm (repeatable)",
    )


def _checkpoint(args: argparse.Namespace, config: Config) -> Path:
    return args.checkpoint or config.run_dir / "best.pt"


def _train_with_progress(config: Config, resume: bool) -> Any:
    from macl import pipeline

    with Progress(
        TextColumn("[bold]epoch {task.fields[epoch]}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} steps · loss {task.fields[loss]:.3f} · {task.fields[ips]:.0f} img/s"),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
        task = progress.add_task("train", total=1, epoch=0, loss=0.0, ips=0.0)

        def on_start(trainer: Any) -> None:
            progress.update(task, total=trainer.steps_per_epoch, epoch=trainer.epoch + 1)

        def on_step(loss: float, ips: float) -> None:
            progress.update(task, advance=1, loss=loss, ips=ips)

        def on_epoch(log: Any) -> None:
            val = f", validation mAP {log.val_map:.3f}" if log.val_map is not None else ""
            progress.console.print(f"epoch {log.epoch}: loss {log.loss:.4f}, {log.images_per_s:.0f} img/s{val}")
            if log.epoch < config.train.epochs:
                progress.update(task, completed=0, epoch=log.epoch + 1)

        return pipeline.train(config, resume=resume, on_start=on_start, on_step=on_step, on_epoch=on_epoch)


def cmd_train(args: argparse.Namespace) -> int:
    from macl.distributed import environment_world

    config = _config(args)
    if not environment_world().is_main:  # under torchrun: rank 0 shows progress and writes the run folder
        from macl import pipeline

        pipeline.train(config, resume=args.resume)
        return 0
    trainer = _train_with_progress(config, args.resume)
    console.print(f"checkpoints in {config.output}/ (last.pt, best.pt); best validation mAP {trainer.best_map:.3f}")
    return 0


def cmd_embed(args: argparse.Namespace) -> int:
    import numpy as np

    from macl import pipeline

    config = _config(args)
    if args.shards is not None:
        from macl.shards import embed_shards

        progress, update = _embedding_progress()
        with progress:
            manifest = embed_shards(
                config,
                _checkpoint(args, config),
                args.splits,
                args.shards,
                shard_size=args.shard_size,
                workers=args.workers,
                progress=update,
            )
        console.print(f"{manifest.n_items} embeddings in {manifest.n_shards} shards → {args.shards}")
        return 0
    model, _ = pipeline.load_model(_checkpoint(args, config))
    progress, update = _embedding_progress()
    with progress:
        emb, classes = pipeline.embed_splits(config, model, args.splits, progress=update)
    out = args.out or config.run_dir / "embeddings.npz"
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(out) as fh:
        np.savez(fh, embeddings=emb.vectors, labels=emb.labels, ids=np.array(emb.ids), classes=np.array(classes))
    console.print(f"{len(emb.ids)} embeddings of dimension {emb.vectors.shape[1]} → {out}")
    return 0


def _embedding_progress() -> tuple[Progress, Callable[[int, int], None]]:
    progress = Progress(
        TextColumn("embedding"), BarColumn(), TextColumn("{task.completed}/{task.total} images"), console=console
    )
    task = progress.add_task("embed", total=None)
    return progress, lambda done, total: progress.update(task, completed=done, total=total)


def cmd_index(args: argparse.Namespace) -> int:
    from macl import pipeline

    config = _config(args)
    progress, update = _embedding_progress()
    with progress:
        path = pipeline.build_index(config, _checkpoint(args, config), args.out, update, shards=args.from_shards)
    console.print(f"index ({config.index.backend}) → {path}")
    return 0


def _names(text: str) -> tuple[str, ...]:
    """``"ship, water"`` → ``("ship", "water")``."""
    return tuple(name.strip() for name in text.split(",") if name.strip())


def cmd_search(args: argparse.Namespace) -> int:
    from macl import pipeline

    config = _config(args)
    from macl.index import LabelFilter

    labels = list(_names(args.labels)) if args.labels else None
    where = LabelFilter(require=_names(args.require), any_of=_names(args.any))
    index = args.index or config.run_dir / "archive.index"
    k = args.k or config.index.k
    query, hits = pipeline.search(index, _checkpoint(args, config), k, args.image, args.id, labels, where)
    table = Table(title=f"top {len(hits)} for {query}")
    for column in ("rank", "id", "score", "shares", "misses", "labels"):
        table.add_column(column)
    for rank, hit in enumerate(hits, 1):
        table.add_row(
            str(rank), hit.id, f"{hit.score:.3f}", ", ".join(hit.shared), ", ".join(hit.missing), ", ".join(hit.labels)
        )
    console.print(table)
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    try:
        import uvicorn

        from macl.web.app import create_app
    except ModuleNotFoundError as err:  # the web layer's packages are an extra, not the library's dependencies
        if (err.name or "").split(".")[0] not in ("fastapi", "starlette", "uvicorn", "pydantic"):
            raise
        raise MaclError(f"'macl serve' needs the web extra ({err.name} is missing): pip install 'macl[web]'") from err
    config = _config(args)
    index = args.index or config.run_dir / "archive.index"
    with console.status(f"loading the model and opening {index}…"):
        app = create_app(config, index, _checkpoint(args, config))
    console.print(f"serving {index} at [bold]http://{args.host}:{args.port}/[/bold] (read-only; Ctrl+C stops)")
    uvicorn.run(app, host=args.host, port=args.port)
    return 0


def _print_metrics(results: dict[str, Any]) -> None:
    from macl.report import HEADLINE

    table = Table(title="retrieval on the protocol's queries")
    table.add_column("metric")
    for name in results:
        table.add_column(name, justify="right")
    for key in HEADLINE:
        table.add_row(key, *(f"{r.report.metrics.get(key, float('nan')):.3f}" for r in results.values()))
    first = next(iter(results.values()))
    for key in first.literature.metrics if first.literature is not None else []:
        table.add_row(key, *(f"{r.literature.metrics[key]:.3f}" for r in results.values()))
    console.print(table)


def cmd_evaluate(args: argparse.Namespace) -> int:
    from macl import pipeline

    config = _config(args)
    suffix = "" if config.protocol.kind == "split" else f"_{config.protocol.kind}"
    results = {}
    if args.untrained:
        untrained = pipeline.untrained_model(config)
        results["untrained"] = pipeline.evaluate(config, untrained, f"metrics_untrained{suffix}")
    model, _ = pipeline.load_model(_checkpoint(args, config))
    results["trained"] = pipeline.evaluate(config, model, f"metrics_trained{suffix}")
    _print_metrics(results)
    console.print(f"results → {config.output}/metrics_*{suffix}.json and .md")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from macl import pipeline
    from macl.errors import MissingFileError
    from macl.report import write_report

    run = args.run
    if not (run / "config.yaml").is_file():
        raise MissingFileError(f"{run / 'config.yaml'} does not exist: is {run} a training run folder?")
    config = load_config(run / "config.yaml")
    checkpoint = run / "best.pt"
    model = pipeline.load_model(checkpoint)[0] if checkpoint.is_file() else None
    console.print(f"report → {write_report(run, config, model)}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from macl import pipeline
    from macl.report import write_report

    config = load_config(args.config or Path(__file__).parent / "demo.yaml", args.set)
    run = config.run_dir
    console.rule("[bold]macl demo[/bold]: synthetic aerial archive → train → index → evaluate → report")
    console.print(f"1/4 training {config.train.loss} (resumes if {run}/last.pt exists)")
    _train_with_progress(config, resume=True)
    checkpoint = run / "best.pt"
    console.print("2/4 indexing the database")
    pipeline.build_index(config, checkpoint)
    console.print("3/4 evaluating the trained and the untrained network")
    model = pipeline.load_model(checkpoint)[0]
    untrained = pipeline.evaluate(config, pipeline.untrained_model(config), "metrics_untrained")
    trained = pipeline.evaluate(config, model, "metrics_trained")
    _print_metrics({"untrained": untrained, "trained": trained})
    console.print("4/4 writing the report")
    report = write_report(run, config, model)
    console.print(f"\n[bold green]report:[/bold green] {report.resolve()}")
    console.print(
        "try a search:  [bold].venv/bin/macl search --config src/macl/demo.yaml --labels ship,water[/bold]"
        "  (or --id syn00007, or --image <any image file>)"
    )
    return 0


def cmd_recommend_index(args: argparse.Namespace) -> int:
    from macl.index.recommend import parse_bytes, recommend

    choice = recommend(args.items, args.dim, parse_bytes(args.memory))
    settings = " ".join(f"--set index.{k}={v}" for k, v in choice.params.items() if k != "index_type")
    if choice.backend == "milvus":
        settings = f"--set index.milvus_index={choice.params['index_type']} --set index.uri=http://HOST:19530"
    console.print(f"backend [bold]{choice.backend}[/bold]: {choice.reason}")
    if choice.ram_bytes:
        console.print(f"about {choice.ram_bytes / 2**30:.2f} GiB of RAM for {args.items} items of dimension {args.dim}")
    console.print(f"macl index --set index.backend={choice.backend} {settings}".rstrip())
    return 0


def cmd_selfcheck(args: argparse.Namespace) -> int:
    from macl.selfcheck import run_selfcheck

    console.print(f"[bold]macl self-check[/bold]: {len(args.losses)} losses × {args.steps} steps on synthetic features")
    with console.status("training and evaluating…"):
        rows = run_selfcheck(tuple(args.losses), steps=args.steps, seed=args.seed)
    table = Table(title="test queries vs train database (cosine ranking)")
    for column in ("loss", "mAP", "nDCG@20", "rare-label AP", "frequent-label AP", "seconds"):
        table.add_column(column, justify="left" if column == "loss" else "right")
    for r in rows:
        cells = (r.map, r.ndcg, r.rare_label_ap, r.frequent_label_ap)
        table.add_row(r.loss, *(f"{v:.3f}" for v in cells), f"{r.seconds:.1f}")
    console.print(table)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps([asdict(r) for r in rows], indent=2))
        console.print(f"wrote {args.json}")
    return 0


def _bench_root(args: argparse.Namespace, config: Config) -> Path:
    return args.root or config.run_dir / f"bench-{args.preset}"


def _chosen_studies(names: list[str] | None, known: dict[str, Any]) -> list[str] | None:
    """The studies named on the command line, checked; ``None`` for all of them (``all`` or none named)."""
    if not names or names == ["all"]:
        return None
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ArgumentError(f"unknown study {unknown}; choose from {['all', *known]}")
    return list(names)


def cmd_bench(args: argparse.Namespace) -> int:
    from macl.archive import ArchiveSplits
    from macl.bench.runner import run_study
    from macl.bench.studies import studies

    config, known = _config(args), studies()
    names = _chosen_studies(args.study, known) or list(known)
    chosen = {name: known[name] for name in names}
    if args.only:  # a subset of the studies' variants: the cells a question needs, not every row
        available = {v.name for s in chosen.values() for v in s.variants}
        if unknown := sorted(set(args.only) - available):
            raise ArgumentError(f"--only: no variant {unknown} in {names}; choose from {sorted(available)}")
        keep = set(args.only)
        chosen = {n: replace(s, variants=tuple(v for v in s.variants if v.name in keep)) for n, s in chosen.items()}
    root, splits = _bench_root(args, config), ArchiveSplits(config.dataset)
    for name, study in chosen.items():
        console.print(f"[bold]{name}[/bold]: {study.title} · preset {args.preset} · seeds {args.seeds} → {root}")
        log = lambda line: console.print(line, markup=False, highlight=False)  # noqa: E731
        run_study(config, study, args.preset, args.seeds, root, splits, args.keep_checkpoints, log)
    return 0


def cmd_bench_page(args: argparse.Namespace) -> int:
    from macl.bench.page import GRID_METHODS, machine_description, write_page
    from macl.bench.runner import load_cell
    from macl.bench.studies import studies
    from macl.bench.summary import relabel, summarize_study
    from macl.errors import MissingFileError

    config, known = _config(args), studies()
    root = _bench_root(args, config)
    page = args.out or root / "results.md"
    # how the page's commands name this configuration: the file and every override, so they rerun the same cells
    overrides = [part for override in args.set or [] for part in ("--set", override)]
    config_args = shlex.join([*(["-c", str(args.config)] if args.config else []), *overrides])
    chosen = _chosen_studies(args.study, known)
    if args.from_results is not None:
        if not args.from_results.is_file():
            raise MissingFileError(f"results file {args.from_results} does not exist")
        old = json.loads(args.from_results.read_text())
        results = args.results or args.from_results
        summaries = relabel({k: v for k, v in old["studies"].items() if chosen is None or k in chosen}, known)
        machine = "; ".join(part for part in old["machine"].split("; ") if part.strip(" ."))  # drop empty entries
        seeds = sorted({s for study in summaries.values() for v in study["variants"] for s in v["test"]["seeds"]})
        write_page(
            config,
            config_args,
            args.preset,
            summaries,
            machine,
            {},
            page,
            results,
            keep_grid=True,
            studies=chosen,
            seeds=seeds,
        )
        console.print(f"wrote {page} and {results} from {args.from_results}")
        return 0
    summaries, cells, tops = {}, [], {}
    for name, study in known.items():
        if chosen is not None and name not in chosen:
            continue
        found = {
            v.name: [c for s in args.seeds if (c := load_cell(config, v, args.preset, s, root))] for v in study.variants
        }
        cells += [c for found_cells in found.values() for c in found_cells]
        summaries[name] = summarize_study(study, found)
        if name == "compare":
            tops = {n: found[n][0]["test_top"] for n in GRID_METHODS if found.get(n) and found[n][0]["seed"] == 0}
    if not cells:
        raise MissingFileError(f"no finished benchmark cells under {root}; run 'macl bench' first")
    results = args.results or root / f"quality-{config.dataset.name}-{args.preset}.json"
    write_page(
        config,
        config_args,
        args.preset,
        summaries,
        machine_description(cells),
        tops,
        page,
        results,
        studies=chosen,
        seeds=args.seeds,
    )
    console.print(f"wrote {page} and {results} from {len(cells)} cells")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="macl",
        description="Multi-label contrastive learning (MACL and baselines) for remote-sensing image retrieval. "
        "Start with 'macl demo'; then 'macl train -c configs/ucm.yaml', 'macl index', 'macl evaluate', "
        "'macl search', 'macl report'.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, func: Callable[[argparse.Namespace], int], help_text: str, config: bool = True) -> Any:
        p = sub.add_parser(name, help=help_text, description=help_text)
        if config:
            _add_config_args(p)
        p.set_defaults(func=func)
        return p

    p = add("demo", cmd_demo, "train MACL on the built-in synthetic archive, index, evaluate, write the report")
    p = add(
        "train",
        cmd_train,
        "train an encoder with a contrastive loss (or the BCE baseline); under torchrun, on every process "
        "(e.g. torchrun --nproc-per-node 4 --no-python macl train -c run.yaml; see docs/distributed.md)",
    )
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue from <output>/last.pt if it exists (with any number of processes dividing train.batch_size)",
    )
    p = add("embed", cmd_embed, "embed splits of the archive with a trained model into an .npz file")
    p.add_argument("--checkpoint", type=Path, help="default <output>/best.pt")
    p.add_argument("--splits", nargs="+", default=["train", "val", "test"])
    p.add_argument("--out", type=Path, help="default <output>/embeddings.npz")
    p.add_argument(
        "--shards",
        type=Path,
        metavar="DIR",
        help="write resumable shards (embeddings, ids, labels, manifest) into DIR instead of one .npz; "
        "under torchrun each rank embeds its own shards",
    )
    p.add_argument("--shard-size", type=_positive, default=4096, help="items per shard (default 4096)")
    p.add_argument("--workers", type=_positive, default=1, help="embedding processes on this machine (default 1)")
    p = add("index", cmd_index, "embed the protocol's database (or read shards) and build a searchable index")
    p.add_argument("--checkpoint", type=Path, help="default <output>/best.pt")
    p.add_argument("--out", type=Path, help="default <output>/archive.index")
    p.add_argument("--from-shards", type=Path, metavar="DIR", help="build from 'macl embed --shards DIR' output")
    p = add("search", cmd_search, "top-k images for an image file, an archive id, or a set of labels")
    p.add_argument("--checkpoint", type=Path, help="default <output>/best.pt")
    p.add_argument("--index", type=Path, help="default <output>/archive.index")
    query = p.add_mutually_exclusive_group(required=True)
    query.add_argument("--image", type=Path, help="a query image file")
    query.add_argument("--id", help="the id of an indexed image")
    query.add_argument("--labels", help="comma-separated label names, e.g. water,ship")
    p.add_argument("-k", type=_positive, help="number of hits (default: the config's index.k, 10)")
    p.add_argument("--require", default="", help="only hits carrying all of these labels, e.g. ship,water")
    p.add_argument("--any", default="", help="only hits carrying at least one of these labels, e.g. ship,harbor")
    p = add("serve", cmd_serve, "serve the search page and its JSON API for a run's index (read-only)")
    p.add_argument("--checkpoint", type=Path, help="default <output>/best.pt")
    p.add_argument("--index", type=Path, help="default <output>/archive.index")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=_positive, default=8000, help="port (default 8000)")
    p = add("evaluate", cmd_evaluate, "all retrieval metrics of the protocol, written as JSON and Markdown")
    p.add_argument("--checkpoint", type=Path, help="default <output>/best.pt")
    p.add_argument("--untrained", action="store_true", help="also evaluate the untrained network, for comparison")
    p = add("report", cmd_report, "write <run>/report.html: metrics, per-label AP, curve, retrieval grids", False)
    p.add_argument("run", type=Path, help="a training run folder (the config's output)")
    p = add("bench", cmd_bench, "train and evaluate the loss comparison and the MACL ablations (resumable)")
    p.add_argument("--study", nargs="+", default=["compare"], help="studies to run, or 'all' (default: compare)")
    p.add_argument("--preset", default="quick", choices=list(PRESETS), help="run size (default quick)")
    p.add_argument("--seeds", nargs="+", type=int, default=[0], help="seeds (default 0)")
    p.add_argument("--root", type=Path, help="benchmark folder (default <output>/bench-<preset>)")
    p.add_argument("--keep-checkpoints", action="store_true", help="keep every cell's final checkpoint")
    p.add_argument(
        "--only", nargs="+", metavar="VARIANT", help="train only these variants of the studies (default: all)"
    )
    p = add("bench-page", cmd_bench_page, "write the results file, figures and results page from finished cells")
    p.add_argument("--preset", default="quick", choices=list(PRESETS), help="run size (default quick)")
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2], help="seeds to gather (default 0 1 2)")
    p.add_argument(
        "--study", nargs="+", metavar="STUDY", help="only these studies on the page (default: every study with cells)"
    )
    p.add_argument("--root", type=Path, help="benchmark folder (default <output>/bench-<preset>)")
    p.add_argument("--out", type=Path, help="the Markdown page (default <root>/results.md, figures beside it)")
    p.add_argument("--results", type=Path, help="results file (default <root>/quality-<dataset>-<preset>.json)")
    p.add_argument(
        "--from-results",
        type=Path,
        metavar="FILE",
        help="re-render the page from a results file instead of cells (same numbers, today's labels; "
        "the retrieval grid figure is kept, not redrawn)",
    )
    p = add("recommend-index", cmd_recommend_index, "which index backend fits an archive and a memory budget", False)
    p.add_argument("--items", type=_positive, required=True, help="number of images in the archive")
    p.add_argument("--dim", type=_positive, default=512, help="embedding dimension (default 512, ResNet-18)")
    p.add_argument("--memory", default="8G", help="RAM the index may use, e.g. 8G, 512M (default 8G)")
    p = add("selfcheck", cmd_selfcheck, "one-minute check of every loss on synthetic features (no images)", False)
    p.add_argument(
        "--losses",
        nargs="+",
        default=["ntxent", "supcon-any", "mulsupcon", "macl", "weighted-macl"],
        choices=sorted(LOSSES),
        metavar="LOSS",
        help=f"losses to train (from: {', '.join(sorted(LOSSES))})",
    )
    p.add_argument("--steps", type=_positive, default=300, help="optimisation steps per loss (default 300)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", type=Path, help="also write the table as JSON to this file")
    return parser


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except MaclError as err:
        errors.print(f"macl: error: {err}", style="red", highlight=False, soft_wrap=True, markup=False)
        return 2


if __name__ == "__main__":
    sys.exit(main())
