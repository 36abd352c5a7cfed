"""The dataset contract, image decoding and the stored seeded split, on a tiny archive of real PNG files."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure
from PIL import Image

from macl.data import CorruptImageError, read_image
from macl.data.plotting import plot_grid
from macl.data.splits import stratified_split
from tiny_archive import CLASSES, TinyArchive, write_tiny_archive


@pytest.fixture
def archive_root(tmp_path):
    root = tmp_path / "tiny"
    write_tiny_archive(root)
    return root


def test_item_contract(archive_root) -> None:
    ds = TinyArchive(archive_root, split="all")
    item = ds[3]
    assert set(item) == {"image", "label", "id"}
    assert item["image"].dtype == torch.float32 and item["image"].shape == (3, 20, 20)
    assert 0.0 <= item["image"].min() and item["image"].max() <= 1.0
    assert item["label"].dtype == torch.float32 and item["label"].shape == (len(CLASSES),)
    assert item["id"] == "img003"
    assert ds.classes == CLASSES
    assert (ds.label_counts() == ds.label_matrix.sum(0)).all()
    co = ds.cooccurrence()
    assert (np.diag(co) == ds.label_counts()).all() and (co == co.T).all()
    assert "TinyArchive" in repr(ds) and "images=24" in repr(ds)


def test_seeded_split_is_written_once_and_reused(archive_root) -> None:
    parts = {s: TinyArchive(archive_root, split=s) for s in ("train", "val", "test")}
    ids = {s: set(d.ids) for s, d in parts.items()}
    assert not (ids["train"] & ids["val"]) and not (ids["train"] & ids["test"]) and not (ids["val"] & ids["test"])
    assert sum(map(len, ids.values())) == 24
    assert set(TinyArchive(archive_root, split="trainval").ids) == ids["train"] | ids["val"]
    stored = archive_root / "macl_split_seed0.json"
    assert json.loads(stored.read_text())["train"] == sorted(ids["train"], key=parts["train"].ids.index)
    stored.write_text(json.dumps({"train": ["img000"], "val": [], "test": []}))
    with pytest.raises(ValueError, match="delete the file"):
        TinyArchive(archive_root, split="train")
    assert TinyArchive(archive_root, split="train", split_seed=1).split_seed == 1  # a new seed, a new file


def test_stratified_split_keeps_rare_labels_in_every_split() -> None:
    rng = np.random.default_rng(0)
    labels = (rng.random((300, 5)) < [0.5, 0.3, 0.1, 0.04, 0.03]).astype(np.uint8)
    assignment = stratified_split(labels, (0.6, 0.2, 0.2), seed=3)
    for k, share in enumerate((0.6, 0.2, 0.2)):
        part = labels[assignment == k]
        assert abs(len(part) / 300 - share) < 0.02
        assert (part.sum(0) > 0).all(), "every label, even a 3% one, reaches every split"
    assert (stratified_split(labels, (0.6, 0.2, 0.2), seed=3) == assignment).all()


def test_bad_split_name(archive_root) -> None:
    with pytest.raises(ValueError, match="split must be one of"):
        TinyArchive(archive_root, split="training")


@pytest.mark.parametrize(
    ("mode", "array"),
    [
        ("L", np.full((7, 9), 200, np.uint8)),
        ("RGBA", np.full((7, 9, 4), 100, np.uint8)),
        ("I;16", np.full((7, 9), 65535, np.uint16)),
        ("P", np.full((7, 9), 3, np.uint8)),
    ],
)
def test_unusual_images_are_converted(tmp_path, mode, array) -> None:
    path = tmp_path / "odd.png"
    image = Image.fromarray(array)
    (image.convert("P") if mode == "P" else image).save(path)
    image = read_image(path)
    assert image.dtype == torch.uint8 and image.shape == (3, 7, 9)
    if mode == "I;16":
        assert int(image.max()) == 255  # rescaled from 16 bit, not clipped garbage


def test_corrupt_image_names_the_file(archive_root) -> None:
    bad = archive_root / "img005.png"
    bad.write_bytes(bad.read_bytes()[:60])  # truncated
    ds = TinyArchive(archive_root, split="all")
    with pytest.raises(CorruptImageError, match=r"img005\.png"):
        ds[5]
    skipping = TinyArchive(archive_root, split="all", on_bad="skip")
    assert len(skipping) == 23 and "img005" not in skipping.ids
    assert [p.name for p, _ in skipping.skipped] == ["img005.png"]


def test_plots_return_figures(archive_root) -> None:
    ds = TinyArchive(archive_root, split="all")
    fig = ds.plot({**ds[0], "prediction": ds[1]["label"]}, suptitle="sample")
    assert isinstance(fig, Figure)
    assert isinstance(plot_grid(ds, [0, 1, 2, 3, 4], ncols=3), Figure)
