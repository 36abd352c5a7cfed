"""WHDLD on the fake archive of tests/data/whdld: labels derived from masks, the count cache, errors, download."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure
from PIL import Image

import macl.data.whdld as whdld
from macl.data import ChecksumError, CorruptImageError, DatasetNotFoundError, LabelFileError
from macl.data.whdld import CLASSES, WHDLD

DATA = Path(__file__).parent / "data" / "whdld"
EXPECTED = {  # the bands painted by make_fake.py; wh0001's water is a 3-pixel sliver
    "wh0001": {"vegetation", "water"},
    "wh0002": {"building", "road"},
    "wh0003": {"water", "vegetation", "bare soil"},
    "wh0004": {"pavement", "building", "road", "vegetation"},
    "wh0005": {"bare soil"},
    "wh0006": {"water", "building"},
    "wh0007": {"road", "pavement"},  # index-encoded mask
    "wh0008": {"vegetation", "water"},  # palette mask
}


@pytest.fixture
def root(tmp_path) -> Path:
    """A writable copy (the pixel-count cache and the seeded split are stored next to the data)."""
    return Path(shutil.copytree(DATA, tmp_path / "whdld", ignore=shutil.ignore_patterns("*.py")))


def label_sets(ds: WHDLD) -> dict[str, set[str]]:
    return {i: {ds.classes[c] for c in np.flatnonzero(row)} for i, row in zip(ds.ids, ds.label_matrix, strict=True)}


def test_labels_are_the_classes_in_each_mask(root) -> None:
    ds = WHDLD(root, split="all")
    assert ds.classes == CLASSES == ("bare soil", "building", "pavement", "road", "vegetation", "water")
    assert label_sets(ds) == EXPECTED
    item = ds[0]
    assert set(item) == {"image", "label", "id"} and item["id"] == "wh0001"
    assert item["image"].dtype == torch.float32 and item["image"].shape == (3, 16, 16)
    assert 0.0 <= item["image"].min() and item["image"].max() <= 1.0
    assert item["label"].tolist() == [0, 0, 0, 0, 1, 1]
    assert ds.label_counts().tolist() == [2, 3, 2, 3, 4, 4]
    assert (np.diag(ds.cooccurrence()) == ds.label_counts()).all()
    assert isinstance(ds.plot(item), Figure)


def test_min_pixel_fraction(root) -> None:
    assert label_sets(WHDLD(root, split="all", min_pixel_fraction=0.05))["wh0001"] == {"vegetation"}
    quarter = label_sets(WHDLD(root, split="all", min_pixel_fraction=0.3))
    assert quarter["wh0004"] == set()  # four bands of 25 % each: none reaches 30 %
    assert quarter["wh0003"] == EXPECTED["wh0003"]  # bands of 37.5 %, 31.25 %, 31.25 %
    with pytest.raises(ValueError, match="min_pixel_fraction"):
        WHDLD(root, min_pixel_fraction=1.5)


def test_seeded_split(root) -> None:
    parts = {s: set(WHDLD(root, split=s).ids) for s in ("train", "val", "test")}
    assert set().union(*parts.values()) == set(EXPECTED) and sum(map(len, parts.values())) == len(EXPECTED)
    assert (root / "macl_split_seed0.json").is_file()


def test_split_dir_reaches_the_base(root, tmp_path) -> None:
    splits = tmp_path / "splits"
    ds = WHDLD(root, "val", split_dir=splits, min_pixel_fraction=0.05)
    assert ds.split_dir == splits and (splits / "macl_split_seed0.json").is_file()
    assert not (root / "macl_split_seed0.json").exists()


def test_pixel_counts_are_cached_and_follow_the_images(root, monkeypatch) -> None:
    scanned: list[str] = []
    original = whdld.mask_pixel_counts

    def counting(path: Path) -> np.ndarray:
        scanned.append(path.stem)
        return original(path)

    monkeypatch.setattr(whdld, "mask_pixel_counts", counting)
    first = WHDLD(root, split="all")
    assert len(scanned) == 8 and (root / WHDLD.CACHE_FILE).is_file()
    assert (WHDLD(root, split="all").label_matrix == first.label_matrix).all()
    assert WHDLD(root, split="all", min_pixel_fraction=0.05).label_matrix.sum() == first.label_matrix.sum() - 1
    assert len(scanned) == 8  # the second and third constructions read the cache
    shutil.copy(root / "Images" / "wh0005.jpg", root / "Images" / "wh0009.jpg")
    shutil.copy(root / "ImagesPNG" / "wh0005.png", root / "ImagesPNG" / "wh0009.png")
    assert label_sets(WHDLD(root, split="all"))["wh0009"] == {"bare soil"}
    assert scanned[8:] == ["wh0009"]  # a new image: only its mask is scanned, then added to the cache
    (root / "Images" / "wh0009.jpg").unlink()
    assert len(WHDLD(root, split="all")) == 8 and "wh0009" not in (root / WHDLD.CACHE_FILE).read_text()
    (root / WHDLD.CACHE_FILE).write_text("not,a,cache\n")
    assert label_sets(WHDLD(root, split="all")) == EXPECTED and len(scanned) == 17  # unreadable: rebuilt


def paint_pixel(mask: Path, value: tuple[int, int, int] | int) -> None:
    with Image.open(mask) as img:
        pixels = np.array(img)
        mode = img.mode
    pixels[5, 7] = value
    Image.fromarray(pixels, mode=mode).save(mask)


def test_unknown_mask_colour_names_mask_and_colour(root) -> None:
    paint_pixel(root / "ImagesPNG" / "wh0003.png", (1, 2, 3))
    with pytest.raises(LabelFileError, match=r"wh0003\.png: 1 pixels have colour \(1, 2, 3\), which is not in"):
        WHDLD(root, split="all")


def test_unknown_index_value_names_mask_and_value(root) -> None:
    paint_pixel(root / "ImagesPNG" / "wh0007.png", 9)
    with pytest.raises(LabelFileError, match=r"wh0007\.png: 1 pixels have value 9, which is not in the WHDLD index"):
        WHDLD(root, split="all")


def test_missing_or_corrupt_mask(root) -> None:
    mask = root / "ImagesPNG" / "wh0002.png"
    mask.write_bytes(mask.read_bytes()[:50])
    with pytest.raises(CorruptImageError, match=r"wh0002\.png"):
        WHDLD(root, split="all")
    mask.unlink()
    with pytest.raises(LabelFileError, match=r"ImagesPNG/wh0002\.png: the mask of image 'wh0002' is missing"):
        WHDLD(root, split="all")


def test_corrupt_image_raises_or_is_skipped(root) -> None:
    bad = root / "Images" / "wh0004.jpg"
    bad.write_bytes(bad.read_bytes()[:100])
    with pytest.raises(CorruptImageError, match=r"wh0004\.jpg"):
        WHDLD(root, split="all")[3]
    skipping = WHDLD(root, split="all", on_bad="skip")
    assert "wh0004" not in skipping.ids and len(skipping) == 7 and skipping.skipped[0][0] == bad


def test_missing_root_says_what_to_put_there(tmp_path) -> None:
    with pytest.raises(DatasetNotFoundError, match=r"WHDLD not found in .*nowhere: expected Images/whXXXX\.jpg"):
        WHDLD(tmp_path / "nowhere")
    with pytest.raises(DatasetNotFoundError, match="no direct download"):
        WHDLD(tmp_path / "nowhere", download=True)


def zip_archive(source: Path, target: Path) -> Path:
    """The archive's files in a zip, at its top level (as download=True expects it)."""
    return Path(shutil.make_archive(str(target.with_suffix("")), "zip", root_dir=source))


def test_download_from_a_local_zip_and_checksum_mismatch(root, tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(WHDLD, "URL", zip_archive(root, tmp_path / "whdld.zip").as_uri())
    monkeypatch.setattr(WHDLD, "CHECKSUM", "sha256:" + "f" * 64)
    target = tmp_path / "fresh"
    with pytest.raises(ChecksumError, match="expected ffff"):
        WHDLD(target, download=True, checksum=True)
    assert list(target.iterdir()) == []  # no partial or unverified file
    assert label_sets(WHDLD(target, split="all", download=True)) == EXPECTED  # checksum=False: not verified
