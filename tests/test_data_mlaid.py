"""MLAID on the fake archive of tests/data/mlaid: contract, official split and carved val, errors, download."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from macl.data import ChecksumError, CorruptImageError, DatasetNotFoundError, LabelFileError
from macl.data.mlaid import MLAID

DATA = Path(__file__).parent / "data" / "mlaid"
TRAIN = [f"{scene}_{k}" for scene in ("airport", "beach", "port") for k in range(1, 5)]
TEST = ["airport_5", "beach_5", "port_5"]


@pytest.fixture
def root(tmp_path) -> Path:
    """A writable copy (the carved validation split is stored next to the data)."""
    return Path(shutil.copytree(DATA, tmp_path / "mlaid", ignore=shutil.ignore_patterns("*.py")))


def csv_rows(root: Path) -> list[list[str]]:
    return [line.split(",") for line in (root / "multilabel.csv").read_text().splitlines()]


def test_contract(root) -> None:
    ds = MLAID(root, split="all")
    header, *rows = csv_rows(root)
    assert len(ds) == 15 and ds.classes == tuple(header[1:]) and len(ds.classes) == 17
    assert ds.classes[:3] == ("airplane", "bare-soil", "buildings")
    assert ds.ids == [name.removesuffix(".jpg") for name, *_ in rows]  # named with or without .jpg
    assert (ds.label_matrix == np.array([[int(v) for v in values] for _, *values in rows])).all()
    item = ds[ds.ids.index("airport_3")]
    assert set(item) == {"image", "label", "id"} and item["id"] == "airport_3"
    assert item["image"].dtype == torch.float32 and item["image"].shape == (3, 16, 16)
    assert 0.0 <= item["image"].min() and item["image"].max() <= 1.0
    assert item["label"].dtype == torch.float32 and item["label"].shape == (17,)
    assert (ds.label_counts() == ds.label_matrix.sum(0)).all()
    assert (np.diag(ds.cooccurrence()) == ds.label_counts()).all()
    assert isinstance(ds.plot(item), Figure)


def test_official_split_and_carved_validation(root) -> None:
    parts = {s: MLAID(root, split=s).ids for s in ("train", "val", "test", "trainval")}
    assert sorted(parts["test"]) == TEST
    assert sorted(parts["trainval"]) == sorted(TRAIN)
    assert not set(parts["train"]) & set(parts["val"])
    assert sorted(parts["train"] + parts["val"]) == sorted(TRAIN)
    assert len(parts["val"]) in (2, 3)  # 20 % of 12, stratified
    stored = json.loads((root / "macl_mlaid_val_seed0.json").read_text())
    assert stored["fractions"] == [0.8, 0.2, 0.0] and stored["test"] == []
    assert stored["val"] == parts["val"] and MLAID(root, split="val").ids == parts["val"]  # read back, not redrawn
    assert sorted(MLAID(root, split="val", split_seed=1).ids + MLAID(root, split="train", split_seed=1).ids) == sorted(
        TRAIN
    )
    assert (root / "macl_mlaid_val_seed1.json").is_file()


def test_names_with_extension_give_the_same_labels(root) -> None:
    before = MLAID(root, split="all")
    text = (root / "multilabel.csv").read_text().splitlines()
    rows = [line if line.split(",")[0].endswith(".jpg") else line.replace(",", ".jpg,", 1) for line in text[1:]]
    (root / "multilabel.csv").write_text("\n".join([text[0], *rows]) + "\n")
    after = MLAID(root, split="all")
    assert after.ids == before.ids and (after.label_matrix == before.label_matrix).all()


def replace_line(root: Path, index: int, line: str | None) -> None:
    lines = (root / "multilabel.csv").read_text().splitlines()
    if line is None:
        del lines[index]
    else:
        lines[index] = line
    (root / "multilabel.csv").write_text("\n".join(lines) + "\n")


def test_label_file_and_folders_must_agree(root) -> None:
    original = (root / "multilabel.csv").read_text()
    zeros = ",0" * 17
    replace_line(root, 2, "nowhere_9" + zeros)
    with pytest.raises(LabelFileError, match=r"multilabel\.csv, line 3: image 'nowhere_9' is in neither image folder"):
        MLAID(root, split="all")
    (root / "multilabel.csv").write_text(original)
    replace_line(root, 2, "airport_1.jpg" + zeros)
    with pytest.raises(LabelFileError, match=r"line 3: image 'airport_1' has a row already"):
        MLAID(root, split="all")
    (root / "multilabel.csv").write_text(original)
    replace_line(root, 5, None)
    with pytest.raises(LabelFileError, match=r"multilabel\.csv: 1 image\(s\) have no row here, such as .*beach_1\.jpg"):
        MLAID(root, split="all")
    (root / "multilabel.csv").write_text(original)
    replace_line(root, 4, "airport_4" + ",2" + ",0" * 16)
    with pytest.raises(LabelFileError, match=r"line 5: label 'airplane' is '2'; expected 0 or 1"):
        MLAID(root, split="all")


def test_image_in_both_folders(root) -> None:
    shutil.copy(root / "images_tr" / "beach" / "beach_1.jpg", root / "images_test" / "beach")
    with pytest.raises(ValueError, match=r"'beach_1' is in both"):
        MLAID(root, split="all")


def test_corrupt_image_raises_or_is_skipped(root) -> None:
    bad = root / "images_test" / "port" / "port_5.jpg"
    bad.write_bytes(b"not a jpeg")
    with pytest.raises(CorruptImageError, match=r"port_5\.jpg"):
        MLAID(root, split="test")[TEST.index("port_5")]
    skipping = MLAID(root, split="test", on_bad="skip")
    assert skipping.ids == ["airport_5", "beach_5"] and skipping.skipped[0][0] == bad


def test_missing_root_says_what_to_put_there(tmp_path) -> None:
    with pytest.raises(
        DatasetNotFoundError, match=r"ML-AID not found in .*nowhere: expected images_tr/<scene>/\*\.jpg"
    ):
        MLAID(tmp_path / "nowhere")
    with pytest.raises(DatasetNotFoundError, match=r"no direct download, .*Hua-YS/AID-Multilabel-Dataset"):
        MLAID(tmp_path / "nowhere", download=True)


def zip_archive(source: Path, target: Path) -> Path:
    """The archive's files in a zip, at its top level (as download=True expects it)."""
    return Path(shutil.make_archive(str(target.with_suffix("")), "zip", root_dir=source))


def test_download_from_a_local_zip(root, tmp_path, monkeypatch) -> None:
    archive = zip_archive(root, tmp_path / "mlaid.zip")
    md5 = hashlib.md5(archive.read_bytes()).hexdigest()
    monkeypatch.setattr(MLAID, "URL", archive.as_uri())
    monkeypatch.setattr(MLAID, "CHECKSUM", f"md5:{md5}")
    ds = MLAID(tmp_path / "fresh", split="test", download=True, checksum=True)
    assert sorted(ds.ids) == TEST
    monkeypatch.setattr(MLAID, "URL", (tmp_path / "absent.zip").as_uri())
    assert len(MLAID(tmp_path / "fresh", split="all", download=True)) == 15  # present: nothing fetched


def test_download_checksum_mismatch_leaves_nothing(root, tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(MLAID, "URL", zip_archive(root, tmp_path / "mlaid.zip").as_uri())
    monkeypatch.setattr(MLAID, "CHECKSUM", "md5:" + "0" * 32)
    target = tmp_path / "fresh"
    with pytest.raises(ChecksumError, match="expected 0000"):
        MLAID(target, download=True, checksum=True)
    assert list(target.iterdir()) == []  # no partial or unverified file
    assert len(MLAID(target, split="all", download=True, checksum=False)) == 15  # checksum=False: not verified
