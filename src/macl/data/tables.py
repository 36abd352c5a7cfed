"""Multi-hot label tables (an id column, then one 0/1 column per label) from text or Excel files.

Archives ship their multi-labels as such tables in several dialects: tab-separated with CRLF (UC Merced's
``LandUse_Multilabeled.txt``), comma-separated (torchgeo's ``multilabels.csv``), semicolon-separated
(spreadsheets saved in some locales) or an ``.xlsx`` sheet (DLRSD). Every dialect goes through one
validator, so a malformed file fails the same way everywhere: a :class:`LabelFileError` naming the file,
the line (the sheet row for ``.xlsx``) and what was expected there. Lines are counted as an editor counts
them, header = line 1, blank lines included, so the number can be typed into one.
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from macl.data.errors import LabelFileError

DELIMITERS = ("\t", ",", ";")
Row = tuple[int, Sequence[str]]  # (line number, cells)


@dataclass(frozen=True)
class MultiHotTable:
    """A validated label table: ids in file order, label names, (N, C) ``uint8`` 0/1 labels.

    ``lines[i]`` is the line (or sheet row) of ``ids[i]`` and ``header_line`` that of the header, kept so
    that problems found later, such as a row whose image file is missing, can still be reported at their
    line (:meth:`error`).
    """

    path: Path
    ids: list[str]
    classes: tuple[str, ...]
    labels: np.ndarray
    lines: list[int]
    header_line: int

    @classmethod
    def read(cls, path: Path | str, *, delimiter: str | None = None, id_column: int = 0) -> MultiHotTable:
        """Parse a delimited text file; ``delimiter=None`` picks tab, comma or semicolon from the header.

        Raises :class:`LabelFileError` naming the file and line for: an empty file, a header that is missing
        (a data row in its place), has no label column or repeats a name; a row with the wrong number of
        columns, an empty or repeated image name, or a value other than 0/1.
        """
        path = Path(path)
        return cls.from_rows(path, read_rows(path, delimiter=delimiter), id_column=id_column)

    @classmethod
    def read_xlsx(cls, path: Path | str, *, sheet: str | None = None, id_column: int = 0) -> MultiHotTable:
        """Parse one sheet (default: the first) of an Excel workbook; lines are the sheet's row numbers."""
        from openpyxl import load_workbook  # imported here: only the archives that ship .xlsx need it
        from openpyxl.utils.exceptions import InvalidFileException

        path = Path(path)
        try:
            workbook = load_workbook(path, read_only=True, data_only=True)
        except (InvalidFileException, zipfile.BadZipFile, KeyError, OSError) as err:
            raise LabelFileError(path, f"not a readable .xlsx workbook ({err})") from None
        try:
            if sheet is not None and sheet not in workbook.sheetnames:
                raise LabelFileError(path, f"no sheet {sheet!r}; the workbook has {workbook.sheetnames}")
            worksheet = workbook[sheet] if sheet is not None else workbook.worksheets[0]
            rows = enumerate(worksheet.iter_rows(values_only=True), 1)
            return cls.from_rows(path, ((n, [_cell_text(v) for v in row]) for n, row in rows), id_column=id_column)
        finally:
            workbook.close()

    def error(self, row: int, problem: str) -> LabelFileError:
        """A :class:`LabelFileError` about row ``row`` (0-based, as in ``ids``), naming its line."""
        return LabelFileError(self.path, problem, self.lines[row])

    @classmethod
    def from_rows(cls, path: Path, rows: Iterable[Row], *, id_column: int = 0) -> MultiHotTable:
        """Validate ``(line, cells)`` rows (header first; blank rows are skipped) read from ``path``.

        The one validator behind every reader: use it for rows that come from elsewhere (a sheet, a
        table whose other columns were set aside) so that they get the same checks and messages.
        """
        stripped = ((line, [cell.strip() for cell in cells]) for line, cells in rows)
        nonblank = ((line, cells) for line, cells in stripped if any(cells))  # blank lines carry nothing
        first = next(nonblank, None)
        if first is None:
            raise LabelFileError(path, "the file is empty; expected a header row, then one row per image")
        header_line, header = first
        header = _trim(header, id_column + 1)
        classes = _check_header(path, header, header_line, id_column)
        ids: list[str] = []
        lines: list[int] = []
        values: list[list[int]] = []
        seen: dict[str, int] = {}
        for line, cells in nonblank:
            cells = _trim(cells, len(header))
            if len(cells) != len(header):
                raise LabelFileError(
                    path, f"{len(cells)} columns, but the header (line {header_line}) has {len(header)}", line
                )
            image_id = cells[id_column]
            if not image_id:
                raise LabelFileError(path, f"empty image name in column {id_column + 1}", line)
            if image_id in seen:
                raise LabelFileError(path, f"image {image_id!r} already has a row on line {seen[image_id]}", line)
            seen[image_id] = line
            label_cells = cells[:id_column] + cells[id_column + 1 :]
            values.append([_binary(path, line, name, cell) for name, cell in zip(classes, label_cells, strict=True)])
            ids.append(image_id)
            lines.append(line)
        if not ids:
            raise LabelFileError(path, "no rows after the header; expected one row per image", header_line)
        labels = np.asarray(values, dtype=np.uint8).reshape(len(ids), len(classes))
        return cls(path, ids, classes, labels, lines, header_line)


def read_rows(path: Path | str, *, delimiter: str | None = None) -> list[Row]:
    """The non-blank rows of a delimited text file with their line numbers, cells as written.

    ``delimiter=None``: the one of tab, comma and semicolon found most often in the first non-blank line
    (the header). Handles a BOM, LF or CRLF, and quoted cells.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")  # -sig: drop the BOM spreadsheet exports prepend
    except UnicodeDecodeError as err:
        raise LabelFileError(path, f"not UTF-8 text ({err.reason} at byte {err.start})") from None
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter or _detect_delimiter(path, text))
    return [(reader.line_num, cells) for cells in reader if any(cell.strip() for cell in cells)]


def _detect_delimiter(path: Path, text: str) -> str:
    """The candidate occurring most often in the first non-blank line; any one for an empty file."""
    header = next(((n, line) for n, line in enumerate(text.splitlines(), 1) if line.strip()), None)
    if header is None:
        return DELIMITERS[0]  # nothing to split: from_rows reports the empty file
    line, content = header
    best = max(DELIMITERS, key=content.count)
    if not content.count(best):
        raise LabelFileError(
            path, "the header has no tab, comma or semicolon; expected an image column, then label columns", line
        )
    return best


def _trim(cells: list[str], width: int) -> list[str]:
    """Drop empty trailing cells beyond ``width`` (a trailing delimiter, or a sheet's formatted blanks)."""
    while len(cells) > width and not cells[-1]:
        cells = cells[:-1]
    return cells


def _check_header(path: Path, header: list[str], line: int, id_column: int) -> tuple[str, ...]:
    if len(header) <= id_column:
        raise LabelFileError(path, f"the header has {len(header)} columns; the image column is {id_column + 1}", line)
    classes = tuple(header[:id_column] + header[id_column + 1 :])
    if not classes:
        raise LabelFileError(
            path, "the header has no label columns; expected an image column, then one per label", line
        )
    for k, name in enumerate(classes):
        if not name:
            raise LabelFileError(path, f"label column {k + 1} has no name in the header", line)
        if _is_number(name):
            raise LabelFileError(
                path, f"header cell {name!r} is a value, not a label name: the file must start with a header row", line
            )
        if name in classes[:k]:
            raise LabelFileError(path, f"label {name!r} appears twice in the header", line)
    return classes


def _binary(path: Path, line: int, name: str, cell: str) -> int:
    if cell in ("0", "1"):
        return int(cell)
    if _is_number(cell) and float(cell) in (0.0, 1.0):  # "1.0": what spreadsheets write for 1
        return int(float(cell))
    raise LabelFileError(path, f"label {name!r} is {cell!r}; expected 0 or 1", line)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _cell_text(value: object) -> str:
    """A sheet cell as the text a delimited file would hold (None → '', 1.0 → '1', True → '1')."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
