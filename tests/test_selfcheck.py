"""The `macl selfcheck` command (what `make demo` runs until the image pipeline lands)."""

from __future__ import annotations

import json

import pytest

from macl.cli import main


def test_selfcheck_trains_and_beats_untrained(tmp_path, capsys) -> None:
    out = tmp_path / "selfcheck.json"
    assert main(["selfcheck", "--losses", "mulsupcon", "--steps", "300", "--json", str(out)]) == 0
    rows = {row["loss"]: row for row in json.loads(out.read_text())}
    assert set(rows) == {"untrained encoder", "mulsupcon"}
    assert rows["mulsupcon"]["map"] > rows["untrained encoder"]["map"] + 0.1
    assert 0.0 <= rows["mulsupcon"]["rare_label_ap"] <= 1.0
    printed = capsys.readouterr().out
    assert "mulsupcon" in printed and "rare-label AP" in printed


def test_selfcheck_rejects_unknown_loss(capsys) -> None:
    with pytest.raises(SystemExit) as err:
        main(["selfcheck", "--losses", "nope"])
    assert err.value.code == 2
    assert "invalid choice: 'nope'" in capsys.readouterr().err
