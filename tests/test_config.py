"""The typed configuration: every key and value checked at load time, the resolved config round-trips."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from macl.config import Config, IndexConfig, TrainConfig, load_config, to_dict, to_yaml
from macl.errors import ConfigError, MaclError, MissingFileError


def test_defaults_are_typed_sections() -> None:
    config = load_config()
    assert isinstance(config, Config) and isinstance(config.train, TrainConfig)
    assert isinstance(config.index, IndexConfig)
    assert config.dataset.name == "synthetic" and config.protocol.database == ["train", "val"]


def test_overrides_parse_as_yaml_and_ints_are_numbers() -> None:
    config = load_config(None, ["train.lr=1", "train.loss_args={alpha: -0.4}", "protocol.database=[train]"])
    assert config.train.lr == 1.0  # kept as written: benchmark cell keys hash the values as given
    assert config.train.loss_args == {"alpha": -0.4} and config.protocol.database == ["train"]


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("train.lr=abc", r"^train\.lr: expected a number, got 'abc' \(str\)$"),
        ("train.epochs=2.5", r"^train\.epochs: expected an integer"),
        ("train.sampler=3", r"^train\.sampler: expected true or false"),
        ("evaluate.rare_treshold=0.2", r"evaluate\.rare_treshold \(did you mean evaluate\.rare_threshold\?\)"),
        ("trian.lr=0.1", r"unknown key trian \(did you mean train\?\)"),
        ("index.k=0", r"^index\.k must be at least 1; got 0$"),
        ("index.backend=faiss", r"^index\.backend must be one of"),
        ("train.loss=macll", r"^train\.loss must be one of"),
        ("train.loss_args={alpah: 1}", r"train\.loss_args\.alpah for loss 'macl' \(did you mean \S+alpha\?"),
        ("dataset.args={num_image: 5}", r"args\.num_image for dataset 'synthetic' \(did you mean \S+num_images\?"),
        ("dataset.name=ucmerced", r"unknown dataset 'ucmerced'"),
        ("protocol.queries=tset", r"^protocol\.queries must name splits"),
        ("train.normalization=imagnet", r"^train\.normalization must be one of"),
        ("protocol.kind=oml", r"^protocol\.kind must be one of \('split', 'literature'\)"),
        ("protocol.query_fraction=1.5", r"^protocol\.query_fraction must lie in \(0, 1\)"),
        ("postprocess.whiten=-1", r"^postprocess\.whiten must not be negative; got -1$"),
        ("postprocess.fusion=1", r"^postprocess\.fusion must lie in \[0, 1\)"),
        ("train", r"must look like section\.key=value"),
    ],
)  # fmt: skip
def test_bad_values_name_the_key(override: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as err:
        load_config(None, [override])
    assert "\n" not in str(err.value)  # one line for the CLI
    assert isinstance(err.value, MaclError) and isinstance(err.value, ValueError)


def test_config_file_errors(tmp_path) -> None:
    with pytest.raises(MissingFileError, match=r"absent\.yaml"):
        load_config(tmp_path / "absent.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("train:\n  lr: [1, 2]\n")
    with pytest.raises(ConfigError, match=r"train\.lr: expected a number"):
        load_config(bad)
    bad.write_text("- a list\n")
    with pytest.raises(ConfigError, match="must hold a mapping of sections"):
        load_config(bad)


def test_resolved_config_round_trips(tmp_path) -> None:
    config = load_config(None, ["train.epochs=3", "train.loss=bce", "index.backend=hnsw"])
    text = to_yaml(config)
    data = yaml.safe_load(text)
    assert data["train"]["lr"] == TrainConfig().lr  # every default written out
    assert data["evaluate"]["rare_threshold"] == config.evaluate.rare_threshold
    path = tmp_path / "config.yaml"
    path.write_text(text)
    again = load_config(path)
    assert again == config and to_dict(again) == to_dict(config)


CONFIG_DIR = Path(__file__).parents[1] / "configs"
CONFIGS = sorted(CONFIG_DIR.glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_shipped_configs_are_valid(path: Path) -> None:
    load_config(path)


def test_synthetic_config_trains_with_the_frozen_ucm_settings() -> None:
    """The frozen defaults are checked on an archive the tuning never saw: only the data may differ."""
    frozen, check = (load_config(CONFIG_DIR / name).train for name in ("ucm.yaml", "synthetic.yaml"))
    assert to_dict(frozen) == to_dict(check)
