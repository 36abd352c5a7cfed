"""Run configuration: defaults, a YAML file, and ``--set key.sub=value`` overrides, validated in one place.

A configuration has four sections — ``dataset`` (which archive, where), ``protocol`` (which split
queries which), ``train`` (a :class:`macl.train.TrainConfig`) and ``index``/``evaluate`` options — plus
``output``, the run folder. Unknown keys are errors that list the known ones, so a typo in a config file
fails at start-up instead of silently training with a default.
"""

from __future__ import annotations

import copy
from dataclasses import fields
from pathlib import Path
from typing import Any

import yaml

from macl.data.base import MultiLabelDataset, Transform
from macl.train import TrainConfig

DEFAULTS: dict[str, Any] = {
    "dataset": {"name": "synthetic", "root": None, "args": {}},
    "protocol": {"queries": "test", "database": ["train", "val"]},
    "train": {},
    "index": {"backend": "exact"},
    "evaluate": {"ks": [10, 20, 50, 100], "rare_threshold": 0.1},
    "output": "runs/default",
}


def _archives() -> dict[str, type[MultiLabelDataset]]:
    from macl.data.dlrsd import DLRSD
    from macl.data.folder import FolderArchive
    from macl.data.mlaid import MLAID
    from macl.data.synthetic import SyntheticAerial
    from macl.data.ucm import UCMerced
    from macl.data.whdld import WHDLD

    return {
        "synthetic": SyntheticAerial,
        "ucm": UCMerced,
        "dlrsd": DLRSD,
        "mlaid": MLAID,
        "whdld": WHDLD,
        "folder": FolderArchive,
    }


def _merge(base: dict[str, Any], extra: dict[str, Any], where: str = "") -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in extra.items():
        if where == "" and key not in DEFAULTS:
            raise ValueError(f"unknown config section {key!r}; sections are {sorted(DEFAULTS)}")
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value, f"{where}{key}.")
        else:
            out[key] = value
    return out


def _parse_override(item: str) -> dict[str, Any]:
    """``train.epochs=5`` → ``{'train': {'epochs': 5}}`` (the value is parsed as YAML: numbers, lists…)."""
    key, sep, raw = item.partition("=")
    if not sep or not key:
        raise ValueError(f"override {item!r} must look like section.key=value")
    value: Any = yaml.safe_load(raw) if raw else ""
    for part in reversed(key.split(".")):
        value = {part: value}
    return value


def load_config(path: Path | str | None = None, overrides: list[str] | None = None) -> dict[str, Any]:
    """Defaults ← YAML file ← overrides, then validated (train keys against :class:`TrainConfig`)."""
    config = copy.deepcopy(DEFAULTS)
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"config file {path} does not exist")
        loaded = yaml.safe_load(path.read_text()) or {}
        if not isinstance(loaded, dict):
            raise ValueError(f"{path} must hold a mapping of sections, not {type(loaded).__name__}")
        config = _merge(config, loaded)
    for item in overrides or []:
        config = _merge(config, _parse_override(item))
    known = {f.name for f in fields(TrainConfig)}
    unknown = sorted(set(config["train"]) - known)
    if unknown:
        raise ValueError(f"unknown train option(s) {unknown}; known: {sorted(known)}")
    if config["dataset"]["name"] not in _archives():
        raise ValueError(f"unknown dataset {config['dataset']['name']!r}; choose one of {sorted(_archives())}")
    return config


def train_config(config: dict[str, Any]) -> TrainConfig:
    return TrainConfig(**config["train"])


def open_split(config: dict[str, Any], split: str, transforms: Transform | None = None) -> MultiLabelDataset:
    """The configured archive's ``split``."""
    spec = config["dataset"]
    cls = _archives()[spec["name"]]
    args = dict(spec.get("args") or {})
    if spec.get("root") is not None:
        args["root"] = spec["root"]
    return cls(split=split, transforms=transforms, **args)


def open_splits(
    config: dict[str, Any], splits: list[str], transforms: Transform | None = None
) -> list[MultiLabelDataset]:
    return [open_split(config, s, transforms) for s in splits]
