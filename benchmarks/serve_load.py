"""A bounded load on `macl serve` over loopback: mixed id / label / upload queries against a large index.

    python benchmarks/serve_load.py [--items 100000] [--requests 2000] [--clients 20] [--run runs/demo]

The run's real index (``<run>/archive.index``, the demo's synthetic archive) is grown to ``--items`` by
adding, for each real item, jittered copies of its embedding with its labels (ids ``<id>~<n>``; they
have no thumbnail), saved under the same model hash, so the server searches an index of that size with
the run's own model. The server is started as a subprocess (``macl serve`` on 127.0.0.1, a free port);
``--clients`` threads send ``--requests`` requests in all: 45 % search by id, 45 % by a label pair,
10 % image uploads (real archive images as PNG). Reports errors, p50/p95/p99 latency per kind,
requests/s and the server's resident memory; writes ``benchmarks/results/serve_load.json``.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx2 as httpx  # what the test extra installs (fastapi's TestClient transport)
import numpy as np
from PIL import Image

from macl.archive import ArchiveSplits
from macl.config import load_config
from macl.index import FaissIndex, create_index, open_index

ROOT = Path(__file__).resolve().parents[1]


def grown_index(run: Path, items: int, out: Path) -> tuple[list[str], list[str]]:
    """Save an ``items``-sized exact index grown from ``run``'s; return real ids and label names."""
    base = open_index(run / "archive.index")
    assert isinstance(base, FaissIndex)
    ids, labels = list(base.ids), base.labels_of(base.ids)
    vectors = np.stack([base.embedding_of(i) for i in ids])
    grown = create_index("exact", base.dim, base.label_names, base.model_hash, base.normalization)
    grown.add(vectors, ids, labels)
    rng = np.random.default_rng(0)
    copy = 0
    while grown.ntotal < items:
        m = min(len(ids), items - grown.ntotal)
        noise = 0.02 * rng.standard_normal((m, base.dim)).astype(np.float32) / np.sqrt(base.dim)
        grown.add(vectors[:m] + noise, [f"{i}~{copy}" for i in ids[:m]], labels[:m])
        copy += 1
    grown.save(out)
    return ids, list(base.label_names)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--run", type=Path, default=ROOT / "runs" / "demo")
    parser.add_argument("--config", type=Path, default=ROOT / "src" / "macl" / "demo.yaml")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "serve_load.json")
    args = parser.parse_args()
    config = load_config(args.config, [f"output={args.run}"])
    with tempfile.TemporaryDirectory() as tmp:
        index_path = Path(tmp) / "grown.index"
        ids, names = grown_index(args.run, args.items, index_path)
        split = ArchiveSplits(config.dataset).raw(config.protocol.queries)
        uploads = []
        for i in range(8):
            buffer = io.BytesIO()
            Image.fromarray(split.read(i).permute(1, 2, 0).numpy()).save(buffer, format="PNG")
            uploads.append(buffer.getvalue())
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        command = [sys.executable, "-m", "macl.cli", "serve", "-c", str(args.config), "--set", f"output={args.run}",
                   "--index", str(index_path), "--port", str(port)]  # fmt: skip
        started = time.perf_counter()
        server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        url = f"http://127.0.0.1:{port}"
        try:
            with httpx.Client(base_url=url, timeout=120) as client:
                while True:
                    try:
                        if client.get("/api/health").status_code == 200:
                            break
                    except httpx.TransportError:
                        time.sleep(0.2)
                ready_s = time.perf_counter() - started
                memory_ready = rss_mb(server.pid)
                rng = np.random.default_rng(1)
                plan = rng.choice(["id", "labels", "image"], size=args.requests, p=[0.45, 0.45, 0.10])
                frequent = names[:: max(1, len(names) // 6)]

                def one(j: int) -> tuple[str, float, int]:
                    kind = str(plan[j])
                    start = time.perf_counter()
                    if kind == "id":
                        r = client.post("/api/search", json={"id": ids[j % len(ids)], "k": 24})
                    elif kind == "labels":
                        pair = [frequent[j % len(frequent)], frequent[(j + 1) % len(frequent)]]
                        r = client.post("/api/search", json={"labels": pair[:1], "any": pair[1:], "k": 24})
                    else:
                        files = {"file": ("query.png", uploads[j % len(uploads)], "image/png")}
                        r = client.post("/api/search/image", files=files, data={"k": "24"})
                    return kind, time.perf_counter() - start, r.status_code

                start = time.perf_counter()
                with ThreadPoolExecutor(args.clients) as pool:
                    results = list(pool.map(one, range(args.requests)))
                wall = time.perf_counter() - start
                memory_after = rss_mb(server.pid)
        finally:
            server.terminate()
            server.wait()
    rows = {}
    for kind in ("id", "labels", "image", "all"):
        lat = np.array([t for k, t, _ in results if kind in (k, "all")]) * 1000
        codes = [c for k, _, c in results if kind in (k, "all")]
        rows[kind] = {"requests": len(lat), "errors": sum(c != 200 for c in codes),
                      **{f"p{q}_ms": float(np.percentile(lat, q)) for q in (50, 95, 99)}}  # fmt: skip
        r = rows[kind]
        cells = [kind.ljust(6), str(r["requests"]), str(r["errors"])] + [f"{r[f'p{q}_ms']:.1f}" for q in (50, 95, 99)]
        print("| " + " | ".join(cells) + " |")
    summary = {"items": args.items, "clients": args.clients, "requests_per_s": args.requests / wall,
               "ready_s": ready_s, "rss_mb_ready": memory_ready, "rss_mb_after": memory_after,
               "cpus": os.cpu_count(), "by_kind": rows}  # fmt: skip
    print(json.dumps({k: v for k, v in summary.items() if k != "by_kind"}))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
