"""Files written so that an interruption never leaves a half-written one behind, and file digests."""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

_CHUNK = 1 << 20


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
