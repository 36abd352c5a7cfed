"""MACL's label-aware batch sampler: rare labels in every batch, each with a partner to contrast with.

Two mechanisms, both from the method specification:

1. **Rare-label oversampling.** Image ``i`` is drawn with probability proportional to
   ``max_{c∈Y_i} (1/n_c)^kappa`` (``n_c``: images carrying ``c``), so an image with one rare label is
   drawn as if it were rare. ``kappa = 0`` is uniform sampling. Unlabelled images get the weight of the
   commonest label.
2. **Pair completion.** A label with a single carrier in a batch gives its anchor no positive but its own
   augmented view. For each such label (rarest first) another carrier is swapped in — drawn by the same
   weights — in place of an image whose labels all keep at least two carriers without it. If no image can
   give way, or the label has a single carrier in the whole dataset, the batch is left as it is:
   "where the data allows".

**Epoch.** An epoch has ``num_batches`` batches (default ``ceil(N / batch_size)``), drawn with the seed
and the epoch number only, so every process of a distributed run builds the same list. Within a batch
images are distinct; across batches they are drawn with replacement. With ``kappa = 0`` and pair
completion off an epoch is exactly one random permutation of the dataset (every image once, the last
batch possibly short); otherwise an epoch draws ``num_batches · batch_size`` images, rare-label images
more often than their share and some common ones not at all.

**Distributed.** ``batch_size`` is the *global* batch. Every process builds the same list of global
batches and :class:`RankSlices` deals each one out: process ``r`` of ``W`` takes the ``r``-th of ``W``
equal contiguous slices of every batch, so all processes run the same number of steps and their slices,
concatenated, are exactly the batch one process would train on. A global batch (label-aware, rare labels
paired) is what the loss sees once the processes gather their embeddings; a slice alone is not.
:class:`RandomBatchSampler` is the same contract for plain random batches.

**Resuming.** The batches of an epoch depend only on ``(seed, epoch)``, so the sampler has no state to
checkpoint: a run resumed at an epoch boundary calls ``set_epoch(epoch)`` and replays the very batches an
uninterrupted run would have drawn.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import torch
from torch.utils.data import Sampler


class LabelAwareBatchSampler(Sampler[list[int]]):
    """Yields lists of dataset indices (use as ``DataLoader(dataset, batch_sampler=...)``).

    Args:
        labels: (N, C) multi-hot label matrix of the training set.
        batch_size: images per batch (before augmentation into views).
        kappa: rare-label oversampling exponent; 0 disables oversampling.
        complete_pairs: swap in a second carrier for labels with one carrier in a batch.
        num_batches: batches per epoch; default ``ceil(N / batch_size)``.
        seed: the sampler's own seed (independent of torch's global RNG).
    """

    def __init__(
        self,
        labels: np.ndarray | torch.Tensor,
        batch_size: int,
        kappa: float = 0.5,
        complete_pairs: bool = True,
        num_batches: int | None = None,
        seed: int = 0,
    ) -> None:
        matrix = np.asarray(labels, dtype=bool)
        if matrix.ndim != 2 or matrix.shape[0] == 0:
            raise ValueError(f"labels must be a non-empty (N, C) multi-hot matrix; got shape {matrix.shape}")
        if not 1 <= batch_size <= matrix.shape[0]:
            raise ValueError(f"batch_size must be in [1, {matrix.shape[0]}] (the dataset size); got {batch_size}")
        if kappa < 0:
            raise ValueError(f"kappa must be >= 0; got {kappa}")
        self.labels = matrix
        self.batch_size = batch_size
        self.kappa = kappa
        self.complete_pairs = complete_pairs
        self.num_batches = num_batches or math.ceil(matrix.shape[0] / batch_size)
        self.seed = seed
        self.epoch = 0
        self.counts = matrix.sum(0)
        self.weights = self._image_weights()

    def _image_weights(self) -> np.ndarray:
        """``max_{c∈Y_i} (1/n_c)^kappa``, normalised to a probability vector."""
        inverse = np.where(self.counts > 0, 1.0 / np.maximum(self.counts, 1), 0.0) ** self.kappa
        per_image = np.where(self.labels, inverse[None, :], 0.0).max(axis=1)
        commonest = inverse[self.counts > 0].min() if (self.counts > 0).any() else 1.0
        per_image = np.where(self.labels.any(axis=1), per_image, commonest)
        return per_image / per_image.sum()

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch that iterating yields (each epoch has its own draw)."""
        self.epoch = epoch

    def epoch_batches(self, epoch: int) -> list[list[int]]:
        """Every (global) batch of ``epoch``."""
        rng = np.random.default_rng([self.seed, epoch])
        n = self.labels.shape[0]
        total = self.num_batches
        uniform_permutation = self.kappa == 0 and not self.complete_pairs and total * self.batch_size >= n
        if uniform_permutation:
            order = rng.permutation(n)
            batches = [order[k : k + self.batch_size] for k in range(0, n, self.batch_size)]
            while len(batches) < total:  # more batches than one pass over the data asked for
                batches.append(rng.choice(n, size=self.batch_size, replace=False))
            return [b.tolist() for b in batches[:total]]
        out = []
        for _ in range(total):
            batch = rng.choice(n, size=self.batch_size, replace=False, p=self.weights)
            if self.complete_pairs:
                batch = self._complete_pairs(batch, rng)
            out.append(batch.tolist())
        return out

    def _complete_pairs(self, batch: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Give every label with one carrier in ``batch`` a second one, where the data allows."""
        batch = batch.copy()
        in_batch = self.labels[batch].sum(0)
        singles = np.flatnonzero((in_batch == 1) & (self.counts >= 2))
        for label in singles[np.argsort(self.counts[singles], kind="stable")]:
            if in_batch[label] != 1:  # an earlier swap already paired it
                continue
            candidates = np.setdiff1d(np.flatnonzero(self.labels[:, label]), batch)
            if candidates.size == 0:
                continue
            # An image may give way if each of its labels keeps >= 2 carriers (or had none to protect).
            spare = (in_batch[None, :] >= 3) | ~self.labels[batch]
            removable = np.flatnonzero(spare.all(axis=1) & ~self.labels[batch, label])
            if removable.size == 0:
                continue
            p = self.weights[candidates] / self.weights[candidates].sum()
            newcomer = rng.choice(candidates, p=p)
            slot = rng.choice(removable)
            in_batch += self.labels[newcomer].astype(int) - self.labels[batch[slot]].astype(int)
            batch[slot] = newcomer
        return batch

    def __iter__(self) -> Iterator[list[int]]:
        yield from self.epoch_batches(self.epoch)

    def __len__(self) -> int:
        return self.num_batches


class RandomBatchSampler(Sampler[list[int]]):
    """Plain random batches: one permutation of ``n`` images per epoch, drawn from ``(seed, epoch)`` only.

    The last batch is kept short unless ``drop_last``. Like :class:`LabelAwareBatchSampler` it has no
    state to checkpoint and every process of a distributed run builds the same list.
    """

    def __init__(self, n: int, batch_size: int, drop_last: bool = False, seed: int = 0) -> None:
        if not 1 <= batch_size <= n:
            raise ValueError(f"batch_size must be in [1, {n}] (the dataset size); got {batch_size}")
        self.n, self.batch_size, self.drop_last, self.seed = n, batch_size, drop_last, seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def epoch_batches(self, epoch: int) -> list[list[int]]:
        order = np.random.default_rng([self.seed, epoch, 1]).permutation(self.n).tolist()
        batches = [order[k : k + self.batch_size] for k in range(0, self.n, self.batch_size)]
        if self.drop_last and len(batches[-1]) < self.batch_size:
            batches.pop()
        return batches

    def __iter__(self) -> Iterator[list[int]]:
        yield from self.epoch_batches(self.epoch)

    def __len__(self) -> int:
        return self.n // self.batch_size if self.drop_last else math.ceil(self.n / self.batch_size)


class RankSlices(Sampler[list[int]]):
    """Process ``rank``'s share of every global batch of ``batches``: its contiguous slice.

    Slices are as equal as the batch allows (``numpy.array_split``: sizes differ by at most one, only in a
    short last batch); a batch with fewer images than processes is skipped by every process alike, so all
    processes take the same number of steps — a collective operation never waits for a process that has
    run out of batches.
    """

    def __init__(self, batches: LabelAwareBatchSampler | RandomBatchSampler, rank: int, world_size: int) -> None:
        if not 0 <= rank < world_size:
            raise ValueError(f"need 0 <= rank < world_size; got rank={rank}, world_size={world_size}")
        self.batches, self.rank, self.world_size = batches, rank, world_size
        # (epoch, its dealt batches): a DataLoader asks len() as well as iterating, and drawing an epoch of
        # label-aware batches costs a pass over the label matrix per batch, so it is drawn once per epoch.
        self._drawn: tuple[int, list[list[int]]] | None = None

    def set_epoch(self, epoch: int) -> None:
        self.batches.set_epoch(epoch)

    def global_batches(self) -> list[list[int]]:
        """The epoch's global batches that are dealt out (those with at least one image per process)."""
        epoch = self.batches.epoch
        if self._drawn is None or self._drawn[0] != epoch:
            self._drawn = (epoch, [b for b in self.batches.epoch_batches(epoch) if len(b) >= self.world_size])
        return self._drawn[1]

    def __iter__(self) -> Iterator[list[int]]:
        for batch in self.global_batches():
            yield np.array_split(np.asarray(batch), self.world_size)[self.rank].tolist()

    def __len__(self) -> int:
        return len(self.global_batches())
