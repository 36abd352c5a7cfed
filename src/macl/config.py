"""The run configuration: one typed dataclass per section, read from YAML and ``--set`` overrides.

A configuration has six sections — ``dataset`` (which archive, where), ``protocol`` (which split
queries which), ``train`` (:class:`TrainConfig`), ``index``, ``evaluate`` and ``postprocess``
(:class:`macl.postprocess.PostProcessing`: what the evaluation, the index and every search apply to the
embeddings) — plus ``output``, the run folder. :func:`load_config` checks every key and value at load
time: an unknown key anywhere is an error that names it and the closest valid name, a value of the wrong
type names the key and the expected type, and values out of range (``index.k=0``) name the key and the
allowed range. A typo in a config
file therefore fails at start-up instead of silently training with a default.

The *resolved* configuration — every default filled in, :func:`to_dict` — is what a run folder records
(``config.yaml``) and what ``macl report``, ``search`` and ``index`` read back, so no command keeps its
own copy of a default.
"""

from __future__ import annotations

import copy
import difflib
import inspect
import types
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Union, get_args, get_origin, get_type_hints

import yaml

from macl.errors import ConfigError, MissingFileError
from macl.postprocess import PostProcessing

SPLIT_NAMES = ("train", "val", "test", "trainval", "all")
# faiss backends (macl.index.faiss_index) and Milvus; kept here so the config can be checked without faiss.
INDEX_BACKENDS = ("exact", "hnsw", "ivf", "sq8", "ivf-sq8", "hnsw-sq8", "ivf-pq", "milvus")
MILVUS_INDEX_TYPES = ("FLAT", "HNSW", "IVF_FLAT")
BCE = "bce"  # the multi-label classifier baseline: backbone + linear head + BCE, retrieval by backbone features
NORMALIZATIONS = ("auto", "none", "imagenet")
PROTOCOL_KINDS = ("split", "literature")


def _fail_unless(ok: bool, key: str, message: str) -> None:
    if not ok:
        raise ConfigError(f"{key} {message}")


def _check_options(given: dict[str, Any], allowed: set[str], prefix: str, owner: str) -> None:
    """Every key of ``given`` (a loss's or an archive's keyword arguments) is one ``owner`` accepts."""
    for key in given:
        if key not in allowed:
            raise ConfigError(
                f"unknown key {prefix}{key} for {owner}{_suggest(key, allowed, prefix)}; "
                f"its options: {', '.join(sorted(allowed))}"
            )


@dataclass
class DatasetConfig:
    """Which archive (``name``, a key of :data:`macl.data.registry.ARCHIVES`), where, and its options."""

    name: str = "synthetic"
    root: str | None = None
    args: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        from macl.data.registry import ARCHIVES, archive_options

        if self.name not in ARCHIVES:
            raise ConfigError(f"dataset.name: unknown dataset {self.name!r}{_suggest(self.name, ARCHIVES)}")
        _check_options(self.args, archive_options(self.name), "dataset.args.", f"dataset {self.name!r}")


@dataclass
class ProtocolConfig:
    """Which split queries which: UC Merced's is test against train + val.

    ``kind: literature`` is the protocol of the multi-label remote-sensing retrieval literature as
    OML's code runs it (Imbriaco et al., TGRS 2022; :mod:`macl.metrics.literature`): the ``queries``
    split alone is embedded, ``⌊query_fraction·N⌋`` of its images drawn with ``split_seed`` (OML's 24)
    query the rest of it, ``database`` is not used, and the literature's metrics are reported beside ours.
    """

    queries: str = "test"
    database: list[str] = field(default_factory=lambda: ["train", "val"])
    kind: str = "split"
    query_fraction: float = 0.2
    split_seed: int = 24

    def __post_init__(self) -> None:
        for key, split in [("protocol.queries", self.queries)] + [("protocol.database", s) for s in self.database]:
            _fail_unless(split in SPLIT_NAMES, key, f"must name splits from {SPLIT_NAMES}; got {split!r}")
        _fail_unless(bool(self.database), "protocol.database", "must name at least one split")
        _fail_unless(
            self.kind in PROTOCOL_KINDS, "protocol.kind", f"must be one of {PROTOCOL_KINDS}; got {self.kind!r}"
        )
        _fail_unless(
            0 < self.query_fraction < 1, "protocol.query_fraction", f"must lie in (0, 1); got {self.query_fraction}"
        )


@dataclass
class TrainConfig:
    """Everything that defines a training run (saved in every checkpoint).

    ``weights`` is ``'none'`` (from scratch), ``'imagenet'`` (torchvision's weights, downloaded) or the
    path of a weights file. ``normalization`` is the input normalisation the encoder applies:
    ``'auto'`` takes it from the weights (ImageNet mean/std for torchvision's weights and for a weights
    file that states none, the file's own when it states one, none from scratch).

    ``bce_weight`` (λ > 0) makes a *hybrid*: the contrastive loss on the projection head plus λ times a
    binary cross-entropy of an extra linear label classifier on the backbone feature — the backbone
    learns from pairs and from the labels directly (rare labels get a gradient in every batch that holds
    them, partner or not).

    ``memory`` (> 0) keeps that many embeddings of earlier global batches (cross-batch memory) as extra
    candidates of every anchor. ``batch_size`` is the *global* batch: under ``torchrun`` each of ``W``
    processes trains on ``batch_size / W`` images and the loss is computed over all of them
    (:mod:`macl.objective`); ``sync_bn`` makes batch normalisation use the statistics of the global batch
    too (GPUs only: torch's SyncBatchNorm does not run on the CPU).
    """

    loss: str = "macl"
    loss_args: dict[str, Any] = field(default_factory=dict)
    bce_weight: float = 0.0
    backbone: str = "resnet18"
    weights: str = "none"
    normalization: str = "auto"
    out_dim: int = 128
    embedding: str = "backbone"
    image_size: int = 96
    epochs: int = 20
    batch_size: int = 128
    n_views: int = 2
    optimizer: str = "adamw"
    lr: float = 1e-3
    weight_decay: float = 1e-4
    warmup_epochs: float = 1.0
    sampler: bool = False
    kappa: float = 0.5
    bf16: bool = False
    seed: int = 0
    workers: int = 0
    eval_every: int = 1
    memory: int = 0
    sync_bn: bool = False

    def __post_init__(self) -> None:
        from macl.losses import LOSSES

        losses = (*LOSSES, BCE)
        _fail_unless(self.loss in losses, "train.loss", f"must be one of {sorted(losses)}; got {self.loss!r}")
        if self.loss != BCE:
            _check_options(self.loss_args, loss_options(self.loss), "train.loss_args.", f"loss {self.loss!r}")
        choices: dict[str, tuple[str, ...]] = {
            "optimizer": ("adamw", "sgd"),
            "embedding": ("backbone", "projection"),
            "normalization": NORMALIZATIONS,
        }
        for key, allowed_values in choices.items():
            value = getattr(self, key)
            _fail_unless(value in allowed_values, f"train.{key}", f"must be one of {allowed_values}; got {value!r}")
        for key, low in (("epochs", 1), ("batch_size", 2), ("n_views", 1), ("image_size", 8), ("out_dim", 1)):
            _fail_unless(getattr(self, key) >= low, f"train.{key}", f"must be at least {low}; got {getattr(self, key)}")
        for key in ("workers", "warmup_epochs", "weight_decay"):
            _fail_unless(getattr(self, key) >= 0, f"train.{key}", f"must not be negative; got {getattr(self, key)}")
        _fail_unless(self.lr > 0, "train.lr", f"must be positive; got {self.lr}")
        _fail_unless(self.bce_weight >= 0, "train.bce_weight", f"must not be negative; got {self.bce_weight}")
        _fail_unless(
            self.loss != BCE or self.bce_weight == 0,
            "train.bce_weight",
            "is the weight of a BCE head added to a contrastive loss; the BCE baseline is one already",
        )
        _fail_unless(self.memory >= 0, "train.memory", f"must not be negative; got {self.memory}")
        _fail_unless(
            self.loss != BCE or self.memory == 0,
            "train.memory",
            "holds embeddings for a pair loss; the BCE baseline has no pairs",
        )
        _fail_unless(self.eval_every >= 1, "train.eval_every", f"must be at least 1; got {self.eval_every}")
        _fail_unless(0 <= self.kappa <= 1, "train.kappa", f"must lie in [0, 1]; got {self.kappa}")
        _fail_unless(
            self.loss != BCE or self.embedding == "backbone",
            "train.embedding",
            "must be 'backbone' with the BCE baseline (its logits are not an embedding)",
        )


@dataclass
class IndexConfig:
    """The retrieval index: backend, its build and search parameters, and how many hits a search returns.

    faiss backends (``exact``, ``hnsw``, ``ivf``, ``sq8``, ``ivf-sq8``, ``hnsw-sq8``, ``ivf-pq``) keep the
    index in the run folder; ``milvus`` stores it in a Milvus database at ``uri`` (a local milvus-lite
    ``.db`` file, default ``<output>/archive.db``, or a server such as ``http://host:19530``), in
    ``collection``, with the Milvus index type ``milvus_index``. ``rerank`` re-scores ``rerank·k``
    candidates of a compressed backend with the full vectors (0: off).
    """

    backend: str = "exact"
    k: int = 10
    hnsw_m: int = 32
    ef_search: int = 128
    nlist: int | None = None
    nprobe: int = 16
    pq_m: int = 32
    rerank: int = 0
    train_per_list: int = 64
    uri: str = ""
    collection: str = "archive"
    milvus_index: str = "HNSW"

    def __post_init__(self) -> None:
        _fail_unless(
            self.backend in INDEX_BACKENDS, "index.backend", f"must be one of {INDEX_BACKENDS}; got {self.backend!r}"
        )
        for key in ("k", "hnsw_m", "ef_search", "nprobe", "pq_m", "train_per_list"):
            _fail_unless(getattr(self, key) >= 1, f"index.{key}", f"must be at least 1; got {getattr(self, key)}")
        _fail_unless(self.nlist is None or self.nlist >= 1, "index.nlist", f"must be at least 1; got {self.nlist}")
        _fail_unless(self.rerank >= 0, "index.rerank", f"must not be negative; got {self.rerank}")
        _fail_unless(
            self.milvus_index in MILVUS_INDEX_TYPES,
            "index.milvus_index",
            f"must be one of {MILVUS_INDEX_TYPES}; got {self.milvus_index!r}",
        )


@dataclass
class EvaluateConfig:
    """Cut-offs of the @k metrics, and the training frequency at or below which a label counts as rare."""

    ks: list[int] = field(default_factory=lambda: [10, 20, 50, 100])
    rare_threshold: float = 0.1

    def __post_init__(self) -> None:
        _fail_unless(bool(self.ks) and min(self.ks) >= 1, "evaluate.ks", f"must be positive integers; got {self.ks}")
        _fail_unless(
            0 < self.rare_threshold < 1, "evaluate.rare_threshold", f"must lie in (0, 1); got {self.rare_threshold}"
        )


@dataclass
class Config:
    """A whole run: data, protocol, training, index and evaluation options, and the run folder."""

    dataset: DatasetConfig = field(default_factory=DatasetConfig)
    protocol: ProtocolConfig = field(default_factory=ProtocolConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    index: IndexConfig = field(default_factory=IndexConfig)
    evaluate: EvaluateConfig = field(default_factory=EvaluateConfig)
    postprocess: PostProcessing = field(default_factory=PostProcessing)
    output: str = "runs/default"

    @property
    def run_dir(self) -> Path:
        return Path(self.output)


def loss_options(name: str) -> set[str]:
    """Keyword arguments a loss of the registry accepts from a config (label statistics are filled in)."""
    from macl.losses import LOSSES

    params = inspect.signature(LOSSES[name]).parameters
    return {k for k, p in params.items() if p.kind is p.KEYWORD_ONLY or p.kind is p.POSITIONAL_OR_KEYWORD} - {
        "label_counts",
        "num_samples",
    }


def _suggest(key: str, valid: Any, prefix: str = "") -> str:
    close = difflib.get_close_matches(key, list(valid), n=1, cutoff=0.6)
    return f" (did you mean {prefix}{close[0]}?)" if close else ""


# --- checking values against the dataclasses' type hints -------------------------------------------------
def _describe(tp: Any) -> str:
    origin, args = get_origin(tp), get_args(tp)
    if origin in (Union, types.UnionType):
        return " or ".join("null" if a is type(None) else _describe(a) for a in args)
    if origin is list:
        return f"a list of {_describe(args[0]).removeprefix('an ').removeprefix('a ')}s"
    if origin is dict:
        return "a mapping"
    names = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}
    return names.get(tp, str(tp))


def _check(value: Any, tp: Any, key: str) -> Any:
    """``value`` if it is of type ``tp`` (ints are numbers; lists are checked item by item)."""
    origin, args = get_origin(tp), get_args(tp)
    ok = True
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for option in (a for a in args if a is not type(None)):
            try:
                return _check(value, option, key)
            except ConfigError:
                continue
        ok = False
    elif origin is list:
        if isinstance(value, list | tuple):
            return [_check(v, args[0], f"{key}[{i}]") for i, v in enumerate(value)]
        ok = False
    elif origin is dict:
        ok = isinstance(value, dict) and all(isinstance(k, str) for k in value)
    elif tp is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
    elif tp is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    else:
        ok = isinstance(value, tp)
    if not ok:
        raise ConfigError(f"{key}: expected {_describe(tp)}, got {value!r} ({type(value).__name__})")
    return copy.deepcopy(value)


def _build(cls: type, data: Any, where: str) -> Any:
    """An instance of dataclass ``cls`` from a mapping, every key and value checked."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where or 'the configuration'}: expected a mapping of keys, got {data!r}")
    hints = get_type_hints(cls)
    names = [f.name for f in fields(cls)]
    for key in data:
        if key not in names:
            raise ConfigError(
                f"unknown key {where}{key}{_suggest(str(key), names, where)}; valid keys: {', '.join(names)}"
            )
    values = {}
    for f in fields(cls):
        if f.name not in data:
            continue
        tp = hints[f.name]
        if isinstance(tp, type) and hasattr(tp, "__dataclass_fields__"):
            values[f.name] = _build(tp, data[f.name], f"{where}{f.name}.")
        else:
            values[f.name] = _check(data[f.name], tp, f"{where}{f.name}")
    return cls(**values)


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _parse_override(item: str) -> dict[str, Any]:
    """``train.epochs=5`` → ``{'train': {'epochs': 5}}`` (the value is parsed as YAML: numbers, lists…)."""
    key, sep, raw = item.partition("=")
    if not sep or not key:
        raise ConfigError(f"override {item!r} must look like section.key=value")
    try:
        value: Any = yaml.safe_load(raw) if raw else ""
    except yaml.YAMLError as err:
        raise ConfigError(f"{key}: cannot parse {raw!r} as a value ({err})") from err
    for part in reversed(key.split(".")):
        value = {part: value}
    return value


def load_config(path: Path | str | None = None, overrides: list[str] | None = None) -> Config:
    """Defaults ← YAML file ← ``section.key=value`` overrides, checked key by key (:class:`ConfigError`)."""
    raw: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise MissingFileError(f"config file {path} does not exist")
        try:
            loaded = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as err:
            raise ConfigError(f"{path} is not valid YAML: {err}") from err
        if not isinstance(loaded, dict):
            raise ConfigError(f"{path} must hold a mapping of sections, not {type(loaded).__name__}")
        raw = loaded
    for item in overrides or []:
        raw = _merge(raw, _parse_override(item))
    return _build(Config, raw, "")


def to_dict(config: Any) -> dict[str, Any]:
    """The resolved configuration (every default filled in) as plain data, as a run folder records it."""
    return asdict(config)


def to_yaml(config: Config) -> str:
    return yaml.safe_dump(to_dict(config), sort_keys=False)


def train_config(data: dict[str, Any]) -> TrainConfig:
    """A :class:`TrainConfig` from a checkpoint's or a config's ``train`` mapping, checked like a file."""
    return _build(TrainConfig, data, "train.")
