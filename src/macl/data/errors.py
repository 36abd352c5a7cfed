"""Errors a user can act on: each names the file (and line) at fault and says what was expected."""

from __future__ import annotations

from pathlib import Path

from macl.errors import MaclError


class DatasetNotFoundError(MaclError, FileNotFoundError):
    """The archive is not under ``root``: says where we looked and what to put there (or ``download=True``)."""

    def __init__(self, name: str, root: Path | str, expected: str, downloadable: bool = False) -> None:
        how = " or pass download=True (needs internet)" if downloadable else ""
        super().__init__(f"{name} not found in {Path(root).resolve()}: expected {expected}. Put it there{how}.")


class CorruptImageError(MaclError, OSError):
    """An image file that cannot be decoded (truncated, not an image, unsupported format)."""

    def __init__(self, path: Path | str, reason: str) -> None:
        self.path = Path(path)
        super().__init__(f"cannot read image {self.path}: {reason}")


class LabelFileError(MaclError, ValueError):
    """A label table that does not match the expected format; names the file, line and column."""

    def __init__(self, path: Path | str, problem: str, line: int | None = None) -> None:
        self.path = Path(path)
        where = f"{self.path}, line {line}" if line is not None else str(self.path)
        super().__init__(f"{where}: {problem}")


class ChecksumError(MaclError, OSError):
    """A downloaded or local archive whose checksum differs from the published one."""
