"""The synthetic aerial archive: determinism, the dataset contract, label statistics, visible labels, caching."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from macl.data.plotting import example_indices, plot_examples
from macl.data.synthetic import (
    CLASSES,
    RENDER_VERSION,
    SyntheticAerial,
    SyntheticArchive,
    default_min_pixels,
    labels_from_class_map,
    load_or_render,
    render,
    render_archive,
    render_tile,
)

C = {name: k for k, name in enumerate(CLASSES)}


@pytest.fixture(scope="module")
def big() -> SyntheticArchive:
    """2000 tiles of 32 px: enough for label statistics, about three seconds to render."""
    return render_archive(2000, 32, seed=0)


def test_same_seed_same_archive_and_any_tile_regenerates_alone() -> None:
    a, b = render_archive(30, 32, seed=5), render_archive(30, 32, seed=5)
    assert np.array_equal(a.images, b.images) and np.array_equal(a.labels, b.labels)
    image, class_map = render_tile(17, 32, seed=5)
    assert np.array_equal(image, a.images[17]) and np.array_equal(class_map, a.class_maps[17])
    other = render_archive(30, 32, seed=6)
    assert not np.array_equal(a.images, other.images)
    assert not np.array_equal(a.labels, other.labels)


@pytest.mark.parametrize("size", [32, 48, 96, 256])
def test_tile_sizes(size: int) -> None:
    image, class_map = render_tile(3, size, seed=0)
    assert image.shape == (3, size, size) and image.dtype == np.uint8
    assert class_map.shape == (size, size) and class_map.dtype == np.uint8
    assert class_map.max() < len(CLASSES)


def test_item_contract() -> None:
    seen: list[dict] = []

    def transform(sample: dict) -> dict:
        seen.append(sample)
        return sample

    ds = SyntheticAerial(num_images=60, image_size=32, split="all", transforms=transform)
    assert len(ds) == 60 and ds.classes == CLASSES
    item = ds[7]
    assert seen and set(item) == {"image", "label", "id"}
    assert item["image"].dtype == torch.float32 and item["image"].shape == (3, 32, 32)
    assert 0.0 <= item["image"].min() and item["image"].max() <= 1.0
    assert item["label"].dtype == torch.float32 and item["label"].shape == (len(CLASSES),)
    assert set(item["label"].unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(item["label"], torch.from_numpy(ds.label_matrix[7].astype(np.float32)))
    assert item["id"] == "syn00007" and ds.paths[7].name == "syn00007"
    raw = ds.read(7)
    assert raw.dtype == torch.uint8 and torch.equal(raw.float() / 255, item["image"])
    raw.zero_()  # the archive is shared: a caller's edit must not reach it
    assert ds.read(7).any()
    assert ds.class_map(7).shape == (32, 32)
    assert "SyntheticAerial" in repr(ds) and "images=60" in repr(ds)


def test_long_tail(big: SyntheticArchive) -> None:
    freq = big.labels.mean(0)
    assert (freq < 0.05).sum() >= 3, dict(zip(CLASSES, freq.round(3), strict=True))
    assert (freq > 0.40).sum() >= 2, dict(zip(CLASSES, freq.round(3), strict=True))
    for name in ("grass", "trees", "pavement"):
        assert freq[C[name]] > 0.40, name
    for name in ("ship", "airplane", "tanks", "court", "dock"):
        assert 0.01 < freq[C[name]] < 0.05, name  # rare, yet present enough to be evaluated
    assert big.labels.sum(1).min() >= 1  # every tile shows something


def test_cooccurrence_rules(big: SyntheticArchive) -> None:
    has = {name: big.labels[:, k].astype(bool) for name, k in C.items()}
    assert not (has["ship"] & ~has["water"]).any()
    assert not (has["dock"] & ~has["water"]).any()
    assert not (has["airplane"] & ~has["pavement"]).any()
    assert not (has["cars"] & ~(has["road"] | has["pavement"])).any()
    # buildings stand by a road or pavement (UCM's 'pavement' includes roads) far more often than not
    assert (has["buildings"] & (has["road"] | has["pavement"])).sum() > 0.85 * has["buildings"].sum()


def test_labels_are_the_visible_classes(big: SyntheticArchive) -> None:
    min_pixels = default_min_pixels(32)
    counts = np.stack([np.bincount(m.ravel(), minlength=len(CLASSES)) for m in big.class_maps])
    assert np.array_equal(big.labels, (counts >= min_pixels).astype(np.uint8))
    assert not (big.labels.astype(bool) & (counts == 0)).any()
    # some objects are cropped or hidden down to a few pixels, and those are not labelled
    assert ((counts > 0) & (counts < min_pixels)).any()


def test_labels_from_class_map_counts_pixels() -> None:
    class_map = np.full((8, 8), C["water"], np.uint8)
    class_map[0, 0] = C["ship"]
    assert labels_from_class_map(class_map, 2)[C["ship"]] == 0  # one pixel of boat is not a boat
    class_map[0, 1] = C["ship"]
    labels = labels_from_class_map(class_map, 2)
    assert labels[C["ship"]] == 1 and labels[C["water"]] == 1 and labels.sum() == 2
    stacked = labels_from_class_map(np.stack([class_map, np.full((8, 8), C["sand"], np.uint8)]), 2)
    assert stacked.shape == (2, len(CLASSES)) and stacked[1, C["sand"]] == 1 and stacked[1].sum() == 1


def test_rare_objects_stand_out_from_what_they_sit_on(big: SyntheticArchive) -> None:
    """Labels are painted, not only recorded: a boat of a few pixels differs in colour from its water."""
    for obj, ground in ((C["ship"], [C["water"]]), (C["airplane"], [C["pavement"]])):
        for i in np.flatnonzero(big.labels[:, obj]):
            class_map, image = big.class_maps[i], big.images[i].astype(np.float32) / 255
            if (class_map == obj).sum() < 6:
                continue
            diff = np.abs(image[:, class_map == obj].mean(1) - image[:, np.isin(class_map, ground)].mean(1))
            assert diff.max() > 0.05, (CLASSES[obj], i)


def test_splits_are_deterministic_disjoint_and_stratified() -> None:
    parts = {s: SyntheticAerial(num_images=300, image_size=32, split=s) for s in ("train", "val", "test")}
    ids = {s: set(d.ids) for s, d in parts.items()}
    assert not (ids["train"] & ids["val"]) and not (ids["train"] & ids["test"]) and not (ids["val"] & ids["test"])
    assert sum(map(len, ids.values())) == 300
    for name, share in (("train", 0.6), ("val", 0.2), ("test", 0.2)):
        assert abs(len(ids[name]) / 300 - share) < 0.03
    assert set(SyntheticAerial(num_images=300, image_size=32, split="trainval").ids) == ids["train"] | ids["val"]
    assert SyntheticAerial(num_images=300, image_size=32, split="train").ids == parts["train"].ids
    assert SyntheticAerial(num_images=300, image_size=32, split="train", seed=1).ids != parts["train"].ids
    train = parts["train"]
    tile = int(train.ids[5].removeprefix("syn"))
    assert np.array_equal(train.read(5).numpy(), render_tile(tile, 32, seed=0)[0])


def test_nothing_is_written_without_root(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    SyntheticAerial(num_images=20, image_size=32, split="train", download=True)
    assert list(tmp_path.iterdir()) == []


def test_root_cache_round_trip(tmp_path, monkeypatch) -> None:
    root = tmp_path / "cache"
    in_memory = SyntheticAerial(num_images=25, image_size=32, split="all")
    first = SyntheticAerial(root, num_images=25, image_size=32, split="all")  # written although in memory
    assert first.archive is in_memory.archive
    stem = "synthetic-25x32px-seed0-min2"
    names = sorted(p.name for p in root.iterdir())
    assert names == sorted(f"{stem}.{part}" for part in ("json", "images.npy", "class_maps.npy", "labels.npy"))
    manifest = json.loads((root / f"{stem}.json").read_text())
    assert manifest["num_images"] == 25 and manifest["classes"] == list(CLASSES)

    render._ARCHIVES.clear()  # forget the in-process copy: the next one must come from disk

    def no_render(*args: object, **kwargs: object) -> None:
        raise AssertionError("rendered again although the cache matches")

    monkeypatch.setattr(render, "render_archive", no_render)
    again = SyntheticAerial(root, num_images=25, image_size=32, split="all")
    assert np.array_equal(again.label_matrix, first.label_matrix)
    assert torch.equal(again.read(3), first.read(3))
    monkeypatch.undo()

    # a cache written by another renderer version is rendered again and overwritten
    render._ARCHIVES.clear()
    manifest["render_version"] = -1
    (root / f"{stem}.json").write_text(json.dumps(manifest))
    rendered: list[int] = []
    real = render.render_archive

    def counting(*args: object, **kwargs: object) -> SyntheticArchive:
        rendered.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(render, "render_archive", counting)
    SyntheticAerial(root, num_images=25, image_size=32, split="all")
    assert rendered == [1]
    assert json.loads((root / f"{stem}.json").read_text())["render_version"] == RENDER_VERSION
    assert len(list(root.iterdir())) == 4  # temporary files were renamed, none left behind


def test_archive_is_shared_between_splits() -> None:
    train = SyntheticAerial(num_images=40, image_size=32, split="train")
    test = SyntheticAerial(num_images=40, image_size=32, split="test")
    assert train.archive is test.archive
    assert load_or_render(40, 32, 0, default_min_pixels(32)) is train.archive


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"image_size": 16}, ValueError, "between 32 and 512"),
        ({"image_size": 1024}, ValueError, "between 32 and 512"),
        ({"image_size": 64.0}, TypeError, "image_size must be an int"),
        ({"image_size": True}, TypeError, "image_size must be an int"),
        ({"num_images": 0}, ValueError, "at least 1"),
        ({"num_images": 2.5}, TypeError, "num_images must be an int"),
        ({"min_pixels": 0}, ValueError, "min_pixels"),
        ({"split": "everything"}, ValueError, "split must be one of"),
        ({"fractions": (0.5, 0.5, 0.5)}, ValueError, "fractions"),
        ({"on_bad": "skip"}, ValueError, "on_bad='skip' is not offered"),
        ({"split_seed": 1}, TypeError, "split_seed"),
    ],
)
def test_invalid_arguments(kwargs: dict, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        SyntheticAerial(**{"num_images": 10, "image_size": 32, **kwargs})


def test_sample_sheet_shows_every_label(big: SyntheticArchive) -> None:
    chosen = example_indices(big.labels, 16)
    assert len(chosen) == 16 == len(set(chosen))
    assert big.labels[chosen].any(0).all()
    ds = SyntheticAerial(num_images=60, image_size=32, split="all")
    fig = plot_examples(ds, 8, ncols=4)
    assert isinstance(fig, Figure) and len(fig.axes) == 8
