"""The archives a configuration can name (``dataset.name``), and opening one split of them.

Like :mod:`macl.losses.registry` for losses: the single place that maps a name to a dataset class, so the
configuration can check ``dataset.args`` against the class's own keyword arguments before anything loads.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

from macl.data.base import MultiLabelDataset, Transform
from macl.data.dlrsd import DLRSD
from macl.data.folder import FolderArchive
from macl.data.mlaid import MLAID
from macl.data.synthetic import SyntheticAerial
from macl.data.ucm import UCMerced
from macl.data.whdld import WHDLD

ARCHIVES: dict[str, type[MultiLabelDataset]] = {
    "synthetic": SyntheticAerial,
    "ucm": UCMerced,
    "dlrsd": DLRSD,
    "mlaid": MLAID,
    "whdld": WHDLD,
    "folder": FolderArchive,
}

# Set by the split being opened, never by ``dataset.args``.
_NOT_OPTIONS = {"self", "split", "transforms"}


def archive_options(name: str) -> set[str]:
    """The keyword arguments ``dataset.args`` may give archive ``name`` (its own and the base class's)."""
    options: set[str] = set()
    for cls in (ARCHIVES[name], MultiLabelDataset):
        params = inspect.signature(cls.__init__).parameters.values()
        options |= {p.name for p in params if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}
    return options - _NOT_OPTIONS


def open_archive(
    name: str, split: str, root: Path | str | None = None, transforms: Transform | None = None, **args: Any
) -> MultiLabelDataset:
    """Split ``split`` of archive ``name`` (``root`` is optional only for archives that need none)."""
    if root is not None:
        args["root"] = root
    return ARCHIVES[name](split=split, transforms=transforms, **args)
