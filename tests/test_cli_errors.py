"""The CLI's error contract: the project's own errors are one ``macl: error:`` line and exit 2; anything
else is a bug and keeps its traceback (it is not swallowed as if the user had made a mistake)."""

from __future__ import annotations

import pytest

from macl import cli
from macl.errors import ConfigError


def test_project_errors_are_one_line_and_exit_2(capsys) -> None:
    assert cli.main(["train", "--set", "train.lr=abc"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "macl: error: train.lr: expected a number, got 'abc' (str)"


def test_a_bug_keeps_its_traceback(monkeypatch) -> None:
    def broken(args: object) -> int:
        raise ValueError("an internal bug, not the user's input")

    monkeypatch.setattr(cli, "cmd_selfcheck", broken)
    with pytest.raises(ValueError, match="internal bug"):
        cli.main(["selfcheck"])


def test_project_errors_raised_inside_a_command_are_caught(monkeypatch, capsys) -> None:
    def refuses(args: object) -> int:
        raise ConfigError("index.k must be at least 1; got 0")

    monkeypatch.setattr(cli, "cmd_selfcheck", refuses)
    assert cli.main(["selfcheck"]) == 2
    assert capsys.readouterr().err.strip() == "macl: error: index.k must be at least 1; got 0"
