"""DLRSD in both layouts (original masks + .xlsx, torchgeo's .tif + .csv), labels from masks, errors, download.

The fake archives in tests/data/dlrsd (written by its make_fake.py) are copied to a temporary folder by
every test that writes (DLRSD has no official split, so any split but 'all' stores a seeded one) or breaks
something; the committed files are never modified.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure
from openpyxl import load_workbook
from PIL import Image

from macl.data import ChecksumError, CorruptImageError, DatasetNotFoundError, LabelFileError
from macl.data.dlrsd import DLRSD, DLRSD_CLASSES

FAKE = Path(__file__).parent / "data" / "dlrsd"
N_FAKE = 9
XLSX = "DLRSD/multi-labels.xlsx"
CSV = "DLRSD/multilabels.csv"


def copy_layout(tmp_path: Path, layout: str) -> Path:
    target = tmp_path / layout
    shutil.copytree(FAKE / layout, target)
    return target


@pytest.fixture
def original(tmp_path: Path) -> Path:
    return copy_layout(tmp_path, "original")


@pytest.fixture
def torchgeo(tmp_path: Path) -> Path:
    return copy_layout(tmp_path, "torchgeo")


def labels_by_id(ds: DLRSD) -> dict[str, list[int]]:
    return dict(zip(ds.ids, ds.label_matrix.tolist(), strict=True))


def set_xlsx_cell(root: Path, row: int, column: int, value: object) -> None:
    workbook = load_workbook(root / XLSX)
    workbook.active.cell(row=row, column=column, value=value)
    workbook.save(root / XLSX)


# --- the contract and the layouts ---------------------------------------------------------------------
@pytest.mark.parametrize("layout", ["original", "torchgeo"])
def test_items_classes_and_statistics(layout: str) -> None:
    ds = DLRSD(FAKE / layout, split="all")
    assert len(ds) == N_FAKE and ds.classes == DLRSD_CLASSES and ds.classes[1] == "bare soil"
    item = ds[4]
    assert set(item) == {"image", "label", "id"} and item["id"] == "airplane01"
    assert item["image"].dtype == torch.float32 and item["image"].shape == (3, 16, 16)
    assert 0.0 <= float(item["image"].min()) and float(item["image"].max()) <= 1.0
    assert item["label"].dtype == torch.float32 and item["label"].shape == (17,)
    assert set(item["label"].unique().tolist()) <= {0.0, 1.0}
    assert (ds.label_counts() == ds.label_matrix.sum(0)).all()
    co = ds.cooccurrence()
    assert (np.diag(co) == ds.label_counts()).all() and (co == co.T).all()
    assert isinstance(ds.plot(item), Figure)
    assert repr(ds) == f"DLRSD(root={str(FAKE / layout)!r}, split='all', images=9, labels=17)"


def test_both_layouts_and_the_masks_agree(original: Path) -> None:
    from_xlsx = DLRSD(original, split="all")
    from_csv = DLRSD(FAKE / "torchgeo", split="all")
    assert from_xlsx.label_source == original / XLSX and from_csv.label_source == FAKE / "torchgeo" / CSV
    assert from_xlsx.paths[0].parts[-4:-2] == ("UCMerced_LandUse", "Images"), "RGB from UC Merced, not the masks"
    assert labels_by_id(from_xlsx) == labels_by_id(from_csv)
    (original / XLSX).unlink()
    from_masks = DLRSD(original, split="all")
    assert from_masks.label_source == original / "DLRSD/Images"
    assert labels_by_id(from_masks) == labels_by_id(from_xlsx)


def test_spreadsheet_takes_precedence_over_masks(original: Path) -> None:
    assert DLRSD(original, split="all").label_matrix[0, 0] == 0
    set_xlsx_cell(original, row=2, column=2, value=1)  # agricultural00 gets 'airplane'
    assert DLRSD(original, split="all").label_matrix[0, 0] == 1


def test_min_pixel_fraction_drops_specks(original: Path) -> None:
    (original / XLSX).unlink()
    tanks = DLRSD_CLASSES.index("tanks")
    assert labels_by_id(DLRSD(original, split="all"))["airplane01"][tanks] == 1  # one pixel of 256
    thresholded = DLRSD(original, split="all", min_pixel_fraction=0.01)
    assert labels_by_id(thresholded)["airplane01"][tanks] == 0
    assert thresholded.label_matrix.sum(1).min() >= 1, "the bands (≥ 1/16 of a tile) stay"
    with pytest.raises(ValueError, match="min_pixel_fraction"):
        DLRSD(original, min_pixel_fraction=1.5)


def test_label_columns_matched_by_name_in_any_order(torchgeo: Path) -> None:
    rows = [line.split(",") for line in (torchgeo / CSV).read_text().splitlines()]
    reordered = [[row[0], *row[:0:-1]] for row in rows]  # label columns reversed
    reordered[0][1:] = [name.upper() for name in reordered[0][1:]]  # and spelled WATER, …, MOBILEHOME
    (torchgeo / CSV).write_text("\n".join(",".join(row) for row in reordered) + "\n")
    assert labels_by_id(DLRSD(torchgeo, split="all")) == labels_by_id(DLRSD(FAKE / "torchgeo", split="all"))


def test_seeded_split_is_written_and_reused(torchgeo: Path) -> None:
    parts = {s: DLRSD(torchgeo, split=s).ids for s in ("train", "val", "test")}
    everything = sorted(i for ids in parts.values() for i in ids)
    assert everything == sorted(DLRSD(torchgeo, split="all").ids)
    stored = torchgeo / "macl_split_seed0.json"
    assert json.loads(stored.read_text())["train"] == parts["train"]
    assert set(DLRSD(torchgeo, split="trainval").ids) == set(parts["train"]) | set(parts["val"])
    stored.write_text(json.dumps({"train": everything[:1], "val": everything[1:2], "test": everything[2:]}))
    assert DLRSD(torchgeo, split="train").ids == everything[:1], "the stored split is read back, not redrawn"


def test_split_dir_reaches_the_base(torchgeo: Path, tmp_path: Path) -> None:
    splits = tmp_path / "splits"
    ds = DLRSD(torchgeo, "test", split_seed=2, split_dir=splits)
    assert json.loads((splits / "macl_split_seed2.json").read_text())["test"] == ds.ids
    assert not list(torchgeo.glob("macl_split_*.json"))


# --- bad archives ------------------------------------------------------------------------------------------
def test_missing_root_names_it_and_both_layouts(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError) as err:
        DLRSD(tmp_path / "nowhere")
    message = str(err.value)
    assert str((tmp_path / "nowhere").resolve()) in message
    assert CSV in message and XLSX in message and "UCMerced_LandUse/Images" in message and "download=True" in message


def test_original_layout_without_the_rgb_images(original: Path) -> None:
    shutil.rmtree(original / "UCMerced_LandUse")
    with pytest.raises(DatasetNotFoundError, match=r"UC Merced RGB images in UCMerced_LandUse/Images"):
        DLRSD(original, split="all")


def test_torchgeo_folder_without_its_csv_is_not_taken_for_masks(torchgeo: Path) -> None:
    (torchgeo / CSV).unlink()
    with pytest.raises(DatasetNotFoundError, match=r"DLRSD/multilabels\.csv"):
        DLRSD(torchgeo, split="all")


def test_corrupt_image_raises_at_read_or_is_skipped(torchgeo: Path) -> None:
    bad = torchgeo / "DLRSD/Images/harbor/harbor01.tif"
    bad.write_bytes(b"not an image at all")
    ds = DLRSD(torchgeo, split="all")
    with pytest.raises(CorruptImageError, match=r"harbor01\.tif"):
        ds[ds.ids.index("harbor01")]
    skipping = DLRSD(torchgeo, split="all", on_bad="skip")
    assert len(skipping) == N_FAKE - 1 and [p.name for p, _ in skipping.skipped] == ["harbor01.tif"]


def test_label_row_without_image_and_image_without_row(torchgeo: Path, original: Path) -> None:
    (torchgeo / "DLRSD/Images/airplane/airplane02.tif").unlink()
    with pytest.raises(LabelFileError, match=r"multilabels\.csv, line 7: no image .*airplane02"):
        DLRSD(torchgeo, split="all")
    (original / "UCMerced_LandUse/Images/harbor/harbor03.png").write_bytes(b"")  # not listed in the .xlsx
    with pytest.raises(LabelFileError, match=r"multi-labels\.xlsx: 1 image\(s\) are not listed here.*harbor03"):
        DLRSD(original, split="all")


def test_mask_without_rgb_image_names_the_mask(original: Path) -> None:
    (original / XLSX).unlink()
    (original / "UCMerced_LandUse/Images/harbor/harbor00.tif").unlink()
    with pytest.raises(LabelFileError, match=r"harbor00\.png: no image .*UCMerced_LandUse/Images/harbor/harbor00"):
        DLRSD(original, split="all")


@pytest.mark.parametrize(
    ("cell", "value", "message"),
    [
        ((5, 3), 7, r"line 5: label 'bare soil' is '7'; expected 0 or 1"),
        ((5, 3), "yes", r"line 5: label 'bare soil' is 'yes'"),
        ((1, 3), "soil", r"line 1: label columns .* expected these 17"),
        ((4, 1), "agricultural00", r"line 4: image 'agricultural00' already has a row on line 2"),
    ],
    ids=["value-7", "value-text", "unknown-label", "duplicate-image"],
)
def test_malformed_spreadsheet_names_file_and_row(original: Path, cell, value, message: str) -> None:
    set_xlsx_cell(original, *cell, value)
    with pytest.raises(LabelFileError, match=rf"multi-labels\.xlsx, {message}"):
        DLRSD(original, split="all")


def test_unreadable_spreadsheet(original: Path) -> None:
    (original / XLSX).write_bytes(b"PK\x03\x04 not really a workbook")
    with pytest.raises(LabelFileError, match=r"multi-labels\.xlsx: not a readable \.xlsx workbook"):
        DLRSD(original, split="all")


@pytest.mark.parametrize(
    ("array", "error", "message"),
    [
        (np.full((16, 16), 18, np.uint8), LabelFileError, r"pixel value 18 is not a class index"),
        (np.zeros((16, 16, 3), np.uint8), LabelFileError, r"mask has mode RGB"),
        (None, CorruptImageError, r"cannot read image"),
    ],
    ids=["index-18", "rgb-mask", "truncated"],
)
def test_bad_masks_are_named(original: Path, array, error: type[Exception], message: str) -> None:
    (original / XLSX).unlink()
    mask = original / "DLRSD/Images/airplane/airplane00.png"
    if array is None:
        mask.write_bytes(mask.read_bytes()[:30])
    else:
        Image.fromarray(array).save(mask)
    with pytest.raises(error, match=rf"{message}") as err:
        DLRSD(original, split="all")
    assert "airplane00.png" in str(err.value)


# --- download ----------------------------------------------------------------------------------------------------
@pytest.fixture
def mirror(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """torchgeo's DLRSD.zip rebuilt from the fake, with DLRSD.URL and DLRSD.CHECKSUM pointing at it."""
    folder = tmp_path / "mirror"
    folder.mkdir()
    archive = Path(shutil.make_archive(str(folder / "DLRSD"), "zip", FAKE / "torchgeo", "DLRSD"))
    monkeypatch.setattr(DLRSD, "URL", archive.as_uri())
    monkeypatch.setattr(DLRSD, "CHECKSUM", "sha256:" + hashlib.sha256(archive.read_bytes()).hexdigest())
    return folder


def test_download_from_a_file_url(tmp_path: Path, mirror: Path) -> None:
    ds = DLRSD(tmp_path / "data", split="all", download=True, checksum=True)
    assert ds.label_source == tmp_path / "data" / CSV
    assert labels_by_id(ds) == labels_by_id(DLRSD(FAKE / "torchgeo", split="all"))


def test_download_checksum_mismatch_leaves_nothing(
    tmp_path: Path, mirror: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(DLRSD, "CHECKSUM", "sha256:" + "f" * 64)
    target = tmp_path / "data"
    with pytest.raises(ChecksumError, match="expected ffff"):
        DLRSD(target, split="all", download=True, checksum=True)
    assert not any(target.iterdir()), "no archive and no partial file are left behind"
