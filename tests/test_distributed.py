"""Data-parallel training on torch.distributed (gloo, two CPU processes) against one process.

The contract (:mod:`macl.objective`): with the embeddings gathered with their gradient, DDP on ``W``
processes takes exactly the steps one process takes on the concatenated global batch, logs the same
loss, and fills the same memory on every process.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

import distributed_worker as w
from macl import pipeline, train
from macl.config import TrainConfig, load_config
from macl.distributed import World
from macl.errors import ConfigError
from macl.pipeline import load_model
from tiny_archive import LabelledTensors

pytestmark = pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed is not built")


@pytest.fixture(scope="module")
def ranks(tmp_path_factory) -> list[dict]:
    """What each of two gloo processes computed for every case (one process group for all of them)."""
    out = tmp_path_factory.mktemp("ddp")
    mp.spawn(w.worker, args=(2, f"file://{out / 'rendezvous'}", str(out)), nprocs=2, join=True)
    return [torch.load(out / f"rank{r}.pt", weights_only=False) for r in range(2)]


@pytest.mark.parametrize("case", w.CASES, ids=lambda c: f"{c[0]}-bce{c[1]}-memory{c[2]}")
def test_two_processes_take_the_steps_of_one_on_the_global_batch(ranks, case) -> None:
    loss, bce_weight, memory = case
    single = w.train(loss, bce_weight, memory, rank=0, world=1)
    for rank in ranks:
        result = rank[case]
        for name, value in single["params"].items():
            diff = (result["params"][name] - value).abs().max().item()
            assert diff < 1e-10, f"{loss}: parameter {name} differs by {diff:.2e} from one process"
        assert result["logged"] == pytest.approx(single["logged"], rel=1e-12, abs=1e-12)
    assert single["params"]["body.0.weight"].ne(w.Net(6, 0).body[0].weight).any()  # the steps moved the weights
    if memory:
        a, b = ranks[0][case]["memory"], ranks[1][case]["memory"]
        assert torch.equal(a["embeddings"], b["embeddings"]) and torch.equal(a["labels"], b["labels"])
        assert a["count"] == single["memory"]["count"] == memory and a["pointer"] == single["memory"]["pointer"]
        assert torch.equal(a["labels"], single["memory"]["labels"])  # the rows one process holds, in its order
        assert (a["embeddings"] - single["memory"]["embeddings"]).abs().max() < 1e-10


def test_an_anchor_whose_only_positive_is_on_the_other_process_learns(ranks) -> None:
    values = [r["positive"]["value"] for r in ranks]
    assert all(torch.isfinite(torch.tensor(v)) for v in values) and values[0] == values[1] > 0
    # image 0 (rank 0, first row) and image 7 (rank 1, last row) are each other's only positive
    assert ranks[0]["positive"]["grad_norms"][0] > 0 and ranks[1]["positive"]["grad_norms"][-1] > 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_torchrun_style_training_writes_one_checkpoint_and_resumes_with_another_world_size(tmp_path) -> None:
    overrides = [
        "dataset.args={num_images: 48, image_size: 32, seed: 3}",
        "train.image_size=24",
        "train.batch_size=8",
        "train.sampler=true",
        "train.memory=32",
        f"output={tmp_path / 'run'}",
    ]
    config = load_config(None, [*overrides, "train.epochs=2"])
    # Rank 0 stops after epoch 1; which process's error mp.spawn reports first (rank 0's, or rank 1's
    # "connection closed by peer") is a race, so only the interruption itself is asserted here.
    with pytest.raises(mp.ProcessRaisedException):
        mp.spawn(w.pipeline_worker, args=(2, _free_port(), config, 1), nprocs=2, join=True)
    run = tmp_path / "run"
    assert sorted(p.name for p in run.iterdir()) == ["best.pt", "config.yaml", "last.pt"]  # no temporaries
    _, state = load_model(run / "last.pt")
    assert state["epoch"] == 1 and state["memory"]["count"] == 32
    first = state["history"][0]
    assert first["val_map"] is not None and first["loss"] > 0
    # one process carries on from the two-process checkpoint (8 divides by 1 and by 2)
    resumed = pipeline.train(config, resume=True)
    assert [h.epoch for h in resumed.history] == [1, 2] and resumed.history[0].loss == first["loss"]
    assert (run / "history.json").is_file() and resumed.objective.memory.count == 32


def test_torchrun_launches_macl_train_on_two_processes(tmp_path) -> None:
    """The real launcher: torchrun starts two ``macl train`` processes that meet over gloo."""
    bin_dir = Path(sys.executable).parent
    out = tmp_path / "run"
    command = [
        str(bin_dir / "torchrun"),
        "--standalone",
        "--nproc-per-node=2",
        "--no-python",
        str(bin_dir / "macl"),
        "train",
        "--set",
        "dataset.args={num_images: 40, image_size: 32, seed: 1}",
        "--set",
        "train.image_size=24",
        "--set",
        "train.batch_size=8",
        "--set",
        "train.epochs=1",
        "--set",
        f"output={out}",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("checkpoints in") == 1  # rank 0 alone reports
    history = json.loads((out / "history.json").read_text())
    assert [h["epoch"] for h in history] == [1] and history[0]["val_map"] is not None


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ({"batch_size": 6}, r"global batch of 6 images does not split evenly over 4 processes"),
        ({"batch_size": 8, "sync_bn": True}, r"train\.sync_bn: torch's SyncBatchNorm runs on GPUs only"),
    ],
)
def test_trainer_refuses_what_a_world_cannot_run(monkeypatch, tmp_path, setting, message) -> None:
    if torch.cuda.is_available():
        pytest.skip("on a GPU machine SyncBatchNorm runs")
    monkeypatch.setattr(train.distributed, "current_world", lambda: World(rank=0, size=4))
    with pytest.raises(ConfigError, match=message):
        train.Trainer(TrainConfig(image_size=24, out_dim=8, **setting), LabelledTensors(), None, tmp_path)
