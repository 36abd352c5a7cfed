"""FolderArchive on the fake user archive of tests/data/folder: every table format, splits, and bad input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from macl.data import CorruptImageError, DatasetNotFoundError, LabelFileError
from macl.data.folder import FolderArchive

DATA = Path(__file__).parent / "data" / "folder"
IDS = [
    "top.png",
    "tiles/north/n1.jpg",
    "tiles/north/n2.png",
    "tiles/south/s1.jpg",
    "tiles/south/s2.tif",
    "tiles/south/deep/s3.webp",
]
LABELS = {  # as written by make_fake.py
    "top.png": {"water"},
    "tiles/north/n1.jpg": {"trees", "water"},
    "tiles/north/n2.png": {"bare soil"},
    "tiles/south/s1.jpg": set(),
    "tiles/south/s2.tif": {"trees"},
    "tiles/south/deep/s3.webp": {"bare soil", "trees", "water"},
}
TABLES = ["labels.csv", "labels_multihot.tsv", "labels_multihot.csv", "labels_split.csv"]


@pytest.fixture
def root(tmp_path) -> Path:
    """A writable copy (the archive stores its seeded split next to the data)."""
    return Path(shutil.copytree(DATA, tmp_path / "folder"))


def label_sets(ds: FolderArchive) -> dict[str, set[str]]:
    return {i: {ds.classes[c] for c in np.flatnonzero(row)} for i, row in zip(ds.ids, ds.label_matrix, strict=True)}


@pytest.mark.parametrize("table", TABLES)
def test_every_format_reads_the_same_archive(root, table) -> None:
    ds = FolderArchive(root, labels_file=table, split="all")
    assert ds.ids == IDS  # ids are relative paths, whether rows named stems or paths; unlisted.png is ignored
    assert label_sets(ds) == LABELS
    multihot = "multihot" in table
    assert ds.classes == (("bare soil", "ship", "trees", "water") if multihot else ("bare soil", "trees", "water"))
    if multihot:
        assert ds.label_counts()[ds.classes.index("ship")] == 0  # a label no image carries is kept


def test_item_contract_and_statistics(root) -> None:
    ds = FolderArchive(root, split="all")
    item = ds[1]
    assert set(item) == {"image", "label", "id"} and item["id"] == "tiles/north/n1.jpg"
    assert item["image"].dtype == torch.float32 and item["image"].shape == (3, 16, 16)
    assert 0.0 <= item["image"].min() and item["image"].max() <= 1.0
    assert item["label"].dtype == torch.float32 and item["label"].tolist() == [0.0, 1.0, 1.0]
    assert ds.label_counts().tolist() == [2, 3, 3]
    co = ds.cooccurrence()
    assert (np.diag(co) == ds.label_counts()).all() and co[1, 2] == 2  # trees & water: n1, s3
    assert isinstance(ds.plot(item), Figure)


def test_split_column_is_the_split(root) -> None:
    members = {
        s: FolderArchive(root, labels_file="labels_split.csv", split=s).ids
        for s in ("train", "val", "test", "trainval")
    }
    assert members["train"] == IDS[:3] and members["val"] == [IDS[3]] and members["test"] == IDS[4:]
    assert members["trainval"] == IDS[:4]
    assert not (root / "macl_split_seed0.json").exists()


def test_without_split_column_the_seeded_split_is_stored(root) -> None:
    parts = {s: set(FolderArchive(root, split=s).ids) for s in ("train", "val", "test")}
    assert set().union(*parts.values()) == set(IDS) and sum(map(len, parts.values())) == len(IDS)
    stored = json.loads((root / "macl_split_seed0.json").read_text())
    assert {s: set(stored[s]) for s in parts} == parts


def test_base_arguments_reach_the_base(root, tmp_path) -> None:
    """``split_dir`` and ``split_seed`` go through ``**kwargs`` to the base: the split is stored there."""
    splits = tmp_path / "splits"
    ds = FolderArchive(root, "train", split_seed=3, split_dir=splits)
    assert ds.split_dir == splits and ds.split_seed == 3
    stored = json.loads((splits / "macl_split_seed3.json").read_text())
    assert stored["train"] == ds.ids
    assert not list(root.glob("macl_split_*.json"))


def test_absolute_labels_file_and_space_separated_names(root, tmp_path) -> None:
    table = tmp_path / "elsewhere.tsv"
    table.write_text("image\tlabels\ntop\twater  trees\nn1\t\ntiles/south/s2\ttrees\n")
    ds = FolderArchive(root, labels_file=table.resolve(), split="all")
    assert ds.ids == ["top.png", "tiles/north/n1.jpg", "tiles/south/s2.tif"]
    assert ds.classes == ("trees", "water") and ds.label_matrix.tolist() == [[1, 1], [0, 0], [1, 0]]


BAD_TABLES = [
    # (table text, message pattern): every error names the file and, where one is at fault, the line
    ("top.png,0,1\nn1,1,0\n", r"bad\.csv, line 1: .*header"),  # no header row
    ("image,water,water\ntop,1,0\n", r"bad\.csv, line 1: .*'water' appears twice"),
    ("image,water,trees\ntop,1,0\nn1,1\n", r"bad\.csv, line 3: 2 columns, but the header \(line 1\) has 3"),
    ("image,labels\ntop,water,trees\n", r"line 2: 3 columns.*separate labels with ';'"),
    ("image,water,trees\ntop,1,0\n\nn1,2,0\n", r"bad\.csv, line 4: .*'water' is '2'; expected 0 or 1"),
    ("image,landcover\ntop,water;trees\n", r"bad\.csv, line 2: cannot tell the table's format; expected either"),
    ("image labels\ntop water\n", r"bad\.csv, line 1: the header has no tab, comma or semicolon"),
    ("image,labels\n", r"bad\.csv: expected a header row, then one row per image"),
    ("image,labels\ntop,water\nnothere,trees\n", r"bad\.csv, line 3: image 'nothere' not found under"),
    ("image,labels\ntop,water\nn1,trees\ntop.png,trees\n", r"line 4: image top\.png is listed twice \(lines 2 and 4\)"),
    ("image,labels,split\ntop,water,train\nn1,trees,training\n", r"line 3: split 'training' is not one of"),
]


@pytest.mark.parametrize(("text", "message"), BAD_TABLES)
def test_bad_tables_name_file_and_line(root, text, message) -> None:
    (root / "bad.csv").write_text(text)
    with pytest.raises(LabelFileError, match=message):
        FolderArchive(root, labels_file="bad.csv", split="all")


def test_ambiguous_stem_names_both_files(root) -> None:
    shutil.copy(root / "top.png", root / "tiles" / "south" / "top.jpg")
    with pytest.raises(LabelFileError, match=r"line 2: 'top' is ambiguous: it names tiles/south/top\.jpg and top\.png"):
        FolderArchive(root, split="all")
    (root / "paths.csv").write_text("image,labels\ntop.png,water\ntiles/south/top.jpg,trees\n")
    assert FolderArchive(root, labels_file="paths.csv", split="all").ids == ["top.png", "tiles/south/top.jpg"]


def test_corrupt_image_raises_or_is_skipped(root) -> None:
    bad = root / "tiles" / "north" / "n2.png"
    bad.write_bytes(bad.read_bytes()[:40])
    ds = FolderArchive(root, split="all")
    with pytest.raises(CorruptImageError, match=r"n2\.png"):
        ds[IDS.index("tiles/north/n2.png")]
    skipping = FolderArchive(root, split="all", on_bad="skip")
    assert "tiles/north/n2.png" not in skipping.ids and len(skipping) == len(IDS) - 1
    assert skipping.skipped[0][0] == bad


def test_missing_root_or_table(tmp_path, root) -> None:
    with pytest.raises(DatasetNotFoundError, match="nowhere"):
        FolderArchive(tmp_path / "nowhere")
    with pytest.raises(DatasetNotFoundError, match=r"absent\.csv"):
        FolderArchive(root, labels_file="absent.csv")
    with pytest.raises(NotImplementedError, match="no public download"):
        FolderArchive(tmp_path / "nowhere", download=True)  # only called when the archive is missing
