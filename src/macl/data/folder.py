"""The user's own archive: a folder of images (in any sub-folders) and one label table.

The table is CSV or TSV; its delimiter is read off the header line: whichever of tab, comma and
semicolon it holds most (as for every archive's label file, :mod:`macl.data.tables`). The first column
names an image, either by its path relative to ``root`` (with extension: ``tiles/a.jpg``; a bare file
name ``a.jpg`` that is not at the top is looked up anywhere) or by its stem (``a``, found anywhere
below ``root``; ``tiles/a`` for one folder). The labels come in one of two forms, told apart by the
header and the first row:

* **multi-hot**: one column per label, named in the header, holding 0 or 1
  (``image,water,trees`` / ``a.jpg,1,0``). A label that no image carries is kept (a column of zeros).
* **list of names**: a single column named ``labels`` (or ``label``, ``tags``, ``classes``) listing the
  image's labels (``image,labels`` / ``a.jpg,water;trees``). Labels are separated by ``;`` or ``|``
  if the column uses either anywhere, else by spaces (so ``bare soil;water`` keeps the space inside a
  name). An empty cell is an image with no label. The classes are the names used, sorted.

A ``split`` column (values ``train``, ``val``, ``test``) fixes the split; without one the base class
draws the seeded split and stores it in ``root`` (or ``split_dir``).

Policies, chosen so that a mistake in the table fails loudly while a folder may hold other files:
an image that no row names is ignored (not part of the archive); a row naming a missing image, two rows
naming the same image, or a stem shared by two files raise :class:`LabelFileError` with the line. Ids
are the images' paths relative to ``root`` (``tiles/a.jpg``), whatever form the row used.
"""

from __future__ import annotations

import csv
import io
import logging
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from macl.data.base import ArchiveIndex, MultiLabelDataset, Transform
from macl.data.errors import DatasetNotFoundError, LabelFileError
from macl.data.images import IMAGE_EXTENSIONS
from macl.data.splits import SPLITS
from macl.data.tables import DELIMITERS, MultiHotTable

log = logging.getLogger(__name__)

LIST_COLUMNS = ("labels", "label", "tags", "classes")
SPLIT_COLUMN = "split"
_BINARY = ("0", "1", "0.0", "1.0")
_FORMATS = (
    "expected either multi-hot columns (header 'image,water,trees', rows 'a.jpg,1,0') or one column "
    f"named {'/'.join(LIST_COLUMNS)} listing label names (header 'image,labels', rows 'a.jpg,water;trees')"
)

Row = tuple[int, list[str]]  # (line number, cells)


@dataclass(frozen=True)
class LabelTable:
    """A parsed label table: per row the image reference as written, its line and its labels."""

    path: Path
    refs: list[str]
    lines: list[int]
    classes: tuple[str, ...]
    labels: np.ndarray
    splits: list[str] | None


def read_label_table(path: Path) -> LabelTable:
    """Parse a multi-hot or list-of-names table (see the module docstring); errors name file and line.

    Multi-hot columns are validated by :class:`macl.data.tables.MultiHotTable` (header, 0/1 values,
    repeated names), the same checks every archive's label file gets.
    """
    rows = _read_rows(path)
    if len(rows) < 2:
        raise LabelFileError(path, "expected a header row, then one row per image; " + _FORMATS)
    (header_line, header), body = rows[0], rows[1:]
    header = [cell.strip() for cell in header]
    for line, cells in body:
        if len(cells) != len(header):
            hint = "; quote the label list or separate labels with ';'" if len(cells) > len(header) else ""
            raise LabelFileError(
                path, f"{len(cells)} columns, but the header (line {header_line}) has {len(header)}{hint}", line
            )
    lower = [name.lower() for name in header]
    split_col = lower.index(SPLIT_COLUMN) if SPLIT_COLUMN in lower[1:] else None
    label_cols = [k for k in range(1, len(header)) if k != split_col]
    splits = _parse_splits(path, split_col, body) if split_col is not None else None
    if len(label_cols) == 1 and lower[label_cols[0]] in LIST_COLUMNS:
        classes, labels = _parse_lists([cells[label_cols[0]] for _, cells in body])
        return LabelTable(path, [c[0].strip() for _, c in body], [line for line, _ in body], classes, labels, splits)
    if label_cols and all(body[0][1][k].strip() in _BINARY for k in label_cols):
        keep = [0, *label_cols]  # MultiHotTable.read's own validator, fed the rows without the split column
        table = MultiHotTable.from_rows(path, [(line, [c[k] for k in keep]) for line, c in rows], id_column=0)
        return LabelTable(path, table.ids, table.lines, table.classes, table.labels, splits)
    raise LabelFileError(path, "cannot tell the table's format; " + _FORMATS, body[0][0])


def _read_rows(path: Path) -> list[Row]:
    """Non-blank rows with their line numbers, split on the delimiter found in the header line."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as err:
        raise LabelFileError(path, f"not UTF-8 text ({err.reason} at byte {err.start})") from err
    header = next(((n, line) for n, line in enumerate(text.splitlines(), 1) if line.strip()), None)
    if header is None:
        return []
    counts = {d: header[1].count(d) for d in DELIMITERS}
    delimiter = max(DELIMITERS, key=counts.__getitem__)  # as MultiHotTable picks it: the most frequent
    if not counts[delimiter]:
        raise LabelFileError(path, "the header has no tab, comma or semicolon between columns; " + _FORMATS, header[0])
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    return [(reader.line_num, cells) for cells in reader if any(cell.strip() for cell in cells)]


def split_label_names(cells: list[str]) -> list[list[str]]:
    """The label names of each list cell of one column.

    The separator is chosen once for the column, so that one row cannot be read differently from the
    next: ``;`` and ``|`` if any cell holds one (spaces then belong to names: ``bare soil;water``),
    whitespace otherwise. A single multi-word name in a table without ``;`` can be written ``bare soil;``.
    """
    if any(re.search(r"[;|]", cell) for cell in cells):
        parts = [re.split(r"[;|]", cell) for cell in cells]
    else:
        parts = [cell.split() for cell in cells]
    return [[name.strip() for name in row if name.strip()] for row in parts]


def _parse_lists(cells: list[str]) -> tuple[tuple[str, ...], np.ndarray]:
    names = split_label_names(cells)
    classes = tuple(sorted({name for row in names for name in row}))
    column = {name: j for j, name in enumerate(classes)}
    labels = np.zeros((len(cells), len(classes)), dtype=np.uint8)
    for i, row in enumerate(names):
        labels[i, [column[name] for name in row]] = 1
    return classes, labels


def _parse_splits(path: Path, col: int, body: list[Row]) -> list[str]:
    splits = []
    for line, cells in body:
        value = cells[col].strip().lower()
        if value not in SPLITS:
            raise LabelFileError(path, f"split {cells[col]!r} is not one of {', '.join(SPLITS)}", line)
        splits.append(value)
    return splits


class _ImageFiles:
    """Every image file below a folder, findable by relative path or stem, with or without extension.

    Hidden files (macOS ``._x.jpg`` resource forks) are not images.
    """

    def __init__(self, root: Path) -> None:
        self.paths = sorted(
            p
            for p in root.rglob("*")
            if p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".") and p.is_file()
        )
        self.by_path: dict[str, list[Path]] = defaultdict(list)
        self.by_name: dict[str, list[Path]] = defaultdict(list)
        for path in self.paths:
            rel = PurePosixPath(path.relative_to(root).as_posix())
            self.by_path[str(rel)].append(path)
            self.by_path[str(rel.with_suffix(""))].append(path)
            self.by_name[rel.name].append(path)
            self.by_name[rel.stem].append(path)

    def find(self, ref: str) -> list[Path]:
        """Files matching ``ref``: its relative path if that exists, else (no folder in it) its name anywhere."""
        key = ref.replace("\\", "/").removeprefix("./")
        has_extension = PurePosixPath(key).suffix.lower() in IMAGE_EXTENSIONS
        if "/" in key or (has_extension and key in self.by_path):
            return self.by_path.get(key, [])
        return self.by_name.get(key, [])


def resolve_images(table: LabelTable, root: Path) -> list[Path]:
    """The image file each row of ``table`` names, checking that it exists, is unique and is named once."""
    files = _ImageFiles(root)
    paths: list[Path] = []
    first_line: dict[Path, int] = {}
    for ref, line in zip(table.refs, table.lines, strict=True):
        if not ref:
            raise LabelFileError(table.path, "the image column is empty", line)
        hits = files.find(ref)
        if not hits:
            raise LabelFileError(table.path, f"image {ref!r} not found under {root}", line)
        if len(hits) > 1:
            both = " and ".join(str(h.relative_to(root)) for h in hits[:2])
            raise LabelFileError(table.path, f"{ref!r} is ambiguous: it names {both}; give the relative path", line)
        if hits[0] in first_line:
            raise LabelFileError(
                table.path,
                f"image {hits[0].relative_to(root)} is listed twice (lines {first_line[hits[0]]} and {line})",
                line,
            )
        first_line[hits[0]] = line
        paths.append(hits[0])
    if len(files.paths) > len(paths):
        log.info("%d images under %s have no row in %s: ignored", len(files.paths) - len(paths), root, table.path)
    return paths


class FolderArchive(MultiLabelDataset):
    """A folder of images with a label table (see the module docstring for formats and policies).

    Args:
        root: folder holding the images, in any sub-folders.
        split, transforms: as in :class:`~macl.data.base.MultiLabelDataset`.
        labels_file: the label table, relative to ``root`` or absolute.
        **kwargs: the remaining arguments of :class:`~macl.data.base.MultiLabelDataset` (``download``,
            ``checksum``, ``on_bad``, ``split_seed``, ``split_dir``), passed on unchanged (there is nothing
            to download: ``download=True`` raises when the archive is missing).
    """

    name = "folder archive"

    def __init__(
        self,
        root: Path | str,
        split: str = "train",
        transforms: Transform | None = None,
        *,
        labels_file: Path | str = "labels.csv",
        **kwargs: Any,
    ) -> None:
        self.labels_file = Path(root) / labels_file
        self._table_splits: dict[str, list[str]] | None = None
        super().__init__(root, split, transforms, **kwargs)

    def _index(self) -> ArchiveIndex:
        if not self.root.is_dir() or not self.labels_file.is_file():
            raise DatasetNotFoundError(
                self.name, self.root, f"a folder of images and the label table {self.labels_file}"
            )
        table = read_label_table(self.labels_file)
        paths = resolve_images(table, self.root)
        ids = [path.relative_to(self.root).as_posix() for path in paths]
        if table.splits is not None:
            self._table_splits = {
                name: [i for i, s in zip(ids, table.splits, strict=True) if s == name] for name in SPLITS
            }
        return ArchiveIndex(ids, paths, table.labels, table.classes)

    def _official_split(self, index: ArchiveIndex) -> dict[str, list[str]] | None:
        return self._table_splits
