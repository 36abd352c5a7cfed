"""Which index backend for an archive of ``n`` items of dimension ``d`` within a memory budget.

The choice follows the costs measured by ``benchmarks/index_scale.py`` on this project's embeddings
(clustered, like a trained encoder's): exact search reads every vector once per query, so it is
bound by memory bandwidth (~20 GB/s: 1 M × 128 float32 = 512 MB is ≥ 21 ms per query); graph and
inverted-list indexes read a small part of the archive; quantised codes shrink what stays in RAM,
and re-ranking a short list with the full vectors (kept on disk, memory-mapped) recovers the exact
order that quantisation alone loses.

==========================  ===========================================================
archive                     backend (parameters)
==========================  ===========================================================
≤ 200 k items               ``exact``: no tuning, always right, fast enough
float32 + graph fit in RAM  ``hnsw`` (M = 32, ef_search = 128)
1 byte/dim fits in RAM      ``hnsw-sq8`` (≤ 5 M items) or ``ivf-sq8``, re-rank ×4
less                        ``ivf-pq`` with the largest code that fits, re-rank ×8
                            (good at D = 128; at D = 512 recall stays low: measured)
not even 8 B/item           ``milvus`` on a cluster: one machine's memory is not enough
==========================  ===========================================================
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from macl.errors import ArgumentError

EXACT_LIMIT = 200_000
GRAPH_LIMIT = 5_000_000
HNSW_M = 32


@dataclass(frozen=True)
class Recommendation:
    """A backend, its parameters, the RAM it needs, and why."""

    backend: str
    params: dict[str, Any] = field(default_factory=dict)
    ram_bytes: int = 0
    reason: str = ""


def _overhead(n: int) -> int:
    """Ids, labels and tombstones kept beside every backend's vectors (~64 B per item)."""
    return 64 * n


def recommend(n_items: int, dim: int, memory_bytes: int) -> Recommendation:
    """The backend (module table) for ``n_items`` ``dim``-dimensional embeddings in ``memory_bytes`` of RAM."""
    if n_items < 1 or dim < 1 or memory_bytes < 1:
        raise ArgumentError("n_items, dim and memory_bytes must be positive")
    n, full = n_items, 4 * dim * n_items
    nlist = int(min(65_536, max(1, 4 * n**0.5)))
    if n <= EXACT_LIMIT and full + _overhead(n) <= memory_bytes:
        return Recommendation("exact", {}, full + _overhead(n), "small archive: exact search is fast enough")
    graph = full + 8 * HNSW_M * n + _overhead(n)
    if n <= GRAPH_LIMIT and graph <= memory_bytes:
        params = {"hnsw_m": HNSW_M, "ef_search": 128}
        return Recommendation("hnsw", params, graph, "float32 vectors and the graph fit in memory")
    sq8 = dim * n + _overhead(n)
    if n <= GRAPH_LIMIT and sq8 + 8 * HNSW_M * n <= memory_bytes:
        params = {"hnsw_m": HNSW_M, "ef_search": 128, "rerank": 4}
        reason = "8-bit codes and the graph fit; full vectors stay on disk for re-ranking"
        return Recommendation("hnsw-sq8", params, sq8 + 8 * HNSW_M * n, reason)
    if sq8 + 8 * n <= memory_bytes:
        params = {"nlist": nlist, "nprobe": 32, "rerank": 4}
        return Recommendation("ivf-sq8", params, sq8 + 8 * n, "8-bit codes fit; inverted lists, re-ranked")
    for pq_m in (64, 32, 16, 8):
        if dim % pq_m == 0 and (pq_m + 8) * n + _overhead(n) <= memory_bytes:
            params = {"nlist": nlist, "nprobe": 32, "pq_m": pq_m, "rerank": 8}
            reason = f"only {pq_m}-byte product-quantised codes fit; re-ranked from the vectors on disk"
            if dim > 256:  # measured: 512-d ReLU features lose most neighbours to PQ (docs/index.md)
                reason += f"; at D = {dim} expect low recall: index a 128-d projection instead"
            return Recommendation("ivf-pq", params, (pq_m + 8) * n + _overhead(n), reason)
    return Recommendation("milvus", {"index_type": "IVF_FLAT"}, 0, "the archive does not fit one machine's memory")


def parse_bytes(text: str) -> int:
    """``"8G"``, ``"512M"``, ``"1.5T"`` or a plain number of bytes."""
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
    value = text.strip().upper().removesuffix("B")
    try:
        if value and value[-1] in units:
            return int(float(value[:-1]) * units[value[-1]])
        return int(value)
    except ValueError as err:
        raise ArgumentError(f"cannot read {text!r} as a size (e.g. 8G, 512M)") from err
