"""Index backends at archive scale: build time, memory, latency, throughput and recall against exact.

    python benchmarks/index_scale.py [--sizes 100000 1000000] [--dims 128 512] [--checkpoint runs/demo/best.pt]

**Embeddings that look like real ones.** Uniform random vectors mislead (every point is equally far
from every other, a worst case for graphs and lists that no encoder produces). The items here are
drawn from a Gaussian mixture fitted to real embeddings: the UC Merced images
(``../shared/data/ucm-multilabel``; the synthetic archive where it is absent) embedded by a checkpoint
(D = 512: the backbone feature; D = 128: the projection head), split by k-means into 32 clusters, each
item a cluster centre plus a random Gaussian combination of that cluster's residuals (the cluster's own
covariance), then L2-normalised. Queries are drawn the same way with another seed. (A first version
added isotropic noise to copies of the 2 100 real embeddings: at 1 M items that piles ~500 near-copies
around each real image, a density no archive has, and no quantiser can order them.)

For each size and dimension, every backend at two settings: build seconds (training included),
bytes per item of the faiss index in RAM, single-query latency (100 queries, one at a time), batched
QPS (1 000 queries at once) and recall@10 against exact search. The copy bandwidth of this machine is
measured in the same run, and exact search time is set against its floor (bytes scanned / bandwidth).
With ``--milvus``, milvus-lite (FLAT and HNSW) at the smallest size, beside faiss.
Writes ``benchmarks/results/index_scale.json``; measure on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import torch

from macl.index import FaissIndex, VectorIndex, create_index

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "ucm-multilabel"
DEMO = Path(__file__).resolve().parents[1] / "runs" / "demo" / "best.pt"
SETTINGS: dict[str, list[dict[str, Any]]] = {
    "exact": [{}],
    "hnsw": [{"ef_search": 32}, {"ef_search": 128}],
    "ivf": [{"nprobe": 8}, {"nprobe": 64}],
    "sq8": [{"rerank": 0}, {"rerank": 4}],
    "ivf-sq8": [{"nprobe": 8, "rerank": 4}, {"nprobe": 64, "rerank": 4}],
    "hnsw-sq8": [{"ef_search": 32, "rerank": 4}, {"ef_search": 128, "rerank": 4}],
    "ivf-pq": [{"pq_m": 32, "nprobe": 16, "rerank": 8}, {"pq_m": 32, "nprobe": 64, "rerank": 16}],
}


def real_embeddings(checkpoint: Path | None) -> dict[int, np.ndarray]:
    """Embeddings of a real archive by a checkpoint: {512: backbone features, 128: projection outputs}."""
    from macl.archive import ArchiveSplits
    from macl.config import DatasetConfig
    from macl.embedding import embed
    from macl.models import Encoder
    from macl.pipeline import load_model

    if checkpoint is not None and checkpoint.is_file():
        model, state = load_model(checkpoint)
        size = int(state["config"]["image_size"])
    else:
        model, size = Encoder("resnet18", out_dim=128), 64  # untrained: still an encoder's geometry
    dataset = DatasetConfig("ucm", str(SHARED)) if SHARED.is_dir() else DatasetConfig("synthetic", None, {})
    splits = ArchiveSplits(dataset, decode=False)
    images = [splits.at(s, size) for s in ("train", "val", "test")]
    model.embedding = "backbone"
    out = {512: embed(model, images).vectors}
    model.embedding = "projection"
    out[128] = embed(model, images).vectors
    return out


def synthetic(real: np.ndarray, n: int, seed: int, clusters: int = 32) -> np.ndarray:
    """``n`` unit vectors from a Gaussian mixture fitted to the real embeddings (module docstring).

    k-means splits the real embeddings into ``clusters``; an item of cluster c (drawn with the cluster's
    share of the real items) is its centre plus a random Gaussian combination of its members' residuals,
    so it has that cluster's covariance. An archive 500 times larger than the real one then fills the
    same regions the same way, rather than piling near-copies around each real image.
    """
    rng = np.random.default_rng(seed)
    km = faiss.Kmeans(real.shape[1], clusters, niter=20, seed=1234)
    km.train(np.ascontiguousarray(real, dtype=np.float32))
    assign = km.index.search(np.ascontiguousarray(real, dtype=np.float32), 1)[1][:, 0]
    members = [real[assign == c] for c in range(clusters)]
    weights = np.array([len(m) for m in members], dtype=np.float64)
    counts = rng.multinomial(n, weights / weights.sum())
    out = np.empty((n, real.shape[1]), dtype=np.float32)
    start = 0
    for group, count in zip(members, counts, strict=True):
        if count == 0:
            continue
        centre, residuals = group.mean(0), group - group.mean(0)
        z = rng.standard_normal((count, len(group)), dtype=np.float32) / np.sqrt(max(len(group) - 1, 1))
        out[start : start + count] = centre + z @ residuals
        start += count
    out = out[rng.permutation(n)]
    return out / np.linalg.norm(out, axis=1, keepdims=True)


def copy_bandwidth(nbytes: int = 512 << 20) -> float:
    """Bytes/s of a large memory copy (best of 3): the floor any scan of the vectors runs into."""
    src, dst = np.ones(nbytes // 4, np.float32), np.empty(nbytes // 4, np.float32)
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        np.copyto(dst, src)
        best = min(best, time.perf_counter() - start)
    return 2 * nbytes / best  # read + write


def measure(index: VectorIndex, queries: np.ndarray, truth: list[list[str]] | None) -> dict[str, float]:
    index.search(queries[:1], 10)  # warm
    start = time.perf_counter()
    for q in queries[:100]:
        index.search(q[None], 10)
    latency = (time.perf_counter() - start) / 100
    start = time.perf_counter()
    _, found = index.search(queries, 10)
    qps = len(queries) / (time.perf_counter() - start)
    recall = (
        1.0 if truth is None else float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(found, truth, strict=True)]))
    )
    return {"latency_ms": 1000 * latency, "batch_qps": qps, "recall@10": recall, "_found": found}  # type: ignore[dict-item]


SEARCH_KEYS = ("ef_search", "nprobe", "rerank")  # settings that change a search, not the built index


def build(backend: str, db: np.ndarray, ids: list[str], setting: dict[str, Any]) -> tuple[FaissIndex, float]:
    """A ``backend`` index of ``db``: trained on its seeded sample, then filled in blocks; seconds taken."""
    n, d = db.shape
    start = time.perf_counter()
    index = create_index(backend, d, **setting)
    assert isinstance(index, FaissIndex)
    index.train(index.training_sample(db), expected_total=n)
    for s in range(0, n, 100_000):
        index.add(db[s : s + 100_000], ids[s : s + 100_000])
    index.faiss_index  # noqa: B018 -- builds what is left to build
    return index, time.perf_counter() - start


def run_faiss(db: np.ndarray, ids: list[str], queries: np.ndarray, backends: list[str], bandwidth: float) -> list[dict]:
    """Every backend at each of its settings; an index is rebuilt only when a build parameter changes."""
    n, d = db.shape
    rows: list[dict] = []
    truth = None
    for backend in backends:
        index, built_with, build_s = None, None, 0.0
        for setting in SETTINGS[backend]:
            build_params = {k: v for k, v in setting.items() if k not in SEARCH_KEYS}
            if index is None or build_params != built_with:
                index = None  # free the previous one first
                index, build_s = build(backend, db, ids, setting)
                built_with = build_params
            index.params.update({k: v for k, v in setting.items() if k in SEARCH_KEYS})
            code_bytes = faiss.serialize_index(index.faiss_index).nbytes
            result = measure(index, queries, truth)
            found = result.pop("_found")
            if truth is None:
                truth = found  # type: ignore[assignment]
            row = {"items": n, "dim": d, "backend": backend, "setting": setting, "build_s": build_s,
                   "bytes_per_item": code_bytes / n, **result}  # fmt: skip
            if backend == "exact":
                floor = 4 * n * d / bandwidth
                row["bandwidth_floor_ms"] = 1000 * floor
                row["exact_vs_floor"] = row["latency_ms"] / (1000 * floor)
            rows.append(row)
            print(
                f"| {n:>8} | {d:>3} | {backend:<8} | {json.dumps(setting):<40} | build {build_s:7.1f} s | "
                f"{code_bytes / n:7.1f} B/item | {row['latency_ms']:8.2f} ms | {row['batch_qps']:8.0f} q/s | "
                f"recall@10 {row['recall@10']:.3f} |",
                flush=True,
            )
    return rows


def run_milvus(db: np.ndarray, ids: list[str], queries: np.ndarray, truth: list[list[str]]) -> list[dict]:
    rows = []
    n, d = db.shape
    for index_type, extra in (("FLAT", {}), ("HNSW", {"ef_search": 128})):
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            index = create_index("milvus", d, uri=f"{tmp}/bench.db", index_type=index_type, **extra)
            for s in range(0, n, 10_000):
                index.add(db[s : s + 10_000], ids[s : s + 10_000])
            index.search(queries[:1], 10)
            build = time.perf_counter() - start
            result = measure(index, queries, truth)
            result.pop("_found")
            rows.append({"items": n, "dim": d, "backend": f"milvus-lite {index_type}", "setting": extra,
                         "build_s": build, **result})  # fmt: skip
            print(f"| {n:>8} | {d:>3} | milvus-lite {index_type} | build {build:.1f} s | {rows[-1]}", flush=True)
            close = getattr(index, "close", None)
            if close is not None:
                close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--dims", type=int, nargs="+", default=[128, 512], choices=[128, 512])
    parser.add_argument("--backends", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    parser.add_argument("--graph-max-items", type=int, default=1_000_000, help="skip HNSW builds above this size")
    parser.add_argument("--checkpoint", type=Path, default=DEMO)
    parser.add_argument("--milvus", action="store_true", help="milvus-lite at the smallest size too")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "index_scale.json")
    parser.add_argument("--append", action="store_true", help="add to the rows already in --out")
    args = parser.parse_args()
    real = real_embeddings(args.checkpoint)
    bandwidth = copy_bandwidth()
    print(
        f"copy bandwidth {bandwidth / 1e9:.1f} GB/s; real embeddings {len(real[512])}; "
        f"threads {faiss.omp_get_max_threads()}"
    )
    rows = json.loads(args.out.read_text())["rows"] if args.append and args.out.is_file() else []
    for d in args.dims:
        for n in args.sizes:
            db, queries = synthetic(real[d], n, seed=0), synthetic(real[d], 1000, seed=1)
            ids = [str(i) for i in range(n)]
            backends = [b for b in args.backends if not (b.startswith("hnsw") and n > args.graph_max_items)]
            found = run_faiss(db, ids, queries, backends, bandwidth)
            rows += found
            if args.milvus and n == min(args.sizes):
                exact = create_index("exact", d)
                exact.add(db, ids)
                truth = exact.search(queries, 10)[1]
                rows += run_milvus(db, ids, queries, truth)
    meta = {"cpu": platform.processor() or platform.machine(), "threads": faiss.omp_get_max_threads(),
            "torch": torch.__version__, "faiss": faiss.__version__, "copy_bandwidth_GBps": bandwidth / 1e9,
            "real_embeddings": "UC Merced" if SHARED.is_dir() else "synthetic archive",
            "checkpoint": str(args.checkpoint) if args.checkpoint.is_file() else "untrained ResNet-18"}  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
