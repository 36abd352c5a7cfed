"""Fetch an archive from a URL (http, https or file) with a checksum, atomically, then extract it.

Nothing here runs unless a user passes ``download=True``. The file is streamed to a temporary name in
the destination folder and renamed only after its checksum matched, so an interrupted download never
leaves a file that looks complete. Extraction uses torchvision's ``extract_archive`` (zip, tar, gz, xz).
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
import urllib.request
from pathlib import Path

from torchvision.datasets.utils import extract_archive

from macl.data.errors import ChecksumError
from macl.fileio import atomic_write, file_digest

log = logging.getLogger(__name__)
_CHUNK = 1 << 20


def _parse(checksum: str) -> tuple[str, str]:
    """``"md5:…"`` / ``"sha256:…"`` (a bare digest is SHA-256) → (algorithm, lower-case digest)."""
    algorithm, _, expected = checksum.partition(":")
    return ("sha256", checksum.lower()) if not expected else (algorithm, expected.lower())


def verify(path: Path, checksum: str | None) -> None:
    """Raise :class:`ChecksumError` unless ``path`` matches ``checksum`` (``"md5:…"`` or ``"sha256:…"``)."""
    if checksum is None:
        return
    algorithm, expected = _parse(checksum)
    actual = file_digest(path, algorithm)
    if actual != expected:
        raise ChecksumError(f"{path}: {algorithm} is {actual}, expected {expected}; delete it and download again")


def download(url: str, folder: Path, filename: str | None = None, checksum: str | None = None) -> Path:
    """Download ``url`` into ``folder`` (skipped when a file with the right checksum is already there).

    The digest is computed while streaming and checked before the temporary file is renamed, so a
    download with the wrong checksum never takes the target's name.
    """
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / (filename or Path(urllib.request.url2pathname(url.rsplit("/", 1)[-1])).name)
    if target.is_file() and checksum is not None:
        try:
            verify(target, checksum)
            return target
        except ChecksumError:
            log.warning("%s exists but its checksum differs; downloading again", target)
    log.info("downloading %s -> %s", url, target)
    algorithm, expected = _parse(checksum) if checksum else ("sha256", None)
    digest = hashlib.new(algorithm)
    with atomic_write(target) as out, urllib.request.urlopen(url, timeout=60) as response:
        while chunk := response.read(_CHUNK):
            out.write(chunk)
            digest.update(chunk)
        if expected is not None and digest.hexdigest() != expected:
            raise ChecksumError(f"{url}: {algorithm} is {digest.hexdigest()}, expected {expected}")
    return target


def download_and_extract(url: str, root: Path, filename: str | None = None, checksum: str | None = None) -> Path:
    """Download an archive into ``root`` and extract it there; returns the archive's path.

    Extraction goes to a hidden staging folder first and each top-level entry is then renamed into
    ``root``, so an interrupted extraction never leaves a half-filled image folder that looks complete.
    """
    archive = download(url, root, filename, checksum)
    staging = Path(tempfile.mkdtemp(prefix=".extract-", dir=root))
    try:
        extract_archive(str(archive), str(staging))
        for entry in staging.iterdir():
            target = root / entry.name
            if target.exists():  # merge into what an earlier archive (or a partial copy) put there
                shutil.copytree(entry, target, dirs_exist_ok=True) if entry.is_dir() else shutil.copy2(entry, target)
            else:
                os.replace(entry, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return archive


def expected_checksum(url: str, published: str | None, checksum: bool) -> str | None:
    """The checksum to verify ``url``'s file against, or None (not asked for, or none published: say so)."""
    if checksum and published is None:
        log.warning("no published checksum for %s: downloaded unverified", url)
    return published if checksum else None
