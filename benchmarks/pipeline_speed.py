"""Pipeline speed: the training loop against the bare model, embedding, and index search.

    python benchmarks/pipeline_speed.py [--image-size 64] [--batch-size 64] [--items 10000 100000]

1. Training images/s of the full loop (cached synthetic archive, two augmented views, MACL, optimiser
   step, scheduler) against ResNet-18 forward+backward+step on the same batch of random tensors: the
   loop's overhead (data, augmentation, loss) should cost at most 10 % (target ≥ 90 %).
2. Embedding images/s (eval mode, no gradient) at the same side.
3. Search latency (one query at a time) and throughput (a batch of 1000 queries) of the exact and
   approximate backends at each database size, on clustered synthetic embeddings (D = 512), with
   recall@10 of the approximate backends against the exact one.
Writes benchmarks/results/pipeline_speed.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from macl.config import TrainConfig
from macl.data.cache import CachedArchive, ResizedArchive
from macl.data.synthetic import SyntheticAerial
from macl.data.transforms import views_to_batch
from macl.embedding import embed
from macl.index import create_index
from macl.train import Trainer


def training_rates(image_size: int, batch_size: int, steps: int) -> dict[str, float]:
    # The train split is 60 % of the archive: make it hold a warm-up batch plus the timed steps.
    data = SyntheticAerial(None, "train", num_images=int((steps + 2) * batch_size / 0.6) + 10, image_size=image_size)
    train_set = CachedArchive(data, round(image_size * 1.25))
    config = TrainConfig(loss="macl", image_size=image_size, batch_size=batch_size, epochs=1)
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(config, train_set, None, Path(tmp))
        loader = iter(trainer.batches(0))

        def loop_step() -> None:
            batch = next(loader)
            images, labels = views_to_batch(batch["image"], batch["label"])
            loss = trainer.criterion(trainer.model(images), labels)
            trainer.optimizer.zero_grad()
            loss.backward()
            trainer.optimizer.step()
            trainer.scheduler.step()

        x = torch.randn(2 * batch_size, 3, image_size, image_size)

        def bare_step() -> None:
            trainer.optimizer.zero_grad()
            trainer.model(x).sum().backward()
            trainer.optimizer.step()

        rates = {}
        for name, step in (("bare_model", bare_step), ("full_loop", loop_step)):
            step()
            start = time.perf_counter()
            for _ in range(steps):
                step()
            rates[name] = steps * batch_size / (time.perf_counter() - start)
        start = time.perf_counter()
        embed(trainer.model, ResizedArchive(data, image_size), batch_size=128)
        rates["embedding"] = len(data) / (time.perf_counter() - start)
    rates["loop_vs_bare"] = rates["full_loop"] / rates["bare_model"]
    return rates


def clustered(n: int, d: int, seed: int) -> np.ndarray:
    """Embeddings like a trained encoder's: 256 clusters on a 32-dimensional subspace, lifted to ``d``.

    (Isotropic noise in all ``d`` dimensions would make every point of a cluster equidistant from every
    other — a worst case for graph search that no trained embedding resembles.)
    """
    rng = np.random.default_rng(seed)
    world = np.random.default_rng(1234)  # the same clusters and subspace for database and queries
    centres, lift = world.normal(size=(256, 32)), world.normal(size=(32, d)) / np.sqrt(32)
    latent = centres[rng.integers(0, 256, n)] + 0.5 * rng.normal(size=(n, 32))
    return (latent @ lift + 0.05 * rng.normal(size=(n, d))).astype(np.float32)


def search_rates(items: int, dim: int = 512) -> list[dict[str, float]]:
    db, queries = clustered(items, dim, 0), clustered(1000, dim, 1)
    rows, truth = [], None
    for backend in ("exact", "hnsw", "ivf"):
        index = create_index(backend, dim)
        start = time.perf_counter()
        index.add(db, [str(i) for i in range(items)])
        index.search(queries[:1], 10)  # builds (HNSW graph / IVF training) on first search
        build = time.perf_counter() - start
        start = time.perf_counter()
        for q in queries[:100]:
            index.search(q[None], 10)
        latency = (time.perf_counter() - start) / 100
        start = time.perf_counter()
        _, keys = index.search(queries, 10)
        qps = len(queries) / (time.perf_counter() - start)
        if truth is None:
            truth = keys
        recall = float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(keys, truth, strict=True)]))
        rows.append({"items": items, "backend": backend, "build_s": build, "latency_ms": 1000 * latency,
                     "batch_qps": qps, "recall@10": recall})  # fmt: skip
        print(f"| {items:>7} | {backend:<5} | build {build:7.2f} s | {1000 * latency:7.2f} ms/query | "
              f"{qps:9.0f} q/s batched | recall@10 {recall:.3f} |", flush=True)  # fmt: skip
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--items", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "pipeline_speed.json")
    args = parser.parse_args()
    rates = training_rates(args.image_size, args.batch_size, args.steps)
    print(f"training at {args.image_size} px, batch {args.batch_size} × 2 views:")
    print(f"  bare model {rates['bare_model']:.1f} img/s, full loop {rates['full_loop']:.1f} img/s "
          f"({100 * rates['loop_vs_bare']:.0f} %), embedding {rates['embedding']:.1f} img/s")  # fmt: skip
    search = [row for n in args.items for row in search_rates(n)]
    meta = {"cpu": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
            "torch": torch.__version__, "image_size": args.image_size, "batch_size": args.batch_size}  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"meta": meta, "training": rates, "search": search}, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
