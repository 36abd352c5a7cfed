"""The label-aware batch sampler: oversampling, pair completion, determinism, coverage, ranks, epochs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats
from torch.utils.data import DataLoader

from macl.data.sampler import LabelAwareBatchSampler, RandomBatchSampler, RankSlices
from tiny_archive import TinyArchive, write_tiny_archive

FREQ = np.array([0.5, 0.4, 0.3, 0.05, 0.03, 0.02, 0.01])


@pytest.fixture(scope="module")
def labels() -> np.ndarray:
    return np.random.default_rng(0).random((3000, len(FREQ))) < FREQ


def carriers_per_batch(sampler: LabelAwareBatchSampler, labels: np.ndarray, epochs: int = 3) -> np.ndarray:
    """(batches, C) carriers of each label in each batch over a few epochs."""
    rows = []
    for epoch in range(epochs):
        rows += [labels[b].sum(0) for b in sampler.epoch_batches(epoch)]
    return np.array(rows)


def test_rare_labels_are_drawn_more_often_than_uniform(labels) -> None:
    aware = carriers_per_batch(LabelAwareBatchSampler(labels, 64, kappa=0.5, seed=1), labels)
    uniform = carriers_per_batch(LabelAwareBatchSampler(labels, 64, kappa=0, complete_pairs=False, seed=1), labels)
    for label in (3, 4, 5, 6):  # every label under 10 %
        result = stats.mannwhitneyu(aware[:, label], uniform[:, label], alternative="greater")
        assert result.pvalue < 1e-6, (label, aware[:, label].mean(), uniform[:, label].mean())
    assert aware[:, 0].mean() < uniform[:, 0].mean(), "the commonest label gives way"


def test_pair_completion_leaves_no_lonely_label_where_data_allows(labels) -> None:
    with_pairs = carriers_per_batch(LabelAwareBatchSampler(labels, 64, kappa=0.5, seed=2), labels)
    without = carriers_per_batch(LabelAwareBatchSampler(labels, 64, kappa=0.5, complete_pairs=False, seed=2), labels)
    assert (without == 1).sum() > 20
    assert (with_pairs == 1).sum() == 0


def test_batches_hold_distinct_images_and_are_deterministic(labels) -> None:
    sampler = LabelAwareBatchSampler(labels, 50, seed=7)
    batches = sampler.epoch_batches(4)
    assert all(len(set(b)) == len(b) == 50 for b in batches)
    assert batches == LabelAwareBatchSampler(labels, 50, seed=7).epoch_batches(4)
    assert batches != sampler.epoch_batches(5)


def test_uniform_epoch_covers_every_image_once(labels) -> None:
    sampler = LabelAwareBatchSampler(labels, 64, kappa=0, complete_pairs=False, seed=3)
    seen = [i for batch in sampler for i in batch]
    assert sorted(seen) == list(range(len(labels)))
    assert len(sampler) == int(np.ceil(3000 / 64))


def test_oversampling_epoch_size_is_documented(labels) -> None:
    sampler = LabelAwareBatchSampler(labels, 64, kappa=0.5, seed=3)
    batches = list(sampler)
    assert len(batches) == len(sampler) == int(np.ceil(3000 / 64))
    assert sum(map(len, batches)) == len(batches) * 64


@pytest.mark.parametrize(
    "make", [lambda y: LabelAwareBatchSampler(y, 64, seed=5), lambda y: RandomBatchSampler(len(y), 64, seed=5)]
)
def test_ranks_slice_every_global_batch_and_take_equal_steps(labels, make) -> None:
    """Three processes' slices, concatenated, are the global batches one process draws."""
    whole = make(labels).epoch_batches(0)
    ranks = [list(RankSlices(make(labels), r, 3)) for r in range(3)]
    assert len({len(r) for r in ranks}) == 1 and len(ranks[0]) == len(whole)
    assert all(abs(len(ranks[0][k]) - len(ranks[2][k])) <= 1 for k in range(len(whole)))
    assert [ranks[0][k] + ranks[1][k] + ranks[2][k] for k in range(len(whole))] == whole


def test_a_batch_smaller_than_the_world_is_skipped_by_every_rank() -> None:
    # 10 images in batches of 4: the last batch has 2 images, fewer than 3 processes.
    ranks = [list(RankSlices(RandomBatchSampler(10, 4, seed=1), r, 3)) for r in range(3)]
    assert [len(r) for r in ranks] == [2, 2, 2]
    assert sorted(i for r in ranks for b in r for i in b) == sorted(
        i for b in RandomBatchSampler(10, 4, seed=1).epoch_batches(0)[:2] for i in b
    )


def test_random_batches_are_one_permutation_per_epoch() -> None:
    sampler = RandomBatchSampler(10, 4, seed=2)
    first, second = sampler.epoch_batches(0), sampler.epoch_batches(1)
    assert sorted(i for b in first for i in b) == list(range(10)) and [len(b) for b in first] == [4, 4, 2]
    assert first != second and len(sampler) == 3
    assert [len(b) for b in RandomBatchSampler(10, 4, drop_last=True).epoch_batches(0)] == [4, 4]


@pytest.mark.parametrize(("rank", "world_size"), [(0, 1), (1, 2)])
def test_set_epoch_on_a_fresh_sampler_replays_that_epoch(labels, rank, world_size) -> None:
    """A run resumed at an epoch boundary builds a new sampler and sets the epoch: the same batches."""

    def make() -> RankSlices:
        return RankSlices(LabelAwareBatchSampler(labels, 64, seed=9), rank, world_size)

    running = make()
    epochs = []
    for epoch in range(3):
        running.set_epoch(epoch)
        epochs.append(list(running))
    assert epochs[1] != epochs[2]
    resumed = make()
    resumed.set_epoch(2)
    assert list(resumed) == epochs[2] and len(resumed) == len(epochs[2])


def test_rank_slices_draw_each_epoch_once(labels) -> None:
    """len() and iteration share one draw per epoch; a new epoch draws again."""

    draws: list[int] = []

    class Counting(LabelAwareBatchSampler):
        def epoch_batches(self, epoch: int) -> list[list[int]]:
            draws.append(epoch)
            return super().epoch_batches(epoch)

    slices = RankSlices(Counting(labels, 64, seed=9), 0, 2)
    first = (len(slices), list(slices), len(slices))
    slices.set_epoch(1)
    second = list(slices)
    assert draws == [0, 1]
    assert first[0] == first[2] == len(first[1]) and second != first[1]


def test_works_with_dataloader_workers(tmp_path) -> None:
    write_tiny_archive(tmp_path / "a", n=24)
    ds = TinyArchive(tmp_path / "a", split="all")
    sampler = LabelAwareBatchSampler(ds.label_matrix, 6, seed=0)
    loader = DataLoader(ds, batch_sampler=sampler, num_workers=2)
    batches = [batch["id"] for batch in loader]
    expected = [[ds.ids[i] for i in b] for b in sampler.epoch_batches(0)]
    assert batches == expected
    assert all(isinstance(b, list) for b in batches) and torch.is_tensor(next(iter(loader))["label"])


def test_invalid_arguments() -> None:
    y = np.eye(4, dtype=bool)
    with pytest.raises(ValueError, match="batch_size"):
        LabelAwareBatchSampler(y, 5)
    with pytest.raises(ValueError, match="kappa"):
        LabelAwareBatchSampler(y, 2, kappa=-1)
    with pytest.raises(ValueError, match="rank"):
        RankSlices(LabelAwareBatchSampler(y, 2), rank=2, world_size=2)
