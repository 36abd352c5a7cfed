"""Files written so that an interruption never leaves a half-written one behind, and file digests."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

_CHUNK = 1 << 20


def _umask() -> int:
    """The process's umask, read without changing it where the OS allows (Linux: /proc/self/status).

    ``os.umask`` can only be read by setting it, which races with other threads creating files; that
    swap is the fallback elsewhere.
    """
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _new_file_mode(path: Path) -> int:
    """The mode ``open(path, "w")`` would give: the old file's if it exists, else 0o666 less the umask.

    ``tempfile`` creates private (0o600 / 0o700) files and folders; renamed into place unchanged they
    would make results, pages and indexes unreadable to anyone else (a web server's user, a group).
    """
    try:
        return path.stat().st_mode & 0o7777
    except OSError:
        return 0o666 & ~_umask()


@contextmanager
def atomic_write(path: Path | str) -> Iterator[BinaryIO]:
    """Write ``path`` through a temporary file in the same folder, renamed over ``path`` on success.

    Readers see the old file or the complete new one, never a partial one; if the block raises (or the
    process is killed) the temporary file is removed (or left as a hidden ``.name.*.tmp``) and ``path``
    is untouched. The data is fsynced before the rename so a power cut cannot reorder the two.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, _new_file_mode(path))
        with os.fdopen(fd, "wb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def file_digest(path: Path | str, algorithm: str = "sha256") -> str:
    """Hex digest of a file, read in chunks (checksums of downloads, identity of model checkpoints)."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


@contextmanager
def atomic_directory(path: Path | str) -> Iterator[Path]:
    """Write a folder of files that replaces ``path`` all at once, or not at all.

    Yields a fresh hidden folder beside ``path``; when the block finishes, its files are fsynced and
    ``path`` becomes a symbolic link to it through one ``rename`` (atomic on POSIX), after which the
    folder ``path`` pointed to before is deleted. A reader that resolves ``path`` once sees the old
    folder or the new one, never a mixture; a write killed half-way leaves ``path`` untouched and at
    most a hidden ``.name.*.d`` folder behind. A plain file or folder at ``path`` (written before this
    format) is replaced the same way.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".d", dir=path.parent))
    try:
        folder.chmod(0o777 & ~_umask())  # mkdtemp's folder is private (0o700); give it a plain folder's mode
        yield folder
        for item in folder.iterdir():
            with open(item, "rb") as fh:
                os.fsync(fh.fileno())
        dir_fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        previous = path.resolve() if path.is_symlink() else None
        if path.is_dir() and not path.is_symlink():  # an old-style real folder cannot be renamed over
            path.rename(path.with_name(f".{path.name}.old-{os.getpid()}"))
            previous = path.with_name(f".{path.name}.old-{os.getpid()}")
        link = path.with_name(f".{path.name}.{os.getpid()}.link")
        link.unlink(missing_ok=True)
        os.symlink(folder.name, link)
        os.replace(link, path)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    if previous is not None and previous != folder and previous.parent == path.parent:
        shutil.rmtree(previous, ignore_errors=True)
