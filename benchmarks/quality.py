"""Does MACL deliver? The whole quality benchmark in one command: ablations, comparison, results page.

    python benchmarks/quality.py --config configs/ucm.yaml --preset quick --seeds 0 1 2

1. The MACL ablations (PLR, alpha x beta DTS grid, anchor DTS, weighted, sampler, gamma, tau, lr) with
   the first seed; they are read on the **validation** split, where MACL's defaults are chosen.
2. The loss comparison (every loss of ``macl.losses`` and the BCE classifier) with every seed, and the
   reproduction of method.md's reference table, read on the **test** split.
3. ``docs/results.md``, its figures and ``benchmarks/results/quality-<dataset>-<preset>.json``.

It is ``macl bench`` and ``macl bench-page`` in sequence, so a killed run restarts where it stopped
(finished cells are skipped, an interrupted cell resumes from its last epoch). ``--preset full`` is the
paper-scale protocol (224 px, 100 epochs) for a GPU. Any config works: the studies perturb its MACL
settings and use its protocol.
"""

from __future__ import annotations

import argparse
import sys

from macl.cli import main

ABLATIONS = ["dts", "dts-alpha", "plr", "dts-anchor", "weighted", "sampler", "gamma", "tau", "lr", "tune"]


def run(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", "-c", default="configs/ucm.yaml")
    parser.add_argument("--preset", default="quick", choices=["tiny", "quick", "full"])
    parser.add_argument("--seeds", nargs="+", default=["0", "1", "2"])
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config overrides")
    args = parser.parse_args(argv)
    common = ["-c", args.config, "--preset", args.preset, *(x for s in args.set for x in ("--set", s))]
    steps = [
        ["bench", *common, "--study", *ABLATIONS, "--seeds", args.seeds[0]],
        ["bench", *common, "--study", "compare", "--seeds", *args.seeds],
        ["bench", *common, "--study", "reference", "--seeds", args.seeds[0]],
        ["bench-page", *common, "--seeds", *args.seeds],
    ]
    for step in steps:
        status = main(step)
        if status:
            return status
    return 0


if __name__ == "__main__":
    sys.exit(run())
