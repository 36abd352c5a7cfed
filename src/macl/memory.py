"""Cross-batch memory (XBM, Wang et al., CVPR 2020): the last ``size`` embeddings and their labels.

A contrastive loss with rare labels starves when a batch holds one carrier of a label: its anchors have
no partner to be pulled to. A memory of the embeddings of earlier batches (detached: no gradient flows
into the past) makes every recent carrier a candidate. The memory is filled with the embeddings of the
*global* batch — gathered from every process — in rank order, so every process holds the same memory
(MulSupCon's queue, filled from each process's own keys, diverges across processes under DDP).

The embeddings are those of the model being trained (no momentum encoder), as in XBM: they drift as the
model learns, which is why the memory is short compared with the archive.
"""

from __future__ import annotations

import torch
from torch import Tensor


class MemoryQueue:
    """A first-in first-out memory of ``size`` rows of embeddings (D) and multi-hot labels (C)."""

    def __init__(self, size: int, dim: int, classes: int, device: torch.device | str = "cpu") -> None:
        if size < 1:
            raise ValueError(f"a memory needs at least one row; got size={size}")
        self.size = size
        self.embeddings = torch.zeros(size, dim, device=device)
        self.labels = torch.zeros(size, classes, device=device)
        self.count = 0  # rows filled
        self.pointer = 0  # the next row to overwrite

    def contents(self) -> tuple[Tensor, Tensor]:
        """The filled rows ``(embeddings, labels)`` (in storage order: the loss does not need the age)."""
        return self.embeddings[: self.count], self.labels[: self.count]

    @torch.no_grad()
    def push(self, embeddings: Tensor, labels: Tensor) -> None:
        """Add rows (detached), overwriting the oldest; more rows than ``size`` keep the last ``size``."""
        embeddings = embeddings.detach().to(self.embeddings)[-self.size :]
        labels = labels.detach().to(self.labels)[-self.size :]
        rows = (self.pointer + torch.arange(embeddings.shape[0], device=self.embeddings.device)) % self.size
        self.embeddings[rows] = embeddings
        self.labels[rows] = labels
        self.pointer = int((self.pointer + embeddings.shape[0]) % self.size)
        self.count = min(self.size, self.count + embeddings.shape[0])

    def state_dict(self) -> dict[str, Tensor | int]:
        return {
            "embeddings": self.embeddings.cpu(),
            "labels": self.labels.cpu(),
            "count": self.count,
            "pointer": self.pointer,
        }

    def load_state_dict(self, state: dict[str, Tensor | int]) -> None:
        embeddings, labels = state["embeddings"], state["labels"]
        assert isinstance(embeddings, Tensor) and isinstance(labels, Tensor)
        if embeddings.shape != self.embeddings.shape or labels.shape != self.labels.shape:
            raise ValueError(
                f"memory of shape {tuple(embeddings.shape)} cannot be restored into {tuple(self.embeddings.shape)}"
            )
        self.embeddings.copy_(embeddings)
        self.labels.copy_(labels)
        self.count, self.pointer = int(state["count"]), int(state["pointer"])
