"""The benchmark harness end to end on the synthetic archive (tiny preset): every loss trains once,
finished cells are skipped, identical cells are shared between studies, and the page is written."""

from __future__ import annotations

import json
import shlex
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from macl import pipeline
from macl.archive import ArchiveSplits
from macl.bench.runner import cell_dir, run_study
from macl.bench.studies import PRESETS, UNTRAINED, cell_key, resolve_train, studies
from macl.bench.summary import paired_test, summarize_study
from macl.cli import main
from macl.config import BCE, load_config
from macl.losses import LOSSES

ARCHIVE = ["--set", "dataset.args={num_images: 120, image_size: 32, seed: 3}", "--set", "train.batch_size=16"]


@pytest.fixture(scope="module")
def bench(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("bench")
    assert (
        main(
            [
                "bench",
                "--study",
                "compare",
                "plr",
                "--preset",
                "tiny",
                "--seeds",
                "0",
                "1",
                "--root",
                str(root),
                *ARCHIVE,
            ]
        )
        == 0
    )
    return root


def test_every_loss_of_the_comparison_ran_with_both_seeds(bench: Path) -> None:
    results = [json.loads(p.read_text()) for p in bench.glob("cells/*/seed*/result.json")]
    ran = {(r["train_config"]["loss"], r["seed"]) for r in results if r["trained"]}
    wanted = {"macl", "mulsupcon", "supcon-any", "supcon-all", "jaccard-supcon", "simdis", "ntxent", BCE}
    assert {loss for loss, _ in ran} == wanted
    assert all((loss, seed) in ran for loss in wanted for seed in (0, 1))
    assert any(not r["trained"] for r in results)  # the untrained reference row
    for r in results:
        assert r["train_config"]["image_size"] == PRESETS["tiny"]["image_size"]
        for split in ("val", "test"):
            assert 0.0 <= r[split]["metrics"]["map"] <= 1.0
            assert len(r[split]["per_query"]["map"]) == r[split]["n_queries"]
        assert len(r["test_top"]["hits"]) == r["test"]["n_queries"]
        assert all(len(h) == 6 for h in r["test_top"]["hits"])
    assert not list(bench.glob("cells/*/seed*/last.pt"))  # checkpoints of finished cells are removed


def test_rerun_skips_finished_cells(bench: Path, capsys) -> None:
    before = {p: p.stat().st_mtime_ns for p in bench.glob("cells/*/seed*/result.json")}
    args = ["--preset", "tiny", "--seeds", "0", "1", "--root", str(bench), *ARCHIVE]
    assert main(["bench", "--study", "plr", "compare", *args]) == 0
    assert {p: p.stat().st_mtime_ns for p in bench.glob("cells/*/seed*/result.json")} == before
    assert "done in" not in capsys.readouterr().out


def test_only_named_variants_run(bench: Path, capsys) -> None:
    args = ["--preset", "tiny", "--seeds", "0", "--root", str(bench), *ARCHIVE]
    assert main(["bench", "--study", "plr", "--only", "plr-off", *args]) == 0
    out = capsys.readouterr().out
    assert "plr-off seed 0: already done" in out and "base seed" not in out
    assert main(["bench", "--study", "plr", "--only", "macl", *args]) == 2  # a variant of another study
    assert "--only: no variant ['macl'] in ['plr']" in capsys.readouterr().err


def test_interrupted_cell_resumes_from_its_checkpoint(tmp_path: Path) -> None:
    config = load_config(
        None, ["dataset.args={num_images: 80, image_size: 32, seed: 3}", "train.batch_size=16", "train.epochs=2"]
    )
    study = studies()["plr"]
    variant = study.variants[0]
    # train a 1-epoch run by hand into the cell folder, as if the 2-epoch cell had been killed after epoch 1
    cfg = resolve_train(config, variant, "tiny", 0)
    assert cfg.epochs == PRESETS["tiny"]["epochs"] == 1
    folder = cell_dir(config, variant, "tiny", 0, tmp_path)
    splits = ArchiveSplits(config.dataset)
    trainer = pipeline.train(replace(config, train=cfg, output=str(folder)), splits=splits, validate=False)
    assert (folder / "last.pt").is_file() and trainer.epoch == 1
    results = run_study(config, study, "tiny", [0], tmp_path, splits=splits, log=lambda line: None)
    assert results["base"][0]["history"][0]["epoch"] == 1 and len(results["base"][0]["history"]) == 1
    assert not (folder / "last.pt").exists()


def test_cell_keys_ignore_spelling_but_not_substance() -> None:
    config = load_config(None, ["train.loss=macl", "train.loss_args={alpha: 0.0, beta: 0.0, gamma: 0.5}"])
    grid = {v.name: v for v in studies()["dts"].variants}
    base = studies()["plr"].variants[0]
    compare = {v.name: v for v in studies()["compare"].variants}

    def key(variant, seed=0):
        return cell_key(config, resolve_train(config, variant, "tiny", seed), variant.name != UNTRAINED)

    assert key(grid["dts-a+0-b+0"]) == key(base)  # same loss, spelled with explicit defaults
    assert key(compare["macl"]) == key(base)  # the config's settings happen to be the ablation base
    anchor = {v.name: v for v in studies()["dts-anchor"].variants}
    assert key(anchor["anchor-b+0"]) == key(base)  # no DTS: its granularity is irrelevant
    assert key(grid["dts-a+0.5-b+0"]) != key(base)
    assert key(base, 0) != key(base, 1)
    assert key(compare[UNTRAINED]) != key(compare["mulsupcon"])
    other = load_config(None, ["train.loss=macl", "train.loss_args={alpha: -0.4}"])
    assert resolve_train(other, compare["macl"], "tiny", 0).loss_args == {"alpha": -0.4}
    assert resolve_train(other, base, "tiny", 0).loss_args["alpha"] == 0.0  # ablations ignore the config


def test_every_registered_loss_family_is_in_the_comparison() -> None:
    compare = {v.train.get("loss") for v in studies()["compare"].variants}
    assert {name for name in LOSSES if name not in ("supcon", "weighted-macl")} <= compare


def test_paired_test_matches_scipy_and_handles_ties() -> None:
    rng = np.random.default_rng(0)
    a = rng.random(50)
    b = a - 0.1 + 0.01 * rng.standard_normal(50)
    out = paired_test(a, b)
    assert out["n"] == 50 and out["mean_difference"] == pytest.approx(np.mean(a - b))
    assert out["wilcoxon_p"] < 1e-6 and out["t_p"] < 1e-6
    same = paired_test(a, a.copy())
    assert same["wilcoxon_p"] is None  # identical results: no test, not a crash
    with_nan = paired_test(np.array([0.5, np.nan, 0.2]), np.array([0.1, 0.3, np.nan]))
    assert with_nan["n"] == 1


def test_page_and_results_file(bench: Path, tmp_path: Path) -> None:
    page, results = tmp_path / "docs" / "results.md", tmp_path / "results.json"
    assert (
        main(
            [
                "bench-page",
                "--preset",
                "tiny",
                "--seeds",
                "0",
                "1",
                "--root",
                str(bench),
                "--out",
                str(page),
                "--results",
                str(results),
                *ARCHIVE,
            ]
        )
        == 0
    )
    data = json.loads(results.read_text())
    assert data["preset"] == "tiny" and "torch" in data["machine"]
    compare = data["studies"]["compare"]
    assert [v["name"] for v in compare["variants"]] == [v.name for v in studies()["compare"].variants]
    for v in compare["variants"]:
        assert v["test"]["seeds"] == [0, 1]
        assert set(v["test"]["metrics"]["map"]) == {"mean", "std", "values"}
        if v["name"] != "macl":
            assert set(v["test"]["vs_reference"]) == {"map", "ndcg_jac@10", "label_map_rare"}
    assert data["studies"]["tune"]["variants"] == []  # not run: listed, empty
    text = page.read_text()
    assert "preset `tiny`" in text and "| MulSupCon |" in text and "| NT-Xent" in text  # names a reader knows
    for figure in ("compare_bars.png", "per_label_ap.png", "ablation_plr.png", "retrieval_grids.jpg"):
        assert (page.parent / "figures" / "results" / figure).is_file(), figure
        assert f"figures/results/{figure}" in text
    # Under the default config "plain MACL" is the config's MACL: one training run, shown once and said so.
    same = {v["name"]: v["same_as"] for v in compare["variants"]}
    assert same["plain-macl"] == "macl" and same["macl"] is None and same["mulsupcon"] is None
    assert "is the same training run as *MACL (the config's settings)*" in text
    assert "| plain MACL" not in text

    # Re-rendering from the results file alone (no cells) gives the same page and numbers.
    again, again_results = tmp_path / "again" / "results.md", tmp_path / "again.json"
    args = ["bench-page", "--preset", "tiny", "--from-results", str(results), "--out", str(again)]
    assert main([*args, "--results", str(again_results), *ARCHIVE]) == 0
    assert json.loads(again_results.read_text())["studies"] == data["studies"]
    rerendered = again.read_text().replace(str(again_results), str(results))
    rerendered = rerendered.replace("from its results file", "from finished benchmark cells")
    assert "## Retrieval grids" not in rerendered  # no top-6 lists in a results file, no grid figure beside it
    assert rerendered.rstrip() == text.split("## Retrieval grids")[0].rstrip()


def test_page_restricted_to_named_studies(bench: Path, tmp_path: Path, capsys) -> None:
    """A page of one study holds that study alone, though its cells are shared with others in the root."""
    page, results = tmp_path / "plr.md", tmp_path / "plr.json"
    args = ["bench-page", "--preset", "tiny", "--seeds", "0", "1", "--root", str(bench), "--out", str(page)]
    assert main([*args, "--results", str(results), "--study", "plr", *ARCHIVE]) == 0
    assert list(json.loads(results.read_text())["studies"]) == ["plr"]
    text = page.read_text()
    assert "--study plr --seeds 0 1`" in text.splitlines()[2]  # the command that regenerates this page alone
    # the commands it quotes name every override, so they rerun these cells and not the default archive's
    quoted = next(line for line in text.splitlines() if line.startswith("Command: `"))
    command = shlex.split(quoted.removeprefix("Command: `").removesuffix("`"))
    assert command[:2] == ["macl", "bench"] and command[command.index("--set") + 1] == ARCHIVE[1]
    assert text.count("\n## ") == 1 and "## Pairwise label reweighting on/off" in text
    assert sorted(p.name for p in (tmp_path / "figures" / "plr").iterdir()) == ["ablation_plr.png"]
    again = tmp_path / "again.md"
    assert main(["bench-page", "--preset", "tiny", "--from-results", str(results), "--out", str(again)]) == 0
    assert again.read_text().count("\n## ") == 1
    assert main([*args, "--study", "plr", "nonsense", *ARCHIVE]) == 2
    assert "unknown study ['nonsense']" in capsys.readouterr().err


def test_summary_of_a_study_without_its_reference_has_no_tests(bench: Path) -> None:
    study = studies()["plr"]
    config = load_config(None, ARCHIVE[1::2])
    results = run_study(config, study, "tiny", [0], bench, log=lambda line: None)
    summary = summarize_study(study, {"plr-off": results["plr-off"]})
    assert [v["name"] for v in summary["variants"]] == ["plr-off"]
    assert "vs_reference" not in summary["variants"][0]["val"]


def test_post_processing_study_on_kept_checkpoints(tmp_path: Path) -> None:
    """The hybrid study's cells keep their weights; post-processing is scored on them without training."""
    from macl.bench import postprocess

    config = load_config(None, ["dataset.args={num_images: 80, image_size: 32, seed: 3}", "train.batch_size=16"])
    study = studies()["hybrid"]
    splits = ArchiveSplits(config.dataset)
    run_study(config, study, "tiny", [0], tmp_path, splits=splits, keep_checkpoints=True, log=lambda line: None)
    options = {name: postprocess.OPTIONS[name] for name in ("none", "center", "fusion-0.5")}
    results = postprocess.evaluate_study(config, study, "tiny", [0], tmp_path, options, log=lambda line: None)
    assert set(results) == {v.name for v in study.variants}
    assert set(results["hybrid-0"]) == {"none", "center"}  # no label classifier: no fusion
    assert set(results["hybrid-1"]) == {"none", "center", "fusion-0.5"}
    cell = results["hybrid-1"]["fusion-0.5"][0]
    assert {"val", "test", "literature"} <= set(cell) and "lit_map_d0.6" in cell["literature"]["literature"]["metrics"]
    # "none" reproduces the cell's own evaluation exactly: one embedding path, one ranking
    own = json.loads((cell_dir(config, study.variants[3], "tiny", 0, tmp_path) / "result.json").read_text())
    assert results["hybrid-1"]["none"][0]["test"]["metrics"] == own["test"]["metrics"]
    summary = postprocess.summarize(results, ("hybrid-0", "none"))
    for entry in summary["variants"].values():
        chosen = entry["options"][entry["chosen"]]["val"]["metrics"]["map"]["mean"]
        assert chosen >= entry["options"]["none"]["val"]["metrics"]["map"]["mean"] - postprocess.MAP_TOLERANCE
    assert "vs_reference" in summary["variants"]["hybrid-1"]["options"]["none"]["test"]
    labels = {v.name: v.label for v in study.variants}
    page = "\n".join(postprocess.page_lines(summary, results, labels))
    assert "lambda=1 | fusion-0.5" in page and "literature protocol" in page
    # cached: a second pass reads every score from the cells' postprocess.json
    assert (cell_dir(config, study.variants[3], "tiny", 0, tmp_path) / "postprocess.json").is_file()
    again = postprocess.evaluate_study(config, study, "tiny", [0], tmp_path, options, log=lambda line: None)
    assert again == results


def test_worker_count_enters_the_cell_key_only_when_it_changes_the_draws() -> None:
    config = load_config(None)
    variant = studies()["compare"].variants[1]
    train = resolve_train(config, variant, "tiny", 0)
    zero, one, two = (cell_key(config, replace(train, workers=w), True) for w in (0, 1, 2))
    assert len({zero, one, two}) == 3
    assert cell_key(config, replace(train, eval_every=5), True) == zero


def test_a_number_is_one_cell_however_it_is_written(tmp_path) -> None:
    """``--set train.bce_weight=10`` and ``bce_weight: 10.0`` share a cell; a cell filed under the old,
    type-sensitive key is still found."""
    variant = studies()["hybrid"].variants[0]
    as_int, as_float = (load_config(None, ["train.loss=macl", f"train.bce_weight={w}"]) for w in ("10", "10.0"))
    ints, floats = (resolve_train(c, replace(variant, train={"loss": "macl"}), "tiny", 0) for c in (as_int, as_float))
    assert isinstance(ints.bce_weight, int) and isinstance(floats.bce_weight, float)
    assert cell_key(as_int, ints, True) == cell_key(as_float, floats, True)
    assert cell_key(as_int, ints, True, legacy_numbers=True) != cell_key(as_float, floats, True, legacy_numbers=True)
    plain = replace(variant, train={"loss": "macl"})
    assert cell_dir(as_float, plain, "tiny", 0, tmp_path).parent.name == cell_key(as_float, floats, True)
    legacy = tmp_path / "cells" / cell_key(as_int, ints, True, legacy_numbers=True) / "seed0"
    legacy.mkdir(parents=True)
    (legacy / "result.json").write_text("{}")
    assert cell_dir(as_int, plain, "tiny", 0, tmp_path) == legacy  # finished under the old key: found there
    assert cell_dir(as_float, plain, "tiny", 0, tmp_path) != legacy  # 10.0's old key differs: not that cell


def test_the_configs_bce_head_belongs_to_its_macl_only() -> None:
    config = load_config(None, ["train.loss=macl", "train.bce_weight=1.0", "train.loss_args={alpha: -0.4}"])
    headline = {v.name: v for v in studies()["headline"].variants}
    weights = {name: resolve_train(config, v, "standard", 0).bce_weight for name, v in headline.items()}
    assert weights == {"macl": 1.0, "contrastive-macl": 0.0, "mulsupcon": 0.0, "supcon-any": 0.0, BCE: 0.0}
    assert resolve_train(config, headline["contrastive-macl"], "standard", 0).loss_args == {"alpha": -0.4}
    hybrid = {v.name: resolve_train(config, v, "quick", 0) for v in studies()["hybrid"].variants}
    assert [t.bce_weight for t in hybrid.values()] == [0.0, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0]
    assert resolve_train(config, headline["macl"], "standard", 0).workers == PRESETS["standard"]["workers"] == 1


def test_the_memory_study_changes_the_memory_only() -> None:
    config = load_config(None, ["train.loss=macl", "train.bce_weight=1.0"])
    cells = [resolve_train(config, v, "quick", 0) for v in studies()["memory"].variants]
    assert [t.memory for t in cells] == [0, 512, 2048]
    assert all(replace(t, memory=0) == cells[0] for t in cells)
    assert len({cell_key(config, t, True) for t in cells}) == 3
