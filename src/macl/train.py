"""The training loop: two augmented views, any loss of ``macl.losses`` (or the BCE baseline), checkpoints.

Reproducibility is by construction rather than by saving generator states: every source of randomness
of epoch ``e`` (batch order, augmentations in the main process and in every DataLoader worker) is
seeded from ``(seed, e)`` at the start of the epoch. A run killed during epoch ``e`` and resumed from
the checkpoint written at the end of epoch ``e − 1`` therefore replays epoch ``e`` exactly and ends with
the same weights as an uninterrupted run.

Checkpoints (``last.pt`` every epoch, ``best.pt`` at the best validation mAP) hold the model and its
input normalisation, optimiser, scheduler, memory, history and configuration (the sampler needs no
state: its batches depend only on ``(seed, epoch)``). They are written atomically and hold only tensors
and plain data, so they load with ``torch.load(weights_only=True)``: a downloaded run folder cannot run
code.

**Several processes** (``torchrun``; :mod:`macl.distributed`): every process builds the same global
batches and trains on its slice of each (:class:`macl.data.sampler.RankSlices`), the model is wrapped in
``DistributedDataParallel`` and the loss is the global batch's (:mod:`macl.objective`). Rank 0 alone
validates and writes checkpoints and logs. Nothing in a checkpoint depends on the number of processes, so
a run resumes with any number that divides the global batch (augmentations, drawn per process, differ).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from macl import distributed
from macl.config import BCE, TrainConfig, train_config
from macl.data.base import Sample
from macl.data.sampler import LabelAwareBatchSampler, RandomBatchSampler, RankSlices
from macl.data.transforms import MultiView, Transformed, train_augmentation, views_to_batch
from macl.embedding import embed
from macl.errors import CheckpointError, ConfigError
from macl.fileio import atomic_write
from macl.losses import NEEDS_LABEL_COUNTS, build_loss
from macl.memory import MemoryQueue
from macl.metrics import evaluate_retrieval
from macl.models import Encoder
from macl.objective import Objective, StepLoss


def epoch_seed(seed: int, epoch: int, rank: int = 0) -> int:
    """The seed of epoch ``epoch``'s augmentations on process ``rank`` (rank 0: that of a single process)."""
    return int(np.random.SeedSequence([seed, epoch, *([rank] if rank else [])]).generate_state(1)[0])


def build_model(config: TrainConfig, num_classes: int) -> Encoder:
    """The encoder a run trains, at the initialisation the current torch seed gives it."""
    if config.loss == BCE:
        head, out_dim = "classifier", num_classes
    else:
        head, out_dim = "projection", config.out_dim
    classes = num_classes if config.bce_weight > 0 else 0
    return Encoder(config.backbone, config.weights, head, out_dim, config.embedding, config.normalization, classes)


def build_criterion(config: TrainConfig, label_counts: np.ndarray, num_samples: int) -> nn.Module:
    if config.loss == BCE:
        return nn.BCEWithLogitsLoss()
    kwargs = dict(config.loss_args)
    if config.loss in NEEDS_LABEL_COUNTS:
        kwargs |= {"label_counts": label_counts.tolist(), "num_samples": num_samples}
    if config.loss == "ntxent":
        kwargs.setdefault("n_views", config.n_views)
    return build_loss(config.loss, **kwargs)


def warmup_cosine(total_steps: int, warmup_steps: int) -> Callable[[int], float]:
    """Learning-rate factor: linear warm-up, then cosine decay to 0 (the SupCon/SimCLR schedule)."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))

    return factor


@dataclass
class EpochLog:
    epoch: int
    loss: float
    images_per_s: float
    lr: float
    val_map: float | None = None


class Trainer:
    """Train ``config`` on ``train_set`` (un-augmented samples with ``classes`` and ``label_matrix``).

    ``validation`` is ``(queries, database)``, two datasets of model-ready images (validation queries
    against the training images, the retrieval protocol in miniature); ``None`` skips validation. The
    datasets are never modified: augmentations wrap them (:class:`macl.data.transforms.Transformed`).
    """

    def __init__(
        self,
        config: TrainConfig,
        train_set: Any,
        validation: tuple[Dataset[Sample], Dataset[Sample]] | None,
        out_dir: Path,
    ) -> None:
        self.config, self.out_dir = config, Path(out_dir)
        self.train_set, self.validation = train_set, validation
        self.world = distributed.current_world()
        if config.batch_size % self.world.size:
            raise ConfigError(
                f"train.batch_size: the global batch of {config.batch_size} images does not split evenly "
                f"over {self.world.size} processes; use a batch size divisible by the number of processes"
            )
        torch.manual_seed(config.seed)  # model initialisation (on the CPU, so it is the same on every device)
        labels = train_set.label_matrix
        # The GPU when there is one: not part of the config, so a run can resume on another machine.
        self.device = self.world.device()
        self.model = build_model(config, labels.shape[1]).to(self.device)
        self.network = self._parallel(self.model)  # what the loop calls: DDP around the model, or the model
        self.criterion = build_criterion(config, labels.sum(0), labels.shape[0]).to(self.device)
        memory = None
        if config.memory:
            memory = MemoryQueue(config.memory, config.out_dim, labels.shape[1], self.device)
        self.objective = Objective(self.criterion, config.bce_weight, config.n_views, memory)
        self.steps_per_epoch = len(self.batches(0))
        params = self.model.parameters()
        if config.optimizer == "adamw":
            self.optimizer: torch.optim.Optimizer = torch.optim.AdamW(
                params, lr=config.lr, weight_decay=config.weight_decay
            )
        else:
            self.optimizer = torch.optim.SGD(params, lr=config.lr, momentum=0.9, weight_decay=config.weight_decay)
        total = config.epochs * self.steps_per_epoch
        warmup = max(1, int(config.warmup_epochs * self.steps_per_epoch))
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, warmup_cosine(total, warmup))
        self.epoch = 0  # epochs completed
        self.history: list[EpochLog] = []
        self.best_map = -1.0

    def _parallel(self, model: Encoder) -> nn.Module:
        if not self.world.distributed:
            return model
        if self.config.sync_bn:
            if self.device.type != "cuda":
                raise ConfigError("train.sync_bn: torch's SyncBatchNorm runs on GPUs only; set it false on CPUs")
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
            self.model = model
        ids = [self.device.index] if self.device.type == "cuda" else None
        return nn.parallel.DistributedDataParallel(model, device_ids=ids)

    # --- data ----------------------------------------------------------------------------------------
    def batches(self, epoch: int) -> DataLoader:
        """This process's DataLoader of ``epoch``: its slice of the epoch's global batches.

        The global batches depend only on (seed, epoch); the augmentations on (seed, epoch, rank).
        """
        cfg = self.config
        views = Transformed(self.train_set, MultiView(train_augmentation(cfg.image_size), cfg.n_views))
        generator = torch.Generator().manual_seed(epoch_seed(cfg.seed, epoch, self.world.rank))
        n = len(self.train_set)
        batches: LabelAwareBatchSampler | RandomBatchSampler
        if cfg.sampler:
            batches = LabelAwareBatchSampler(
                self.train_set.label_matrix, cfg.batch_size, kappa=cfg.kappa, seed=cfg.seed
            )
        else:
            batches = RandomBatchSampler(n, cfg.batch_size, drop_last=n >= 2 * cfg.batch_size, seed=cfg.seed)
        sampler = RankSlices(batches, self.world.rank, self.world.size)
        sampler.set_epoch(epoch)
        return DataLoader(views, batch_sampler=sampler, num_workers=cfg.workers, generator=generator)

    # --- checkpoints ---------------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        return {
            "config": asdict(self.config),
            "classes": list(self.train_set.classes),
            "model": self.model.state_dict(),
            "model_config": self.model.config,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "epoch": self.epoch,
            "history": [asdict(h) for h in self.history],
            "best_map": self.best_map,
            "memory": None if self.objective.memory is None else self.objective.memory.state_dict(),
        }

    def save(self, name: str) -> Path:
        """Write a checkpoint atomically, from rank 0 only (every process holds the same state)."""
        path = self.out_dir / name
        if self.world.is_main:
            with atomic_write(path) as fh:
                torch.save(self.state(), fh)
        return path

    def resume(self, path: Path) -> None:
        """Continue from a checkpoint written by :meth:`save` (same config required)."""
        try:
            state = torch.load(path, map_location=self.device, weights_only=True)
        except (RuntimeError, EOFError, OSError) as err:
            raise CheckpointError(f"cannot load checkpoint {path}: {err}") from err
        saved, ours = asdict(train_config(state["config"])), asdict(self.config)
        if saved != ours:
            changed = sorted(k for k, v in saved.items() if ours.get(k) != v)
            raise CheckpointError(
                f"{path} was written with a different configuration (differs in: {', '.join(changed)}); "
                "start a new run folder or restore the settings"
            )
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.epoch, self.best_map = state["epoch"], state["best_map"]
        self.history = [EpochLog(**h) for h in state["history"]]
        if self.objective.memory is not None and state.get("memory") is not None:
            self.objective.memory.load_state_dict(state["memory"])

    # --- the loop ------------------------------------------------------------------------------------
    def train_epoch(self, on_step: Callable[[float, float], None] | None = None) -> EpochLog:
        """One epoch; ``on_step(loss, images_per_s)`` after every step (the CLI's progress bar)."""
        cfg = self.config
        torch.manual_seed(epoch_seed(cfg.seed, self.epoch, self.world.rank) + 1)  # augmentations drawn here
        loader = self.batches(self.epoch)
        self.network.train()
        total, count, start = 0.0, 0, time.perf_counter()
        for batch in loader:
            images, labels = views_to_batch(batch["image"], batch["label"])
            images, labels = images.to(self.device, non_blocking=True), labels.to(self.device, non_blocking=True)
            step = self.step(images, labels)
            count += step.images
            total += step.value * step.images
            if on_step is not None:
                on_step(step.value, count / (time.perf_counter() - start))
        self.epoch += 1
        log = EpochLog(
            self.epoch,
            total / max(count, 1),
            count / (time.perf_counter() - start),
            float(self.scheduler.get_last_lr()[0]),
        )
        validating = self.validation is not None and (self.epoch % cfg.eval_every == 0 or self.epoch == cfg.epochs)
        if validating and self.world.is_main:
            log.val_map = self.validate()
        self.history.append(log)
        self.save("last.pt")
        if log.val_map is not None and log.val_map > self.best_map:
            self.best_map = log.val_map
            self.save("best.pt")
        return log

    def step(self, images: torch.Tensor, labels: torch.Tensor) -> StepLoss:
        """One optimisation step on this process's views: the global batch's loss (:mod:`macl.objective`)."""
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.config.bf16):
            if self.model.classifier is None:
                output, logits = self.network(images), None
            else:
                output, logits = self.network(images, with_logits=True)
            loss = self.objective(output, labels, logits)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward.backward()
        self.optimizer.step()
        self.scheduler.step()
        return loss

    def validate(self) -> float:
        """Validation queries against the training images (the retrieval protocol in miniature): mAP."""
        assert self.validation is not None
        queries, database = self.validation
        q = embed(self.model, queries, workers=self.config.workers)
        db = embed(self.model, database, workers=self.config.workers)
        return evaluate_retrieval(q.vectors, q.labels, db.vectors, db.labels, ks=(10,)).metrics["map"]

    def fit(
        self, on_step: Callable[[float, float], None] | None = None, on_epoch: Callable[[EpochLog], None] | None = None
    ) -> list[EpochLog]:
        while self.epoch < self.config.epochs:
            log = self.train_epoch(on_step)
            if on_epoch is not None:
                on_epoch(log)
        return self.history
