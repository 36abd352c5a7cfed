"""What the processes of the distributed tests run (a module of its own so spawned processes import it)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from macl.memory import MemoryQueue
from macl.objective import Objective
from macl.train import build_criterion

CLASSES, IMAGES, VIEWS, IN_DIM, STEPS = 5, 8, 2, 12, 3


def problem(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A fixed global batch: ``VIEWS`` views of ``IMAGES`` images (view-major) with multi-hot labels.

    Label 4 is carried by images 0 and 7 only: split over two processes they sit on different ranks.
    """
    g = torch.Generator().manual_seed(seed)
    labels = (torch.rand(IMAGES, CLASSES, generator=g) < 0.4).double()
    labels[:, 4] = 0
    labels[[0, 7], 4] = 1
    labels[labels.sum(1) == 0, 0] = 1
    views = torch.randn(VIEWS, IMAGES, IN_DIM, generator=g, dtype=torch.float64)
    return views, labels


def rank_slice(views: torch.Tensor, labels: torch.Tensor, rank: int, world: int) -> tuple[torch.Tensor, torch.Tensor]:
    """This process's images (a contiguous slice, as RankSlices deals them), laid out view-major."""
    part = np.array_split(np.arange(IMAGES), world)[rank]
    x = views[:, part].reshape(-1, IN_DIM)
    return x, labels[part].repeat(VIEWS, 1)


class Net(nn.Module):
    """A small float64 network with an optional label head (the hybrid's), like the encoder's two heads."""

    def __init__(self, out_dim: int, classes: int) -> None:
        super().__init__()
        torch.manual_seed(1)
        self.body = nn.Sequential(nn.Linear(IN_DIM, 16), nn.Tanh()).double()
        self.head = nn.Linear(16, out_dim).double()
        self.classifier = nn.Linear(16, classes).double() if classes else None

    def forward(self, x: torch.Tensor, with_logits: bool = False) -> Any:
        features = self.body(x)
        if with_logits:
            assert self.classifier is not None
            return self.head(features), self.classifier(features)
        return self.head(features)


def objective_for(loss: str, bce_weight: float, memory: int, labels: torch.Tensor) -> tuple[nn.Module, Objective]:
    from macl.config import BCE, TrainConfig

    config = TrainConfig(loss=loss, bce_weight=bce_weight, memory=memory, out_dim=6)
    net = Net(CLASSES if loss == BCE else 6, CLASSES if bce_weight else 0)
    counts = labels.sum(0).numpy()
    queue = MemoryQueue(memory, 6, CLASSES) if memory else None
    if queue is not None:
        queue.embeddings, queue.labels = queue.embeddings.double(), queue.labels.double()
    return net, Objective(build_criterion(config, counts, IMAGES), bce_weight, VIEWS, queue)


def train(loss: str, bce_weight: float, memory: int, rank: int, world: int) -> dict[str, Any]:
    """``STEPS`` SGD steps on the fixed global batch; parameters, logged losses and memory at the end."""
    views, labels = problem()
    net, objective = objective_for(loss, bce_weight, memory, labels)
    model: nn.Module = nn.parallel.DistributedDataParallel(net) if world > 1 else net
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.9)
    logged = []
    for step in range(STEPS):
        x, y = rank_slice(views + 0.1 * step, labels, rank, world)
        out, logits = model(x, with_logits=True) if bce_weight else (model(x), None)
        result = objective(out, y, logits)
        optimizer.zero_grad()
        result.backward.backward()
        optimizer.step()
        logged.append(result.value)
    memory_state = objective.memory.state_dict() if objective.memory is not None else None
    return {
        "params": {k: v.detach().clone() for k, v in net.state_dict().items()},
        "logged": logged,
        "memory": memory_state,
    }


def only_positive_elsewhere(rank: int) -> dict[str, Any]:
    """Single-view anchors: image 0 (rank 0) shares label 4 with image 7 (rank 1) only."""
    from macl.losses import build_loss

    views, labels = problem()
    part = np.array_split(np.arange(IMAGES), 2)[rank]
    emb = views[0, part].clone().requires_grad_(True)
    objective = Objective(build_loss("mulsupcon"), 0.0, n_views=1)
    only_4 = torch.zeros_like(labels[part])
    only_4[:, 4] = labels[part, 4]  # the label-4 carriers keep label 4 alone; the rest carry nothing
    result = objective(emb, only_4)
    result.backward.backward()
    assert emb.grad is not None
    return {"value": result.value, "grad_norms": emb.grad.norm(dim=1)}


CASES = [  # (loss, bce_weight, memory)
    ("macl", 0.0, 0),
    ("mulsupcon", 0.0, 0),
    ("supcon-any", 0.0, 0),
    ("bce", 0.0, 0),
    ("ntxent", 0.0, 0),
    ("macl", 0.5, 0),  # the hybrid: MACL plus a BCE head
    ("mulsupcon", 0.0, 24),  # with a cross-batch memory
    ("ntxent", 0.0, 24),
]


def worker(rank: int, world: int, rendezvous: str, out: str) -> None:
    """Every case of :data:`CASES` and the positive-elsewhere check, in one process group (one start-up)."""
    dist.init_process_group("gloo", init_method=rendezvous, rank=rank, world_size=world)
    try:
        result = {case: train(*case, rank=rank, world=world) for case in CASES}
        result["positive"] = only_positive_elsewhere(rank)
        torch.save(result, Path(out) / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


class Interrupted(Exception):
    """The run was stopped after an epoch, as a killed run is."""


def pipeline_worker(rank: int, world: int, port: int, config: Any, stop_after: int) -> None:
    """One process of a ``torchrun``-like launch: the environment names the world, the library joins it.

    Rank 0 stops the run after ``stop_after`` epochs (its epoch callback raises), like a killed launch.
    """
    os.environ.update(
        {
            "RANK": str(rank),
            "WORLD_SIZE": str(world),
            "LOCAL_RANK": str(rank),
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(port),
        }
    )
    torch.set_num_threads(1)
    from macl import pipeline

    def on_epoch(log: Any) -> None:
        if log.epoch >= stop_after:
            raise Interrupted(f"stopped after epoch {log.epoch}")

    pipeline.train(config, on_epoch=on_epoch)
