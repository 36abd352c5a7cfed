"""UC Merced multi-label: the contract, the AiTLAS split, bad archives, download, and the real copy if present.

The fake archive in tests/data/ucm (written by its make_fake.py) is copied to a temporary folder by every
test that writes (a seeded split file) or breaks something; the committed files are never modified.
"""

from __future__ import annotations

import hashlib
import http.server
import json
import shutil
import threading
from contextlib import contextmanager
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from macl.data import ChecksumError, CorruptImageError, DatasetNotFoundError, LabelFileError
from macl.data.tables import MultiHotTable
from macl.data.ucm import UCMerced

FAKE = Path(__file__).parent / "data" / "ucm"
REAL = Path(__file__).parents[2] / "shared/data/ucm-multilabel"
LABELS = "LandUse_Multilabeled.txt"
N_FAKE = 20


@pytest.fixture
def root(tmp_path: Path) -> Path:
    copy = tmp_path / "ucm"
    shutil.copytree(FAKE, copy, ignore=shutil.ignore_patterns("make_fake.py", "__pycache__"))
    return copy


def split_ids(root: Path, split: str) -> list[str]:
    return MultiHotTable.read(root / f"splits/ucmercedmultilabel_{split}.csv").ids


def split_file_lines(root: Path, split: str) -> list[str]:
    return (root / f"splits/ucmercedmultilabel_{split}.csv").read_text().splitlines()


def edit_line(path: Path, line: int, edit) -> None:
    """Replace line ``line`` (1-based) of a CRLF file by ``edit(old_cells)`` joined with tabs."""
    lines = path.read_bytes().decode().split("\r\n")
    lines[line - 1] = "\t".join(edit(lines[line - 1].split("\t")))
    path.write_bytes("\r\n".join(lines).encode())


# --- the contract ------------------------------------------------------------------------------------
def test_items_classes_and_statistics() -> None:
    ds = UCMerced(FAKE, split="all")
    table = MultiHotTable.read(FAKE / LABELS)
    ids, classes, labels = table.ids, table.classes, table.labels
    assert len(ds) == N_FAKE and ds.ids == ids
    assert ds.classes == classes and len(classes) == 17 and classes[1] == "bare-soil"
    for i in range(len(ds)):  # every one of the odd images decodes to a float RGB tensor
        item = ds[i]
        assert set(item) == {"image", "label", "id"} and isinstance(item["id"], str)
        assert item["image"].dtype == torch.float32 and item["image"].shape[0] == 3
        assert 0.0 <= float(item["image"].min()) and float(item["image"].max()) <= 1.0
        assert item["label"].dtype == torch.float32 and torch.equal(item["label"], torch.from_numpy(labels[i]).float())
    assert (ds.label_counts() == labels.sum(0)).all()
    co = ds.cooccurrence()
    assert (np.diag(co) == ds.label_counts()).all() and (co == co.T).all()
    assert isinstance(ds.plot(ds[0]), Figure)
    assert repr(ds) == f"UCMerced(root={str(FAKE)!r}, split='all', images=20, labels=17)"


def test_unusual_images_are_converted_not_rejected() -> None:
    ds = UCMerced(FAKE, split="all")
    image = {i: ds[ds.ids.index(i)]["image"] for i in ("agricultural01", "agricultural02", "beach02", "airplane03")}
    assert image["airplane03"].shape == (3, 15, 17)  # odd size kept; resizing is the transforms' job
    for name in ("agricultural01", "agricultural02", "beach02"):  # grayscale, 16-bit, RGBA
        assert image[name].shape == (3, 16, 16)
    gray = image["agricultural01"]
    assert torch.equal(gray[0], gray[1]) and torch.equal(gray[1], gray[2])
    assert float(image["agricultural02"].max()) > 0.9  # 16-bit rescaled, not clipped to white or black


def test_any_extension_is_found_and_the_official_tif_wins(root: Path) -> None:
    ds = UCMerced(root, split="all")
    suffixes = {p.parent.name: p.suffix for p in ds.paths}
    assert suffixes == {"agricultural": ".tif", "airplane": ".tif", "beach": ".png", "harbor": ".webp",
                        "tenniscourt": ".tif"}  # fmt: skip
    harbor = root / "UCMerced_LandUse/Images/harbor"
    shutil.copy(harbor / "harbor00.webp", harbor / "harbor00.TIF")  # the same image in two formats
    path = UCMerced(root, split="all").paths[ds.ids.index("harbor00")]
    assert path.name == "harbor00.TIF"


# --- splits --------------------------------------------------------------------------------------------
def test_official_aitlas_split_is_respected() -> None:
    parts = {s: UCMerced(FAKE, split=s) for s in ("train", "val", "test")}
    for split, ds in parts.items():
        assert set(ds.ids) == set(split_ids(FAKE, split))
    assert [len(parts[s]) for s in ("train", "val", "test")] == [12, 4, 4]
    assert set(UCMerced(FAKE, split="trainval").ids) == set(parts["train"].ids) | set(parts["val"].ids)
    assert not list(FAKE.glob("macl_split_*.json")), "an official split writes nothing"


def test_seeded_split_without_split_files_is_written_and_reused(root: Path) -> None:
    shutil.rmtree(root / "splits")
    parts = {s: set(UCMerced(root, split=s).ids) for s in ("train", "val", "test")}
    assert sum(map(len, parts.values())) == N_FAKE and set.union(*parts.values()) == set(UCMerced(root, "all").ids)
    stored = root / "macl_split_seed0.json"
    assert stored.is_file()
    everything = sorted(set.union(*parts.values()))
    stored.write_text(json.dumps({"train": everything[:2], "val": everything[2:5], "test": everything[5:]}))
    assert UCMerced(root, split="train").ids == everything[:2], "the stored split is read back, not redrawn"


def test_incomplete_official_split_is_an_error(root: Path) -> None:
    (root / "splits/ucmercedmultilabel_val.csv").unlink()
    with pytest.raises(FileNotFoundError, match=r"ucmercedmultilabel_val\.csv missing"):
        UCMerced(root, split="train")


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda rows, train: [*rows, train[1]], r"line 6: image '\w+' is also in .*ucmercedmultilabel_train\.csv"),
        (
            lambda rows, train: [rows[0], "nowhere42" + rows[1][rows[1].index("\t") :], *rows[2:]],
            r"line 2: .*'nowhere42'",
        ),
        (lambda rows, train: [rows[0], rows[1][:-1] + str(1 - int(rows[1][-1])), *rows[2:]], r"line 2: the labels of"),
        (lambda rows, train: [rows[0].replace("water", "lake"), *rows[1:]], r"line 1: label columns"),
    ],
    ids=["in-two-splits", "unknown-image", "labels-differ", "other-columns"],
)
def test_split_file_must_agree_with_the_label_file(root: Path, edit, message: str) -> None:
    path = root / "splits/ucmercedmultilabel_test.csv"
    train = split_file_lines(root, "train")
    path.write_text("\n".join(edit(split_file_lines(root, "test"), train)) + "\n")
    with pytest.raises(LabelFileError, match=rf"ucmercedmultilabel_test\.csv, {message}"):
        UCMerced(root, split="test")


# --- bad archives ----------------------------------------------------------------------------------------
def test_missing_root_says_where_and_what(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError) as err:
        UCMerced(tmp_path / "nowhere")
    message = str(err.value)
    assert str((tmp_path / "nowhere").resolve()) in message
    assert "UCMerced_LandUse/Images/<scene>/<scene>NN.tif" in message and LABELS in message
    assert "download=True" in message


def test_missing_label_file_is_named(root: Path) -> None:
    (root / LABELS).unlink()
    with pytest.raises(DatasetNotFoundError, match=f"missing: {LABELS}"):
        UCMerced(root, split="all")


def test_corrupt_image_raises_at_read_or_is_skipped(root: Path) -> None:
    bad = root / "UCMerced_LandUse/Images/beach/beach01.png"
    bad.write_bytes(bad.read_bytes()[:50])
    ds = UCMerced(root, split="all")
    with pytest.raises(CorruptImageError, match=r"beach01\.png"):
        ds[ds.ids.index("beach01")]
    skipping = UCMerced(root, split="all", on_bad="skip")
    assert len(skipping) == N_FAKE - 1 and "beach01" not in skipping.ids
    assert [p.name for p, _ in skipping.skipped] == ["beach01.png"]


def test_label_row_without_image_names_file_and_line(root: Path) -> None:
    (root / "UCMerced_LandUse/Images/airplane/airplane01.tif").unlink()
    with pytest.raises(LabelFileError, match=rf"{LABELS}, line 7: no image .*airplane01\.<tif/tiff/png"):
        UCMerced(root, split="all")


def test_image_without_label_row_is_an_error(root: Path) -> None:
    extra = root / "UCMerced_LandUse/Images/airplane/airplane04.tif"
    shutil.copy(root / "UCMerced_LandUse/Images/airplane/airplane00.tif", extra)
    with pytest.raises(LabelFileError, match=rf"{LABELS}: 1 image\(s\) are not listed here, such as .*airplane04"):
        UCMerced(root, split="all")
    extra.unlink()
    (root / "UCMerced_LandUse/Images/airplane/._airplane00.tif").write_bytes(b"resource fork")
    (root / "UCMerced_LandUse/Images/airplane/Thumbs.db").write_bytes(b"not an image")
    assert len(UCMerced(root, split="all")) == N_FAKE, "hidden and non-image files are not images"


@pytest.mark.parametrize(
    ("line", "edit", "message"),
    [
        (1, lambda cells: ["agricultural99", *["0"] * 17], r"line 1: header cell '0' is a value"),
        (1, lambda cells: [*cells[:-1], "trees"], r"line 1: label 'trees' appears twice in the header"),
        (5, lambda cells: cells[:-1], r"line 5: 17 columns, but the header \(line 1\) has 18"),
        (4, lambda cells: [*cells[:4], "2", *cells[5:]], r"line 4: label 'cars' is '2'; expected 0 or 1"),
        (6, lambda cells: [*cells[:4], "", *cells[5:]], r"line 6: label 'cars' is ''; expected 0 or 1"),
        (
            3,
            lambda cells: ["agricultural00", *cells[1:]],
            r"line 3: image 'agricultural00' already has a row on line 2",
        ),
        (3, lambda cells: ["field_7", *cells[1:]], r"line 3: image name 'field_7' is not <scene>NN"),
    ],
    ids=["no-header", "duplicate-label", "column-count", "value-2", "empty-value", "duplicate-image", "bad-name"],
)
def test_malformed_label_file_names_file_and_line(root: Path, line: int, edit, message: str) -> None:
    edit_line(root / LABELS, line, edit)
    with pytest.raises(LabelFileError, match=rf"{LABELS}, {message}"):
        UCMerced(root, split="all")


# --- the table reader shared with the other archives -------------------------------------------------------
@pytest.mark.parametrize("delimiter", ["\t", ",", ";"])
def test_table_dialects_are_detected(tmp_path: Path, delimiter: str) -> None:
    path = tmp_path / "labels.csv"
    rows = [["name", "a", "b c"], ["x1", "1", "0"], [], ["x2", "0.0", "1.0"], ["  "]]
    text = "\r\n".join(delimiter.join(r) for r in rows) + "\r\n\r\n"
    path.write_bytes(b"\xef\xbb\xbf" + text.encode())  # with a BOM, CRLF and blank lines
    table = MultiHotTable.read(path)
    assert table.ids == ["x1", "x2"] and table.classes == ("a", "b c")
    assert table.labels.dtype == np.uint8 and table.labels.tolist() == [[1, 0], [0, 1]]
    assert table.lines == [2, 4], "lines count blank ones, as an editor does"


def test_table_id_column_and_trailing_delimiter(tmp_path: Path) -> None:
    path = tmp_path / "labels.tsv"
    path.write_text("a\tname\tb\t\n1\tx1\t0\t\n0\tx2\t1\n")
    table = MultiHotTable.read(path, id_column=1)
    assert table.ids == ["x1", "x2"] and table.classes == ("a", "b") and table.labels.tolist() == [[1, 0], [0, 1]]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "the file is empty"),
        (b"name\ta\n", "line 1: no rows after the header"),
        (b"name a b\nx 1 0\n", "line 1: the header has no tab, comma or semicolon"),
        (b"name\ta\n\tx\n", "line 2: empty image name in column 1"),
        (b"name\t\tb\nx\t1\t0\n", "line 1: label column 1 has no name"),
        (b"name\ta\nx\xff\t1\n", "not UTF-8 text"),
    ],
    ids=["empty", "no-rows", "no-delimiter", "empty-name", "unnamed-label", "not-utf8"],
)
def test_table_errors(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "labels.txt"
    path.write_bytes(content)
    with pytest.raises(LabelFileError, match=message) as err:
        MultiHotTable.read(path)
    assert str(path) in str(err.value)


# --- download ------------------------------------------------------------------------------------------------
@pytest.fixture
def mirror(tmp_path: Path) -> Path:
    """The two published archives, rebuilt from the fake: the images zip and the authors' labels zip."""
    folder = tmp_path / "mirror"
    folder.mkdir()
    shutil.make_archive(str(folder / "UCMerced_LandUse"), "zip", FAKE, "UCMerced_LandUse")
    staging = tmp_path / "staging" / "multilabels"
    staging.mkdir(parents=True)
    shutil.copy(FAKE / LABELS, staging)
    shutil.make_archive(str(folder / "multilabels"), "zip", staging.parent, "multilabels")
    return folder


def point_at(monkeypatch: pytest.MonkeyPatch, base: str, folder: Path, labels: str = "multilabels.zip") -> None:
    md5 = hashlib.md5((folder / "UCMerced_LandUse.zip").read_bytes()).hexdigest()
    monkeypatch.setattr(UCMerced, "IMAGES_URL", f"{base}/UCMerced_LandUse.zip")
    monkeypatch.setattr(UCMerced, "IMAGES_CHECKSUM", f"md5:{md5}")
    monkeypatch.setattr(UCMerced, "LABELS_URL", f"{base}/{labels}")


@pytest.mark.parametrize("labels", ["multilabels.zip", "labels.txt"], ids=["labels-zipped", "labels-bare"])
def test_download_from_a_file_url(tmp_path: Path, mirror: Path, monkeypatch: pytest.MonkeyPatch, labels: str) -> None:
    shutil.copy(FAKE / LABELS, mirror / "labels.txt")  # a mirror serving the label file itself
    point_at(monkeypatch, mirror.as_uri(), mirror, labels)
    ds = UCMerced(tmp_path / "data", split="all", download=True, checksum=True)
    assert ds.ids == UCMerced(FAKE, split="all").ids
    assert (ds.root / LABELS).read_bytes() == (FAKE / LABELS).read_bytes()
    monkeypatch.setattr(UCMerced, "IMAGES_URL", "file:///nonexistent/UCMerced_LandUse.zip")
    assert len(UCMerced(tmp_path / "data", split="all", download=True)) == N_FAKE, "present: nothing fetched"


def test_download_checksum_mismatch_leaves_nothing(
    tmp_path: Path, mirror: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    point_at(monkeypatch, mirror.as_uri(), mirror)
    monkeypatch.setattr(UCMerced, "IMAGES_CHECKSUM", "md5:" + "0" * 32)
    target = tmp_path / "data"
    with pytest.raises(ChecksumError, match="expected 0000"):
        UCMerced(target, split="all", download=True, checksum=True)
    assert not any(target.iterdir()), "no archive and no partial file are left behind"


@contextmanager
def serve(folder: Path):
    """``folder`` over HTTP on 127.0.0.1 (any free port) while the block runs."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(Quiet, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_download_over_http(tmp_path: Path, mirror: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with serve(mirror) as base:
        point_at(monkeypatch, base, mirror)
        ds = UCMerced(tmp_path / "data", split="all", download=True, checksum=True)
    assert len(ds) == N_FAKE and ds.classes == UCMerced(FAKE, split="all").classes


# --- the real archive -------------------------------------------------------------------------------------------
REAL_COUNTS = {
    "pavement": 1300, "trees": 1009, "grass": 975, "cars": 886, "bare-soil": 718, "buildings": 691, "sand": 294,
    "water": 203, "chaparral": 115, "court": 105, "field": 103, "mobile-home": 102, "ship": 102, "airplane": 100,
    "dock": 100, "sea": 100, "tanks": 100,
}  # fmt: skip


def test_real_archive_matches_its_readme() -> None:
    if not (REAL / LABELS).is_file():
        pytest.skip(f"the real UC Merced multi-label copy is not at {REAL}")
    ds = UCMerced(REAL, split="all")
    assert len(ds) == 2100 and len(ds.classes) == 17
    assert dict(zip(ds.classes, ds.label_counts().tolist(), strict=True)) == REAL_COUNTS
    assert [len(UCMerced(REAL, split=s)) for s in ("train", "val", "test")] == [1285, 395, 420]
    image = ds[ds.ids.index("harbor42")]["image"]
    assert image.shape[0] == 3 and 242 <= image.shape[1] <= 257 and 242 <= image.shape[2] <= 257
