"""Atomic files and folders: complete or untouched, with the modes a plain write would give."""

from __future__ import annotations

import hashlib
import os
import stat

import pytest

from macl.fileio import atomic_directory, atomic_write, file_digest


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_atomic_write_replaces_the_file_and_gives_a_plain_mode(tmp_path, umask_022) -> None:
    path = tmp_path / "sub" / "result.json"
    with atomic_write(path) as fh:
        fh.write(b"one")
    assert path.read_bytes() == b"one" and _mode(path) == 0o644
    with atomic_write(path) as fh:
        fh.write(b"two")
    assert path.read_bytes() == b"two"
    assert [p.name for p in path.parent.iterdir()] == ["result.json"]  # no temporary file left


def test_atomic_write_keeps_an_existing_files_mode(tmp_path, umask_022) -> None:
    path = tmp_path / "secret.txt"
    path.write_bytes(b"old")
    path.chmod(0o600)
    with atomic_write(path) as fh:
        fh.write(b"new")
    assert _mode(path) == 0o600 and path.read_bytes() == b"new"


def test_atomic_write_that_fails_leaves_the_old_file(tmp_path) -> None:
    path = tmp_path / "page.md"
    path.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_write(path) as fh:
        fh.write(b"half")
        raise RuntimeError("killed")
    assert path.read_bytes() == b"old" and sorted(p.name for p in tmp_path.iterdir()) == ["page.md"]


def test_atomic_directory_swaps_the_folder_whole(tmp_path, umask_022) -> None:
    path = tmp_path / "index"
    with atomic_directory(path) as folder:
        (folder / "a").write_bytes(b"1")
    first = path.resolve()
    assert (path / "a").read_bytes() == b"1" and _mode(first) == 0o755
    with pytest.raises(RuntimeError), atomic_directory(path) as folder:
        (folder / "a").write_bytes(b"2")
        raise RuntimeError("killed")
    assert (path / "a").read_bytes() == b"1"
    with atomic_directory(path) as folder:
        (folder / "b").write_bytes(b"3")
    assert sorted(p.name for p in path.iterdir()) == ["b"] and not first.exists()  # the old folder is gone


def test_file_digest_matches_hashlib(tmp_path) -> None:
    data = os.urandom(3 << 20)  # several read chunks
    (tmp_path / "f").write_bytes(data)
    assert file_digest(tmp_path / "f") == hashlib.sha256(data).hexdigest()
    assert file_digest(tmp_path / "f", "md5") == hashlib.md5(data).hexdigest()
