"""Does MACL deliver? The whole quality benchmark in one command: ablations, comparison, results page.

    python benchmarks/quality.py --config configs/ucm.yaml --preset quick --seeds 0 1 2 \
        [--out docs/results.md --results benchmarks/results/quality-ucm-quick.json]

1. The MACL ablations (PLR, alpha x beta DTS grid, anchor DTS, weighted, sampler, gamma, tau, lr) with
   the first seed; they are read on the **validation** split, where MACL's defaults are chosen.
2. The loss comparison (every loss of ``macl.losses`` and the BCE classifier) and the headline (the
   config's MACL with and without its BCE head against MulSupCon, SupCon and BCE) with every seed, and
   the reproduction of method.md's reference table, read on the **test** split.
3. The results page, its figures and the results file: by default ``results.md`` and
   ``quality-<dataset>-<preset>.json`` in the benchmark folder (``<output>/bench-<preset>``);
   ``--out``/``--results`` write them elsewhere (the repository's ``docs/results.md`` is one such run).

It is ``macl bench`` and ``macl bench-page`` in sequence, so a killed run restarts where it stopped
(finished cells are skipped, an interrupted cell resumes from its last epoch). ``--preset full`` is the
paper-scale protocol (224 px, 100 epochs) for a GPU. Any config works: every study uses its archive
and protocol; ``compare`` runs its MACL settings, the ablations perturb a fixed MACL base (the
specification's defaults) one setting at a time.
"""

from __future__ import annotations

import argparse
import sys

from macl.bench.studies import PRESETS
from macl.cli import main

ABLATIONS = ["dts", "dts-alpha", "plr", "dts-anchor", "weighted", "sampler", "gamma", "tau", "lr", "tune"]


def run(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", "-c", default="configs/ucm.yaml")
    parser.add_argument("--preset", default="quick", choices=sorted(PRESETS))
    parser.add_argument("--seeds", nargs="+", default=["0", "1", "2"])
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config overrides")
    parser.add_argument("--out", help="results page (default <output>/bench-<preset>/results.md)")
    parser.add_argument("--results", help="results file (default beside the page's cells)")
    args = parser.parse_args(argv)
    page = [*(["--out", args.out] if args.out else []), *(["--results", args.results] if args.results else [])]
    common = ["-c", args.config, "--preset", args.preset, *(x for s in args.set for x in ("--set", s))]
    steps = [
        ["bench", *common, "--study", *ABLATIONS, "--seeds", args.seeds[0]],
        ["bench", *common, "--study", "compare", "headline", "--seeds", *args.seeds],
        ["bench", *common, "--study", "reference", "--seeds", args.seeds[0]],
        ["bench-page", *common, "--seeds", *args.seeds, *page],
    ]
    for step in steps:
        status = main(step)
        if status:
            return status
    return 0


if __name__ == "__main__":
    sys.exit(run())
