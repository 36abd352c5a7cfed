"""Data-parallel training speed: 1 against W processes on one global batch (issue 14's benchmark).

    python benchmarks/distributed_speed.py [--worlds 1 2] [--global-batches 256 1024] [--image-size 64]
        [--steps 3] [--loss macl] [--out benchmarks/results/distributed_speed.json]

Each configuration starts ``W`` processes (gloo on the CPU; NCCL, one GPU per process, where CUDA is
available) that train ResNet-18 with the loss through :class:`macl.objective.Objective` exactly as
``macl train`` does under ``torchrun``: DDP, the differentiable gather, the global-batch loss. Inputs are
random images (decoding and augmentation are not what is measured) with labels drawn at UC Merced's label
frequencies, two views per image. After one warm-up step, ``--steps`` steps are timed on every process:

* ``step_s``: the whole step (forward, objective, backward with DDP's gradient all-reduce, optimiser);
  ``images/s`` is the global batch over the slowest process's step;
* ``gather_s``: the forward all-gathers of embeddings and labels (including waiting for the slowest
  process: on a shared CPU, waiting dominates); ``loss_s``: the rest of the objective (the loss on the
  local anchors against the global batch, and the all-reduce of its sums);
* ``peak_rss_mib`` (CPU) or ``peak_cuda_mib`` (GPU): memory of each process at its peak.

Processes share the machine's CPU threads equally. The results file records the machine, thread counts
and the bytes each process sends per step, from which docs/distributed.md estimates scaling elsewhere.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import socket
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from macl import distributed
from macl.config import BCE, TrainConfig
from macl.objective import Objective
from macl.train import build_criterion, build_model

# UC Merced multi-label: images per label, of 2100 (as in loss_speed.py).
UCM_COUNTS = [100, 718, 691, 886, 115, 105, 100, 103, 975, 102, 1300, 294, 100, 102, 100, 1009, 203]
UCM_N = 2100
VIEWS = 2


def global_labels(images: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    freq = torch.tensor(UCM_COUNTS, dtype=torch.float) / UCM_N
    labels = (torch.rand(images, len(UCM_COUNTS), generator=g) < freq).float()
    labels[labels.sum(1) == 0, 10] = 1.0
    return labels


class _Timed:
    """Wraps :func:`macl.distributed.gather` to add up the time spent in it."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.original = distributed.gather

    def __call__(self, tensor: torch.Tensor) -> distributed.Gathered:
        start = time.perf_counter()
        out = self.original(tensor)
        self.seconds += time.perf_counter() - start
        return out


def run_rank(rank: int, world: int, port: int, spec: dict[str, Any], out: str) -> None:
    """One process: build, warm up, time ``steps`` steps, write its measurements."""
    cuda = torch.cuda.is_available()
    threads = max(1, (os.cpu_count() or 1) // world)
    torch.set_num_threads(threads)
    os.environ.update({"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "LOCAL_RANK": str(rank)})
    if world > 1:
        if cuda:
            torch.cuda.set_device(rank)
        dist.init_process_group("nccl" if cuda else "gloo", rank=rank, world_size=world)
    device = torch.device("cuda", rank) if cuda else torch.device("cpu")
    batch, size, loss = spec["global_batch"], spec["image_size"], spec["loss"]
    config = TrainConfig(loss=loss, image_size=size, batch_size=batch)
    torch.manual_seed(0)
    labels = global_labels(batch)
    model = build_model(config, labels.shape[1]).to(device)
    network = (
        torch.nn.parallel.DistributedDataParallel(model, device_ids=[rank] if cuda else None) if world > 1 else model
    )
    objective = Objective(build_criterion(config, labels.sum(0).numpy(), UCM_N).to(device), 0.0, VIEWS)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    local = torch.arange(batch).chunk(world)[rank]
    images = torch.rand(VIEWS, batch, 3, size, size, generator=torch.Generator().manual_seed(1))
    x = images[:, local].reshape(-1, 3, size, size).to(device)  # the same global batch for every world size
    y = labels[local].repeat(VIEWS, 1).to(device)
    timer = _Timed()
    distributed.gather = timer  # type: ignore[assignment]
    step_times, gather_times, loss_times = [], [], []
    for step in range(spec["steps"] + 1):
        if cuda:
            torch.cuda.synchronize()
        start = time.perf_counter()
        timer.seconds = 0.0
        output = network(x)
        loss_start = time.perf_counter()
        result = objective(output, y)
        loss_end = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        result.backward.backward()
        optimizer.step()
        if cuda:
            torch.cuda.synchronize()
        if step:  # the first step warms up (allocations, DDP's buckets)
            step_times.append(time.perf_counter() - start)
            gather_times.append(timer.seconds)
            loss_times.append(loss_end - loss_start - timer.seconds)
    params = sum(p.numel() for p in model.parameters())
    views = x.shape[0]
    dim = output.shape[1]
    record = {
        "rank": rank,
        "threads": threads,
        "step_s": min(step_times),
        "gather_s": min(gather_times),
        "loss_s": min(loss_times),
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "peak_cuda_mib": torch.cuda.max_memory_allocated(device) / 2**20 if cuda else None,
        "loss_value": result.value,
        # what this process sends per step, in bytes (float32): its embeddings and labels to every other
        # process (all-gather), the embeddings' gradient (all-reduce of the global rows) and DDP's gradient
        # all-reduce of every parameter; ring all-reduce sends 2 (W-1)/W of the buffer
        "bytes_gathered": 4 * views * (dim + labels.shape[1]) * (world - 1),
        "bytes_allreduce_embeddings": 4 * 2 * (world - 1) / world * VIEWS * batch * dim,
        "bytes_allreduce_gradients": 4 * 2 * (world - 1) / world * params,
    }
    (Path(out) / f"rank{rank}.json").write_text(json.dumps(record))
    if world > 1:
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def measure(world: int, spec: dict[str, Any]) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as out:
        mp.spawn(run_rank, args=(world, _free_port(), spec, out), nprocs=world, join=True)
        ranks = [json.loads((Path(out) / f"rank{r}.json").read_text()) for r in range(world)]
    slowest = max(r["step_s"] for r in ranks)
    return {
        "world": world,
        **spec,
        "images_per_s": spec["global_batch"] / slowest,
        "step_s": slowest,
        "gather_s": max(r["gather_s"] for r in ranks),
        "loss_s": max(r["loss_s"] for r in ranks),
        "peak_rss_mib": max(r["peak_rss_mib"] for r in ranks),
        "peak_cuda_mib": ranks[0]["peak_cuda_mib"],
        "loss_value": ranks[0]["loss_value"],
        "ranks": ranks,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--worlds", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--global-batches", type=int, nargs="+", default=[256, 1024])
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--loss", default="macl")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/distributed_speed.json"))
    args = parser.parse_args()
    if args.loss == BCE:
        parser.error("the benchmark measures the gather of a pair loss; choose a contrastive loss")
    rows = []
    for batch in args.global_batches:
        for world in args.worlds:
            spec = {"global_batch": batch, "image_size": args.image_size, "steps": args.steps, "loss": args.loss}
            row = measure(world, spec)
            rows.append(row)
            print(
                f"global batch {batch:5d} · {world} process(es): {row['images_per_s']:7.1f} img/s, "
                f"step {row['step_s']:.2f} s, gather {row['gather_s'] * 1e3:.1f} ms, "
                f"loss {row['loss_s'] * 1e3:.1f} ms, "
                f"peak RSS {row['peak_rss_mib']:.0f} MiB/process, loss {row['loss_value']:.4f}",
                flush=True,
            )
    print(
        "\n| global batch | processes | images/s | step (s) | gather (ms) | loss (ms) "
        "| peak memory / process (MiB) | loss |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        memory = r["peak_cuda_mib"] if r["peak_cuda_mib"] is not None else r["peak_rss_mib"]
        print(
            f"| {r['global_batch']} | {r['world']} | {r['images_per_s']:.1f} | {r['step_s']:.2f} | "
            f"{r['gather_s'] * 1e3:.1f} | {r['loss_s'] * 1e3:.1f} | {memory:.0f} | {r['loss_value']:.4f} |"
        )
    machine = {
        "platform": platform.platform(),
        "processor": platform.processor(),
        "cpus": os.cpu_count(),
        "torch": torch.__version__,
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"machine": machine, "rows": rows}, indent=1))
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
