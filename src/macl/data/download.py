"""Fetch an archive from a URL (http, https or file) with a checksum, atomically, then extract it.

Nothing here runs unless a user passes ``download=True``. The file is streamed to a temporary name in
the destination folder and renamed only after its checksum matched, so an interrupted download never
leaves a file that looks complete. Extraction uses torchvision's ``extract_archive`` (zip, tar, gz, xz).
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import urllib.request
from pathlib import Path

from torchvision.datasets.utils import extract_archive

from macl.data.errors import ChecksumError

log = logging.getLogger(__name__)
_CHUNK = 1 << 20


def file_digest(path: Path, algorithm: str = "sha256") -> str:
    """Hex digest of a file, read in chunks."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def verify(path: Path, checksum: str | None) -> None:
    """Raise :class:`ChecksumError` unless ``path`` matches ``checksum`` (``"md5:…"`` or ``"sha256:…"``)."""
    if checksum is None:
        return
    algorithm, _, expected = checksum.partition(":")
    if not expected:
        algorithm, expected = "sha256", checksum
    actual = file_digest(path, algorithm)
    if actual != expected.lower():
        raise ChecksumError(f"{path}: {algorithm} is {actual}, expected {expected}; delete it and download again")


def download(url: str, folder: Path, filename: str | None = None, checksum: str | None = None) -> Path:
    """Download ``url`` into ``folder`` (skipped when a file with the right checksum is already there)."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / (filename or Path(urllib.request.url2pathname(url.rsplit("/", 1)[-1])).name)
    if target.is_file() and checksum is not None:
        try:
            verify(target, checksum)
            return target
        except ChecksumError:
            log.warning("%s exists but its checksum differs; downloading again", target)
    log.info("downloading %s -> %s", url, target)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=folder)
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=60) as response:
            while chunk := response.read(_CHUNK):
                out.write(chunk)
        verify(Path(tmp), checksum)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def download_and_extract(url: str, root: Path, filename: str | None = None, checksum: str | None = None) -> Path:
    """Download an archive into ``root`` and extract it there; returns the archive's path."""
    archive = download(url, root, filename, checksum)
    extract_archive(str(archive), str(root))
    return archive
