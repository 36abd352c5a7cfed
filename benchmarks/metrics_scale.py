"""Time and peak memory of ``evaluate_retrieval`` at database scale: a by-hand sanity check, not a test.

    /usr/bin/time -v python benchmarks/metrics_scale.py [--queries 2000] [--db 100000] [--dim 128]

Random float32 embeddings; C = 17 labels drawn at UC Merced's label frequencies (mean ≈ 3.3 per item),
so the per-label AP sees a realistic number of (query, label) rows. Prints the wall time, the chunk size
the budget gave, and the process's peak RSS; time scales linearly in the number of queries, memory does not.
"""

from __future__ import annotations

import argparse
import resource
import time

import torch

from macl.metrics import evaluate_retrieval
from macl.metrics.evaluate import _DENSE_BYTES_PER_ITEM, _LABEL_BYTES_PER_ITEM

# UC Merced multi-label: images per label, of 2100 (see shared/data/ucm-multilabel/README.md).
UCM_COUNTS = [100, 718, 691, 886, 115, 105, 100, 103, 975, 102, 1300, 294, 100, 102, 100, 1009, 203]
UCM_N = 2100


def random_labels(n: int, generator: torch.Generator) -> torch.Tensor:
    """Labels drawn independently per label at UCM frequencies."""
    freq = torch.tensor(UCM_COUNTS, dtype=torch.float64) / UCM_N
    return (torch.rand(n, len(UCM_COUNTS), generator=generator, dtype=torch.float64) < freq).to(torch.uint8)


def main() -> None:
    """Build the random problem, evaluate it once and print time, chunk size and peak RSS."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument("--db", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--max-chunk-mib", type=int, default=512)
    args = parser.parse_args()

    generator = torch.Generator().manual_seed(0)
    query_emb = torch.randn(args.queries, args.dim, generator=generator)
    db_emb = torch.randn(args.db, args.dim, generator=generator)
    query_labels, db_labels = random_labels(args.queries, generator), random_labels(args.db, generator)
    budget = args.max_chunk_mib * 2**20
    chunk = max(1, budget // (args.db * (_DENSE_BYTES_PER_ITEM + _LABEL_BYTES_PER_ITEM * len(UCM_COUNTS))))
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10

    start = time.perf_counter()
    report = evaluate_retrieval(query_emb, query_labels, db_emb, db_labels, max_chunk_bytes=budget)
    elapsed = time.perf_counter() - start

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10
    print(
        f"{args.queries} queries × {args.db} db, D={args.dim}, C={len(UCM_COUNTS)}, "
        f"{torch.get_num_threads()} threads, chunk {chunk} queries: {elapsed:.1f} s "
        f"({1e3 * elapsed / args.queries:.2f} ms/query); peak RSS {peak:.0f} MiB "
        f"({rss_before:.0f} MiB before evaluation); map {report.metrics['map']:.4f}"
    )


if __name__ == "__main__":
    main()
