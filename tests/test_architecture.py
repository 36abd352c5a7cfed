"""The layering the code promises: the library layer knows nothing of the CLI, the study harness, the web
app or progress bars, and the losses know nothing of the data. Read from the source (every ``import``,
including those inside functions), so a lazy import cannot hide a dependency."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "macl"
LIBRARY = ("losses", "labels", "metrics", "data", "index", "models")
FORBIDDEN = ("macl.cli", "macl.bench", "macl.web", "macl.serve", "macl.pipeline", "macl.report", "rich")


def modules(package: str) -> list[Path]:
    root = SRC / package
    return sorted(root.rglob("*.py")) if root.is_dir() else [root.with_suffix(".py")]


def imported(path: Path, source: str | None = None) -> set[str]:
    """Every module ``path`` imports, absolute names (relative imports resolved against its package)."""
    package = ".".join(("macl", *path.relative_to(SRC).with_suffix("").parts[:-1]))
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text() if source is None else source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def within(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


@pytest.mark.parametrize("package", LIBRARY)
def test_library_layer_does_not_import_the_layers_above(package: str) -> None:
    files = modules(package)
    assert files and all(f.is_file() for f in files), f"macl.{package} moved: update this test"
    bad = {f"{f.relative_to(SRC)} imports {name}" for f in files for name in imported(f) if within(name, FORBIDDEN)}
    assert not bad, sorted(bad)


def test_losses_do_not_import_the_data_layer() -> None:
    files = modules("losses")
    bad = {f"{f.relative_to(SRC)} imports {n}" for f in files for n in imported(f) if within(n, ("macl.data",))}
    assert not bad, sorted(bad)


def test_the_scan_sees_imports() -> None:
    """The checker itself: lazy, relative and aliased imports are all found."""
    source = "from ..cli import main\n\ndef f():\n    import rich.progress as p\n    from . import base\n"
    names = imported(SRC / "data" / "probe.py", source)
    assert {"macl.cli", "macl.cli.main", "rich.progress", "macl.data", "macl.data.base"} <= names
    assert within("rich.progress", FORBIDDEN) and not within("richer", FORBIDDEN)
