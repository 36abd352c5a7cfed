"""What a benchmark trains: presets (how big a run is) and studies (which variants are compared).

A *variant* is a set of overrides of the config's ``train`` section; a *cell* is one variant trained
with one seed. The comparison trains MACL with the config's own settings (its ``train.loss_args`` when
``train.loss`` is ``macl``: the defaults chosen on the validation split and frozen there). The
ablations change one thing at a time around a fixed, config-independent base (:data:`ABLATION_BASE`,
MulSupCon plus PLR), so they stay the same experiment when the config's defaults are re-tuned; every
other training setting (backbone, optimiser, epochs…) comes from the config and the preset, so the same
studies run on any archive a config describes.

Identical cells are trained once: a cell is keyed by its fully resolved training configuration (loss
arguments completed with the loss's own defaults), so the ``reference`` study reuses the cells that the
comparison and the ablations already trained.
"""

from __future__ import annotations

import copy
import hashlib
import inspect
import json
from dataclasses import asdict, dataclass, field
from typing import Any

from macl.config import BCE, Config, TrainConfig, train_config
from macl.errors import ArgumentError
from macl.losses.registry import LOSSES

# Epochs of the standard preset: ResNet-18 from scratch at 96 px trains at ~20 img/s (two views) on the
# 2-core CPU, ~60 s per epoch of UC Merced's 1285 training images; 8 epochs and two evaluations make a
# cell ~9 minutes, the headline's 15 cells ~2 hours.
STANDARD_EPOCHS = 8
# How big a run is. ``quick`` fits every loss of the comparison, one seed, in ~25 minutes on a 2-core
# CPU (ResNet-18 from scratch at 64 px trains at ~76 img/s there with 2 views; 6 epochs of the 1285 UC
# Merced training images take ~100 s): the ablations' preset. ``standard`` is closer to how the losses are
# used (the repo's UC Merced config trains 96 px for 20 epochs) yet sized for the headline comparison
# (5 methods × 3 seeds) to finish in about two hours on that CPU. ``full`` is the paper-scale protocol,
# for a GPU.
PRESETS: dict[str, dict[str, Any]] = {
    "tiny": {"image_size": 32, "epochs": 1, "batch_size": 32, "workers": 0},
    "quick": {"image_size": 64, "epochs": 6, "batch_size": 128, "workers": 0},
    "standard": {"image_size": 96, "epochs": STANDARD_EPOCHS, "batch_size": 128, "workers": 1},
    "full": {"image_size": 224, "epochs": 100, "batch_size": 128, "workers": 8},
}

UNTRAINED = "untrained"  # a variant that is evaluated at its seeded initialisation, never trained
# The baselines of the comparison, with the names a reader knows them by (method.md).
BASELINES = {
    "mulsupcon": "MulSupCon",
    "supcon-any": "SupCon (positive: any shared label)",
    "supcon-all": "SupCon (positive: identical label sets)",
    "jaccard-supcon": "Jaccard-weighted SupCon",
    "simdis": "Similarity–Dissimilarity",
    "ntxent": "NT-Xent (self-supervised, labels unused)",
}
# method.md's suggested starting values: the "paper" setting of the reference study.
SUGGESTED: dict[str, Any] = {"tau": 0.1, "alpha": 0.5, "beta": 0.5, "gamma": 0.5, "dts": "pair", "pair_weighting": True}
# The ablation base: MACL with PLR on, DTS off, plain (method.md's "PLR only" row).
ABLATION_BASE = {"tau": 0.1, "alpha": 0.0, "beta": 0.0, "gamma": 0.5, "pair_weighting": True, "weighted": False}
# Ablations and the reference table use random batches unless they ablate the sampler.
RANDOM_BATCHES = {"sampler": False}
GRID = (-0.4, 0.0, 0.5)  # DTS alpha/beta: both signs (method.md); -0.5 twice would make 1 + alpha·J + beta·rho = 0
HYBRID_WEIGHTS = (0.0, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0)  # lambda of the BCE head; 0: the contrastive loss alone
# Views kept by the cross-batch memory (train.memory): none, two and eight batches of the quick preset.
MEMORY_SIZES = (0, 512, 2048)


@dataclass(frozen=True)
class Variant:
    """One configuration of a study: ``train`` overrides; ``loss_args`` are merged into MACL's."""

    name: str
    label: str
    train: dict[str, Any] = field(default_factory=dict)
    loss_args: dict[str, Any] = field(default_factory=dict)
    # The variant's coordinates in the study's figure (e.g. {"alpha": 0.5, "beta": -0.5}).
    coords: dict[str, float] = field(default_factory=dict)
    # MACL arguments start from the config's (the comparison) or from ABLATION_BASE (the ablations).
    from_config: bool = False


@dataclass(frozen=True)
class Study:
    """A named set of variants, compared against ``reference`` (paired tests are against it)."""

    name: str
    title: str
    variants: tuple[Variant, ...]
    reference: str
    figure: str  # 'bars' | 'heatmap' | 'curve'
    question: str = ""


def _macl(
    name: str,
    label: str,
    coords: dict[str, float] | None = None,
    train: dict | None = None,
    from_config: bool = False,
    **args: Any,
) -> Variant:
    return Variant(name, label, dict(train or {}, loss="macl"), args, dict(coords or {}), from_config)


def studies() -> dict[str, Study]:
    """Every study ``macl bench run --study NAME`` knows, in the order ``all`` runs them."""
    base = _macl("base", "base: PLR on, DTS off")
    out = [
        Study(
            "compare",
            "Loss comparison",
            (
                Variant(UNTRAINED, "untrained network", {"loss": "mulsupcon"}),
                _macl("macl", "MACL (the config's settings)", from_config=True),
                # the config's settings with rarity weighting forced off / on: one of them is "macl" itself
                # (trained once, shared), the other shows what weighting does at the frozen settings
                _macl("plain-macl", "plain MACL (config, weighted=False)", from_config=True, weighted=False),
                _macl("weighted-macl", "weighted MACL (config, weighted=True)", from_config=True, weighted=True),
                *(Variant(name, label, {"loss": name}) for name, label in BASELINES.items()),
                Variant(BCE, "BCE classifier", {"loss": BCE}),
            ),
            reference="macl",
            figure="bars",
            question="Does MACL beat its base (MulSupCon), the other contrastive losses and the BCE classifier?",
        ),
        Study(
            "headline",
            "Headline comparison: MACL as configured against its base, SupCon and the BCE classifier",
            (  # the config's MACL last: its BCE head weight is chosen by the quick "hybrid" study
                _macl(
                    "contrastive-macl",
                    "MACL without a BCE head (config, bce_weight=0)",
                    {"bce_weight": 0.0},
                    train={"bce_weight": 0.0},
                    from_config=True,
                ),
                Variant("mulsupcon", BASELINES["mulsupcon"], {"loss": "mulsupcon"}),
                Variant("supcon-any", BASELINES["supcon-any"], {"loss": "supcon-any"}),
                Variant(BCE, "BCE classifier", {"loss": BCE}),
                _macl("macl", "MACL (the config's settings)", from_config=True),
            ),
            reference="macl",
            figure="bars",
            question="Does a MACL-based method tie the BCE classifier everywhere and beat the best baseline "
            "on rare labels?",
        ),
        Study(
            "hybrid",
            "Hybrid: MACL (config) plus a lambda-weighted BCE head on the backbone",
            tuple(
                _macl(f"hybrid-{w:g}", f"lambda={w:g}", {"bce_weight": w}, train={"bce_weight": w}, from_config=True)
                for w in HYBRID_WEIGHTS
            ),
            reference="hybrid-0",
            figure="curve",
            question="How much BCE does the contrastive loss want beside it (chosen on validation)?",
        ),
        Study(
            "memory",
            "Cross-batch memory: MACL (config) with the embeddings of earlier batches as extra candidates",
            tuple(
                _macl(f"memory-{k}", f"memory={k}", {"memory": k}, train={"memory": k}, from_config=True)
                for k in MEMORY_SIZES
            ),
            reference="memory-0",
            figure="curve",
            question="Do rare labels gain from partners remembered from earlier batches (chosen on validation)?",
        ),
        Study(
            "choices",
            "The quick study's two MACL choices, re-checked: PLR off and alpha < 0 (config's settings otherwise)",
            (
                _macl("macl", "MACL (the config's settings)", from_config=True),
                _macl("choice-plr-on", "config with PLR on", from_config=True, pair_weighting=True),
                _macl("choice-alpha-0", "config with alpha = 0", {"alpha": 0.0}, from_config=True, alpha=0.0),
            ),
            reference="macl",
            figure="bars",
            question="Do the choices made on one quick-preset seed (PLR off, alpha < 0) hold with 3 seeds?",
        ),
        Study(
            "reference",
            "The specification's reference table, reproduced (random batches)",
            (
                Variant(UNTRAINED, "untrained network", {"loss": "mulsupcon", **RANDOM_BATCHES}),
                _macl(
                    "mulsupcon", "MulSupCon (= MACL with every part off, equal to 1e-6 by test)", pair_weighting=False
                ),
                _macl("macl-suggested", "MACL, suggested values (pair DTS, PLR on)", **SUGGESTED),
                _macl("weighted-suggested", "weighted MACL, suggested values", **SUGGESTED, weighted=True),
                _macl("dts-only", "MACL with DTS only (PLR off)", **(SUGGESTED | {"pair_weighting": False})),
                _macl("plr-only", "MACL with PLR only (alpha = beta = 0)", **(SUGGESTED | {"alpha": 0.0, "beta": 0.0})),
                _macl(
                    "weighted-plr",
                    "weighted MACL with PLR, no DTS",
                    **(SUGGESTED | {"alpha": 0.0, "beta": 0.0}),
                    weighted=True,
                ),
                Variant(BCE, "BCE classifier", {"loss": BCE, **RANDOM_BATCHES}),
            ),
            reference="mulsupcon",
            figure="bars",
            question="Does our code reproduce the specification's reference run (method.md, in docs/findings.md)?",
        ),
        Study(
            "plr",
            "Pairwise label reweighting on/off",
            (base, _macl("plr-off", "PLR off", pair_weighting=False)),
            reference="base",
            figure="bars",
        ),
        Study(
            "dts",
            "Dynamic temperature: alpha x beta (pair DTS)",
            tuple(
                _macl(
                    f"dts-a{a:+g}-b{b:+g}",
                    f"alpha={a:g}, beta={b:g}",
                    {"alpha": a, "beta": b},
                    alpha=a,
                    beta=b,
                    dts="pair",
                )
                for a in GRID
                for b in GRID
            ),
            reference="dts-a+0-b+0",
            figure="heatmap",
        ),
        Study(
            "dts-alpha",
            "Dynamic temperature: alpha alone (pair DTS, beta = 0)",
            tuple(
                _macl(f"dts-a{a:+g}-b+0", f"alpha={a:g}", {"alpha": a}, alpha=a, beta=0.0, dts="pair")
                for a in (-0.8, *GRID)
            ),
            reference="dts-a+0-b+0",
            figure="curve",
        ),
        Study(
            "dts-anchor",
            "Anchor-level DTS (one temperature per label-level anchor)",
            tuple(
                _macl(f"anchor-b{b:+g}", f"dts=anchor, beta={b:g}", {"beta": b}, alpha=0.0, beta=b, dts="anchor")
                for b in GRID
            ),
            reference="anchor-b+0",
            figure="curve",
        ),
        Study(
            "weighted",
            "Plain vs weighted MACL (rarity-weighted label anchors)",
            (base, _macl("weighted", "weighted MACL", weighted=True)),
            reference="base",
            figure="bars",
        ),
        Study(
            "sampler",
            "Label-aware batch sampler off/on",
            (base, _macl("sampler-on", "label-aware sampler (kappa=0.5)", train={"sampler": True})),
            reference="base",
            figure="bars",
        ),
        Study(
            "gamma",
            "Rarity exponent gamma (PLR weights)",
            tuple(_macl(f"gamma-{g:g}", f"gamma={g:g}", {"gamma": g}, gamma=g) for g in (0.0, 0.5, 1.0)),
            reference="gamma-0.5",
            figure="curve",
        ),
        Study(
            "tau",
            "Base temperature tau",
            tuple(_macl(f"tau-{t:g}", f"tau={t:g}", {"tau": t}, tau=t) for t in (0.05, 0.1, 0.2)),
            reference="tau-0.1",
            figure="curve",
        ),
        Study(
            "lr",
            "Learning rate",
            tuple(_macl(f"lr-{lr:g}", f"lr={lr:g}", {"lr": lr}, train={"lr": lr}) for lr in (3e-4, 1e-3, 3e-3)),
            reference="lr-0.001",
            figure="curve",
        ),
        Study(
            "tune",
            "Combinations of the parts that helped one at a time, with the sampler (chosen on validation)",
            (
                _macl("sampler-on", "PLR on, sampler", train={"sampler": True}),
                _macl("s-plr-off", "PLR off, sampler", train={"sampler": True}, pair_weighting=False),
                _macl(
                    "s-w", "PLR off, weighted, sampler", train={"sampler": True}, pair_weighting=False, weighted=True
                ),
                _macl(
                    "s-d",
                    "PLR off, alpha=-0.4, beta=0.5, sampler",
                    train={"sampler": True},
                    pair_weighting=False,
                    alpha=-0.4,
                    beta=0.5,
                ),
                _macl(
                    "s-wd",
                    "PLR off, weighted, alpha=-0.4, beta=0.5, sampler",
                    train={"sampler": True},
                    pair_weighting=False,
                    weighted=True,
                    alpha=-0.4,
                    beta=0.5,
                ),
            ),
            reference="sampler-on",
            figure="bars",
            question="The one-at-a-time ablations (seed 0, validation) found the sampler the largest gain, and PLR "
            "off, rarity weighting and alpha < 0 with beta > 0 smaller ones; do they add up?",
        ),
    ]
    return {study.name: study for study in out}


def resolve_train(config: Config, variant: Variant, preset: str, seed: int) -> TrainConfig:
    """The TrainConfig of a cell: config ``train`` ← preset ← variant overrides ← seed.

    MACL variants start from the config's MACL arguments (``from_config``, when the config trains MACL)
    or from :data:`ABLATION_BASE`, and change only what the variant names; any other loss starts from
    its own defaults.
    """
    if preset not in PRESETS:
        raise ArgumentError(f"unknown preset {preset!r}; choose one of {sorted(PRESETS)}")
    ablation = variant.train.get("loss") == "macl" and not variant.from_config
    fixed: dict[str, Any] = dict(RANDOM_BATCHES) if ablation else {}
    if not variant.from_config:  # the config's BCE head belongs to its MACL, not to the baselines
        fixed = fixed | {"bce_weight": 0.0}
    train = asdict(config.train) | PRESETS[preset] | fixed | copy.deepcopy(variant.train) | {"seed": seed}
    if train["loss"] != "macl":
        start: dict[str, Any] = {}
    elif variant.from_config:
        start = dict(config.train.loss_args) if config.train.loss == "macl" else {}
    else:
        start = dict(ABLATION_BASE)
    train["loss_args"] = start | dict(variant.loss_args)
    return train_config(train)


def canonical_loss_args(loss: str, args: dict[str, Any]) -> dict[str, Any]:
    """``args`` completed with the loss constructor's defaults (so equal losses get equal keys)."""
    if loss == BCE:
        return dict(args)
    params = inspect.signature(LOSSES[loss]).parameters
    defaults = {k: p.default for k, p in params.items() if p.default is not inspect.Parameter.empty}
    resolved = defaults | args
    if resolved.get("alpha") == 0 and resolved.get("beta") == 0:
        resolved["dts"] = "pair"  # without DTS the granularity changes nothing
    return resolved


# Training options added after the first benchmark: they enter a cell's key only when set away from
# these values (which reproduce the earlier behaviour), so cells trained before keep their keys.
LATER_OPTIONS: dict[str, Any] = {"normalization": "auto", "bce_weight": 0.0, "memory": 0, "sync_bn": False}
LATER_PROTOCOL_OPTIONS: dict[str, Any] = {"kind": "split", "query_fraction": 0.2, "split_seed": 24}


def _integral_floats_as_ints(value: Any) -> Any:
    """``10.0`` → ``10`` throughout nested dicts and lists (bools untouched)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _integral_floats_as_ints(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_integral_floats_as_ints(v) for v in value]
    return value


def cell_key(config: Config, train: TrainConfig, trained: bool, legacy_numbers: bool = False) -> str:
    """A short hash of everything that determines a cell's result (dataset, protocol, training).

    Numbers are hashed by value: ``--set train.bce_weight=10`` (an int) and ``bce_weight: 10.0`` in a
    config are the same cell. ``legacy_numbers`` gives the key of cells trained before that rule
    (2026-12-07), which hashed ``10`` and ``10.0`` apart; :func:`macl.bench.runner.cell_dir` still finds them.
    """
    spec = asdict(train)
    spec["loss_args"] = canonical_loss_args(train.loss, train.loss_args)
    spec.pop("eval_every")  # changes what is logged, not the result
    if spec["workers"] == 0:
        # Augmentations are drawn in the main process with 0 workers and in seeded worker processes
        # otherwise: the draws, hence the weights, depend on the worker count unless it is 0 (kept out
        # of the key then, so cells trained before this rule keep theirs).
        spec.pop("workers")
    for key, value in LATER_OPTIONS.items():
        if spec[key] == value:
            spec.pop(key)
    protocol = asdict(config.protocol)
    for key, value in LATER_PROTOCOL_OPTIONS.items():
        if protocol[key] == value:
            protocol.pop(key)
    payload = {
        "dataset": asdict(config.dataset),
        "protocol": protocol,
        "train": spec,
        "trained": trained,
    }
    if not legacy_numbers:
        payload = _integral_floats_as_ints(payload)
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:12]
