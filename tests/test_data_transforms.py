"""Augmentations, multi-view batches and the decoded-image cache."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from macl.data.cache import CachedArchive, ResizedArchive
from macl.data.transforms import MultiView, RandomRotate90, Transformed, train_augmentation, views_to_batch
from tiny_archive import TinyArchive, write_tiny_archive


@pytest.fixture
def dataset(tmp_path):
    write_tiny_archive(tmp_path / "a", n=12, size=20)
    return TinyArchive(tmp_path / "a", split="all")


def test_multiview_train_augmentation_shapes_and_diversity(dataset) -> None:
    torch.manual_seed(0)
    sample = MultiView(train_augmentation(16), n_views=3)(dataset[0])
    assert sample["image"].shape == (3, 3, 16, 16)
    assert torch.equal(sample["label"], dataset[0]["label"]) and sample["id"] == "img000"
    assert not torch.equal(sample["image"][0], sample["image"][1])
    assert 0 <= sample["image"].min() and sample["image"].max() <= 1


def test_rotate90_is_exact() -> None:
    image = torch.arange(2 * 4 * 4, dtype=torch.float).reshape(2, 4, 4)
    seen = set()
    for seed in range(40):
        torch.manual_seed(seed)
        out = RandomRotate90()(image)
        seen.add(tuple(out[0, 0].tolist()))
        assert sorted(out.flatten().tolist()) == sorted(image.flatten().tolist())
    assert len(seen) == 4  # all four orientations occur


def test_views_to_batch_is_view_major() -> None:
    images = torch.arange(2 * 3).float().reshape(2, 3, 1, 1, 1).expand(2, 3, 3, 2, 2)
    labels = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    flat, flat_labels = views_to_batch(images, labels)
    assert flat.shape == (6, 3, 2, 2)
    assert flat[:, 0, 0, 0].tolist() == [0, 3, 1, 4, 2, 5]  # view 0 of images 0,1, then view 1, ...
    assert torch.equal(flat_labels, labels.repeat(3, 1))


def test_dataloader_collates_views(dataset) -> None:
    dataset.transforms = MultiView(train_augmentation(8))
    batch = next(iter(DataLoader(dataset, batch_size=4)))
    assert batch["image"].shape == (4, 2, 3, 8, 8) and batch["label"].shape == (4, 4)


@pytest.mark.parametrize("on_disk", [False, True])
def test_cache_serves_the_resized_images(dataset, tmp_path, on_disk) -> None:
    folder = tmp_path / "cache" if on_disk else None
    cached = CachedArchive(dataset, size=10, folder=folder)
    direct = ResizedArchive(dataset, size=10)[5]  # one image at a time: the same tensor, bit for bit
    item = cached[5]
    assert item["id"] == direct["id"] and torch.equal(item["label"], direct["label"])
    assert torch.equal(item["image"], direct["image"]) and item["image"].shape == (3, 10, 10)
    assert 0 <= item["image"].min() and item["image"].max() <= 1
    assert cached.classes == dataset.classes and (cached.label_counts() == dataset.label_counts()).all()
    if on_disk:
        files = list(folder.glob("*.npy"))
        assert len(files) == 1 and isinstance(cached.images, np.memmap)
        again = CachedArchive(dataset, size=10, folder=folder)  # reused, not rebuilt
        assert np.array_equal(np.asarray(again.images), np.asarray(cached.images))
        assert not list(folder.glob(".*"))  # no temporary left behind


def test_transformed_wraps_without_touching_the_dataset(dataset) -> None:
    before = dataset.transforms
    views = Transformed(CachedArchive(dataset, size=12), MultiView(train_augmentation(8), n_views=3))
    assert views[2]["image"].shape == (3, 3, 8, 8) and views[2]["id"] == dataset.ids[2]
    assert len(views) == len(dataset) and views.classes == dataset.classes and views.ids == dataset.ids
    assert dataset.transforms is before
