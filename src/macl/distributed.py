"""Data-parallel training on ``torch.distributed``: who this process is, and the global batch it sees.

A run launched by ``torchrun`` (one process per GPU, or per CPU share with gloo) finds ``RANK``,
``WORLD_SIZE`` and ``LOCAL_RANK`` in its environment; :func:`session` joins the process group from them
(NCCL when CUDA is available, gloo otherwise) and a plain ``python``/``macl`` launch is the world of one.

Contrastive losses need every pair of the global batch, not only those inside one process's slice, so
each process gathers the embeddings of all processes with :func:`gather`. The gather is differentiable
in full: a process's own rows are its own tensor (their gradient flows as usual) and the backward pass
sums, across processes, the gradients every process computed for every row and returns each process
those of its own rows. Each process therefore back-propagates the *exact* gradient of the global loss
with respect to its embeddings — not only the part its own anchors contribute, which is what a gather
that drops the gradient of the gathered copies gives (pytorch-metric-learning's ``all_gather``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor

from macl.errors import ArgumentError

# How long a collective waits for a late process before the run fails: rank 0 validates and writes
# checkpoints while the others wait at their next collective.
TIMEOUT = timedelta(hours=2)


@dataclass(frozen=True)
class World:
    """This process's place in the run: ``rank`` of ``size`` processes, ``local_rank`` on its node."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def distributed(self) -> bool:
        return self.size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that writes files and prints."""
        return self.rank == 0

    def device(self) -> torch.device:
        """This process's GPU (``cuda:<local_rank>``) when CUDA is available, else the CPU."""
        return torch.device("cuda", self.local_rank) if torch.cuda.is_available() else torch.device("cpu")


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ArgumentError(f"environment variable {name}={raw!r} is not an integer") from None


def environment_world() -> World:
    """The world ``torchrun`` describes in the environment (the world of one without it)."""
    world = World(_env_int("RANK", 0), _env_int("WORLD_SIZE", 1), _env_int("LOCAL_RANK", 0))
    if world.size < 1 or not 0 <= world.rank < world.size:
        raise ArgumentError(f"RANK={world.rank} is outside 0..{world.size - 1} (WORLD_SIZE={world.size})")
    return world


def current_world() -> World:
    """The world of the joined process group (the world of one when there is none)."""
    if not (dist.is_available() and dist.is_initialized()):
        return World()
    return World(dist.get_rank(), dist.get_world_size(), _env_int("LOCAL_RANK", 0))


@contextmanager
def session() -> Iterator[World]:
    """Join the process group the environment describes for the duration of the block.

    Nothing happens for a world of one, or when the caller already joined a group (it keeps it); a group
    joined here is left on exit, so one process can run several trainings one after the other.
    """
    world = environment_world()
    if not world.distributed or dist.is_initialized():
        yield current_world() if dist.is_initialized() else world
        return
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(world.local_rank)
    dist.init_process_group(backend, timeout=TIMEOUT)
    try:
        yield current_world()
    finally:
        dist.destroy_process_group()


class _Gather(torch.autograd.Function):
    """All-gather rows of known, unequal counts; backward: sum the gradients across processes, keep own rows."""

    @staticmethod
    def forward(ctx: Any, tensor: Tensor, sizes: list[int]) -> Tensor:
        padded = tensor.new_zeros((max(sizes), *tensor.shape[1:]))
        padded[: tensor.shape[0]] = tensor
        parts = [torch.empty_like(padded) for _ in sizes]
        dist.all_gather(parts, padded)
        ctx.sizes, ctx.rank = sizes, dist.get_rank()
        return torch.cat([part[:size] for part, size in zip(parts, sizes, strict=True)])

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None]:
        grad = grad.contiguous()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        start = sum(ctx.sizes[: ctx.rank])
        return grad[start : start + ctx.sizes[ctx.rank]], None


def _joined() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


@dataclass(frozen=True)
class Gathered:
    """Every process's rows in rank order; ``sizes[r]`` rows came from process ``r``."""

    rows: Tensor
    sizes: list[int]
    rank: int

    @property
    def offset(self) -> int:
        """Where this process's own rows start in :attr:`rows`."""
        return sum(self.sizes[: self.rank])


def gather(tensor: Tensor, sizes: list[int] | None = None) -> Gathered:
    """Every process's rows (in rank order), differentiable when ``tensor`` requires a gradient.

    See the module docstring for the gradient; row counts may differ between processes (torch's own
    differentiable ``torch.distributed.nn.all_gather`` needs equal counts). ``sizes``, the row counts of
    an earlier gather of the same rows, saves the collective that learns them. In a world of one it is
    ``tensor`` itself.
    """
    if not _joined():
        return Gathered(tensor, [tensor.shape[0]], 0)
    if sizes is None:
        counts = [torch.zeros(1, dtype=torch.long, device=tensor.device) for _ in range(dist.get_world_size())]
        dist.all_gather(counts, torch.tensor([tensor.shape[0]], device=tensor.device))
        sizes = [int(c.item()) for c in counts]
    return Gathered(_Gather.apply(tensor.contiguous(), sizes), sizes, dist.get_rank())


def all_sum(tensor: Tensor) -> Tensor:
    """The sum over processes of a (detached) tensor; the tensor itself in a world of one."""
    tensor = tensor.detach().clone()
    if _joined():
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def barrier() -> None:
    """Wait for every process (nothing in a world of one)."""
    if _joined():
        dist.barrier()
