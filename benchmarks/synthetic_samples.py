"""Sample sheet, label frequencies and generation time of the synthetic aerial archive.

Renders the archive at 64 px (the default) and 128 px, prints how long each took and the frequency of
every label at both sizes, and saves 16 tiles of the 128 px archive that together show every label, with
their label names, to ``docs/figures/synthetic_samples.png``. Look at the sheet after changing the
renderer: the labels printed above each tile must be what the tile visibly shows.

    python benchmarks/synthetic_samples.py [--num-images 2000] [--seed 0] [--out docs/figures/...]
"""

from __future__ import annotations

import argparse
import io
import time
from pathlib import Path

from PIL import Image

from macl.data.plotting import plot_examples
from macl.data.synthetic import CLASSES, SyntheticAerial

SIZES = (64, 128)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-images", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sheet-size", type=int, default=128, help="tile side of the sample sheet, px")
    parser.add_argument("--out", type=Path, default=Path("docs/figures/synthetic_samples.png"))
    args = parser.parse_args()

    archives: dict[int, SyntheticAerial] = {}
    for size in sorted({*SIZES, args.sheet_size}):
        start = time.perf_counter()
        archives[size] = SyntheticAerial(split="all", num_images=args.num_images, image_size=size, seed=args.seed)
        seconds = time.perf_counter() - start
        per_tile = 1000 * seconds / args.num_images
        print(f"generated {args.num_images} tiles of {size} px in {seconds:.2f} s ({per_tile:.2f} ms/tile)")

    print()
    header = "".join(f"{f'{s} px: count':>14} {'%':>6}" for s in archives)
    print(f"{'label':<12}{header}")
    counts = {size: ds.label_counts() for size, ds in archives.items()}
    order = sorted(range(len(CLASSES)), key=lambda c: -counts[SIZES[0]][c])
    for c in order:
        row = "".join(f"{counts[s][c]:>14d} {100 * counts[s][c] / len(ds):>5.1f}%" for s, ds in archives.items())
        print(f"{CLASSES[c]:<12}{row}")
    for size, ds in archives.items():
        print(f"{size} px: {ds.label_matrix.sum(1).mean():.2f} labels per tile")

    sheet = archives[args.sheet_size]
    fig = plot_examples(sheet, 16, ncols=4, suptitle=f"SyntheticAerial, {args.sheet_size} px, seed {args.seed}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=72)
    # 256 colours keep the sheet legible at a third of the size of a full-colour PNG in the repository
    Image.open(buffer).convert("RGB").quantize(256).save(args.out, optimize=True)
    print(f"\nsample sheet: {args.out}")


if __name__ == "__main__":
    main()
