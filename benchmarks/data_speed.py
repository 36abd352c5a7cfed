"""Can data loading keep up with training? Images/s of the data pipeline versus the model's.

    python benchmarks/data_speed.py [--root ../shared/data/ucm-multilabel] [--sizes 224 128]

For each image side: images/s delivered by a DataLoader (decode + resize + two augmented views, batch
64) with 0, 1 and 2 workers, reading the files every time ("decode") and from the decoded-image cache
("cache", built once; its build time is reported), next to ResNet-18 forward+backward images/s on two
views at the same side. Results go to benchmarks/results/data_speed.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch
import torchvision
from torch.utils.data import DataLoader

from macl.data.cache import CachedArchive
from macl.data.transforms import MultiView, Transformed, train_augmentation
from macl.data.ucm import UCMerced

DEFAULT_ROOT = Path(__file__).resolve().parents[2] / "shared" / "data" / "ucm-multilabel"


def loader_rate(dataset: torch.utils.data.Dataset, workers: int, batches: int, batch_size: int = 64) -> float:
    """Images per second over ``batches`` batches, after one warm-up batch (worker start-up excluded)."""
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=True, num_workers=workers, drop_last=True)
    it = iter(loader)
    next(it)
    start = time.perf_counter()
    for _ in range(batches):
        next(it)
    return batches * batch_size / (time.perf_counter() - start)


def model_rate(size: int, batch_size: int = 32, steps: int = 3) -> float:
    """ResNet-18 forward+backward images/s on (2 views × batch) at ``size`` px (what training must feed)."""
    model = torchvision.models.resnet18(num_classes=128)
    optimiser = torch.optim.SGD(model.parameters(), lr=0.01)
    x = torch.randn(2 * batch_size, 3, size, size)
    model(x).sum().backward()  # warm-up
    start = time.perf_counter()
    for _ in range(steps):
        optimiser.zero_grad()
        model(x).sum().backward()
        optimiser.step()
    return steps * batch_size / (time.perf_counter() - start)  # source images/s (each seen as 2 views)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, default=DEFAULT_ROOT)
    parser.add_argument("--sizes", type=int, nargs="+", default=[224, 128])
    parser.add_argument("--batches", type=int, default=6)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "data_speed.json")
    args = parser.parse_args()

    rows = []
    for size in args.sizes:
        views = MultiView(train_augmentation(size))
        files = UCMerced(args.root, split="train", transforms=views)
        start = time.perf_counter()
        cached = Transformed(CachedArchive(files, size=size + size // 4), views)
        build = time.perf_counter() - start
        model = model_rate(size)
        for source, dataset in (("decode", files), ("cache", cached)):
            for workers in (0, 1, 2):
                rate = loader_rate(dataset, workers, args.batches)
                rows.append(
                    {
                        "size": size,
                        "source": source,
                        "workers": workers,
                        "images_per_s": rate,
                        "model_images_per_s": model,
                        "keeps_up": rate >= model,
                        "cache_build_s": build if source == "cache" else None,
                    }
                )
                print(
                    f"| {size:>4} px | {source:<6} | {workers} workers | {rate:8.1f} img/s | model {model:6.1f} img/s |"
                    f" {'keeps up' if rate >= model else 'BOTTLENECK'} |",
                    flush=True,
                )
        print(f"cache build at {size} px: {build:.1f} s for {len(files)} images")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "cpu": platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "dataset": "UC Merced multi-label, train split",
        "batch_size": 64,
    }
    args.out.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
