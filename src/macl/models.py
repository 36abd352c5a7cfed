"""Encoders: a torchvision backbone without its classifier, plus a projection head (or a BCE head).

The paper's pipeline (its Figure 2): image → backbone → projection head → contrastive loss; retrieval
ranks by cosine similarity of embeddings. Which embedding to retrieve with — the backbone's pooled
feature or the head's output — is a choice (``embedding='backbone'|'projection'``): contrastive
learning papers since SimCLR retrieve/transfer with the backbone feature because the head discards
information the loss does not need. Measured on the demo run (synthetic archive, 64 px, 8 epochs of MACL;
test queries vs train+val): backbone mAP 0.882 / nDCG@10 0.459 / rare-label AP 0.220, projection 0.887 /
0.439 / 0.221 — a tie on binary mAP and rare labels, the backbone ahead on graded relevance — so the
default is ``'backbone'``, which also keeps a 512-d embedding that does not depend on the head.

Any torchvision classification model works by name (``resnet18``, ``resnet50``, ``efficientnet_b0``,
``convnext_tiny``, ``vit_b_16`` …): its last ``Linear`` layer is removed and its input width is the
feature dimension (models whose classifier has a hidden layer, like MobileNetV3 and VGG, keep it).

**Inputs that match the weights.** Images arrive as RGB in [0, 1]. Pretrained weights expect the
statistics they were trained with (ImageNet mean/std for torchvision's weights), so the encoder owns its
input normalisation (:class:`InputNormalization`, the first step of ``forward`` and ``embed``): it is
read from the weights' own metadata, stored in every checkpoint (``model_config['normalization']``) and
therefore applied identically in training, embedding, search by image and anything that loads the
model. From scratch there is none: the network learns from [0, 1] inputs directly.
"""

from __future__ import annotations

import urllib.error
from pathlib import Path
from typing import Any

import torch
import torchvision
from torch import Tensor, nn

from macl.errors import ArgumentError, MissingFileError

Stats = dict[str, list[float]]  # {"mean": [r, g, b], "std": [r, g, b]}

WEIGHTS_HELP = (
    "weights must be 'none', 'imagenet' (torchvision's download, needs internet) or the path of a local "
    "state-dict file (e.g. the torchvision .pth file downloaded on another machine)"
)


def _strip_classifier(model: nn.Module) -> int:
    """Replace the model's last ``Linear`` by ``Identity``; return its input width (the feature size)."""
    last_name, last = None, None
    for name, module in model.named_modules():
        if isinstance(module, nn.Linear):
            last_name, last = name, module
    if last is None or last_name is None:
        raise ValueError(f"{type(model).__name__} has no Linear classifier to remove")
    parent = model.get_submodule(last_name.rpartition(".")[0]) if "." in last_name else model
    setattr(parent, last_name.rpartition(".")[2], nn.Identity())
    return last.in_features


def weights_statistics(name: str) -> Stats:
    """The input mean/std of torchvision's pretrained weights of backbone ``name`` (metadata, no download)."""
    preset = torchvision.models.get_model_weights(name).DEFAULT.transforms()
    return {"mean": [float(v) for v in preset.mean], "std": [float(v) for v in preset.std]}


def build_backbone(name: str, weights: str | Path = "none") -> tuple[nn.Module, int, Stats | None]:
    """A torchvision model without its classifier, its feature dimension, and its weights' input statistics.

    ``weights='imagenet'`` uses torchvision's default pretrained weights (downloaded when online; with no
    network the error says how to supply a file). A path loads a local state dict (the classifier's
    keys, if present, are ignored): either a plain state dict, taken to be torchvision's ImageNet
    weights, or ``{"state_dict": ..., "normalization": {"mean": [...], "std": [...]} or None}`` stating
    its own input statistics. From scratch (``'none'``) the statistics are ``None``.
    """
    if name not in torchvision.models.list_models(module=torchvision.models):
        raise ArgumentError(f"unknown backbone {name!r}; any torchvision classification model, e.g. resnet18, resnet50")
    if str(weights) == "imagenet":
        spec = torchvision.models.get_model_weights(name).DEFAULT
        try:
            model = torchvision.models.get_model(name, weights=spec)
        except (urllib.error.URLError, OSError) as err:
            raise ArgumentError(
                f"could not download the ImageNet weights of {name} ({err}). Download {spec.url} on a machine "
                "with internet and pass its path as weights"
            ) from err
        return model, _strip_classifier(model), weights_statistics(name)
    model = torchvision.models.get_model(name, weights=None)
    dim = _strip_classifier(model)
    if str(weights) == "none":
        return model, dim, None
    path = Path(weights)
    if not path.is_file():
        raise MissingFileError(f"weights file {path} does not exist; {WEIGHTS_HELP}")
    state = torch.load(path, map_location="cpu", weights_only=True)
    stats: Stats | None = weights_statistics(name)
    if isinstance(state, dict) and "state_dict" in state:
        stats = _stated_statistics(state.get("normalization"), path) if "normalization" in state else stats
        state = state["state_dict"]
    own = model.state_dict()
    usable = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    missing = [k for k in own if k not in usable]
    if missing:
        raise ArgumentError(f"{path} does not fit {name}: {len(missing)} weights missing, e.g. {missing[:3]}")
    model.load_state_dict(usable)
    return model, dim, stats


def _stated_statistics(stated: Any, source: Path | str) -> Stats | None:
    """A ``{"mean": [3 floats], "std": [3 positive floats]}`` mapping (or None), checked."""
    if stated is None:
        return None
    try:
        mean, std = [float(v) for v in stated["mean"]], [float(v) for v in stated["std"]]
    except (TypeError, KeyError, ValueError) as err:
        raise ArgumentError(f"{source}: normalization must be {{'mean': [r, g, b], 'std': [r, g, b]}}") from err
    if len(mean) != 3 or len(std) != 3 or min(std) <= 0:
        raise ArgumentError(f"{source}: normalization needs 3 means and 3 positive stds; got {stated}")
    return {"mean": mean, "std": std}


class InputNormalization(nn.Module):
    """``(x - mean) / std`` per channel, or the identity when there are no statistics (from scratch).

    The statistics are not parameters and not in the state dict (old checkpoints load unchanged); they
    travel in the encoder's ``config`` instead.
    """

    mean: Tensor
    std: Tensor

    def __init__(self, stats: Stats | None) -> None:
        super().__init__()
        self.stats = stats
        mean, std = (stats["mean"], stats["std"]) if stats is not None else ([0.0] * 3, [1.0] * 3)
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)

    def forward(self, images: Tensor) -> Tensor:
        if self.stats is None:
            return images
        return (images - self.mean.to(images.dtype)) / self.std.to(images.dtype)


class ProjectionHead(nn.Sequential):
    """SupCon's head: Linear → ReLU → Linear, to ``out_dim`` (128)."""

    def __init__(self, in_dim: int, out_dim: int = 128, hidden_dim: int | None = None) -> None:
        hidden = hidden_dim or in_dim
        super().__init__(nn.Linear(in_dim, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, out_dim))


class Encoder(nn.Module):
    """Backbone + head. ``forward`` returns what the training loss consumes; ``embed`` what retrieval uses.

    Args:
        backbone: torchvision model name.
        weights: ``'none'``, ``'imagenet'`` or a state-dict path.
        head: ``'projection'`` (contrastive losses: MLP to ``out_dim``) or ``'classifier'`` (the BCE
            baseline: one linear layer to ``num_classes`` logits).
        out_dim: projection size, or the number of classes for ``head='classifier'``.
        embedding: ``'backbone'`` or ``'projection'`` — the space :meth:`embed` returns (``'projection'``
            is not available with a classifier head: logits are not an embedding).
        normalization: ``'auto'`` (the weights' own input statistics; none from scratch), ``'none'``,
            ``'imagenet'`` (torchvision's statistics for this backbone), or explicit
            ``{"mean": [...], "std": [...]}`` (how a checkpoint restores it).
        classes: with a projection head, the size of an extra linear label classifier on the backbone
            feature (the hybrid: contrastive loss on the projection plus a weighted BCE on the labels);
            0 for none. Its probabilities are what :meth:`predict_labels` returns.
    """

    def __init__(
        self,
        backbone: str = "resnet18",
        weights: str | Path = "none",
        head: str = "projection",
        out_dim: int = 128,
        embedding: str = "backbone",
        normalization: str | Stats | None = "auto",
        classes: int = 0,
    ) -> None:
        super().__init__()
        if head not in ("projection", "classifier"):
            raise ArgumentError(f"head must be 'projection' or 'classifier'; got {head!r}")
        if embedding not in ("backbone", "projection") or (head == "classifier" and embedding != "backbone"):
            raise ArgumentError(
                f"embedding must be 'backbone' (or 'projection' with a projection head); got {embedding!r}"
            )
        self.backbone, self.feature_dim, weight_stats = build_backbone(backbone, weights)
        if normalization == "auto":
            stats = weight_stats
        elif normalization == "imagenet":
            stats = weights_statistics(backbone)
        elif normalization == "none" or normalization is None:
            stats = None
        elif isinstance(normalization, dict):
            stats = _stated_statistics(normalization, "normalization")
        else:
            raise ArgumentError(f"normalization must be 'auto', 'none', 'imagenet' or mean/std; got {normalization!r}")
        self.normalize = InputNormalization(stats)
        self.head = (
            ProjectionHead(self.feature_dim, out_dim) if head == "projection" else nn.Linear(self.feature_dim, out_dim)
        )
        if classes and head != "projection":
            raise ArgumentError("an extra label classifier needs a projection head (the classifier head is one)")
        self.classifier = nn.Linear(self.feature_dim, classes) if classes else None
        self.embedding = embedding
        self.config: dict[str, Any] = {
            "backbone": backbone,
            "head": head,
            "out_dim": out_dim,
            "embedding": embedding,
            "normalization": stats,
            "classes": classes,
        }

    def forward(self, images: Tensor, with_logits: bool = False) -> Tensor | tuple[Tensor, Tensor]:
        """The head's output; with ``with_logits``, also the extra classifier's label logits (one backbone pass).

        One method for both, so that a ``DistributedDataParallel`` wrapper (which hooks ``forward``) sees
        the hybrid's pass too.
        """
        if not with_logits:
            return self.head(self.backbone(self.normalize(images)))
        return self.forward_hybrid(images)

    def forward_hybrid(self, images: Tensor) -> tuple[Tensor, Tensor]:
        """The head's output and the extra classifier's label logits, from one backbone pass."""
        if self.classifier is None:
            raise ArgumentError("this encoder has no extra label classifier (built with classes=0)")
        features = self.backbone(self.normalize(images))
        return self.head(features), self.classifier(features)

    @property
    def predicts_labels(self) -> bool:
        """Whether the model has a label classifier (the BCE baseline's head, or a hybrid's extra one)."""
        return self.classifier is not None or self.config["head"] == "classifier"

    @torch.no_grad()
    def predict_labels(self, images: Tensor) -> Tensor:
        """Per-label probabilities (sigmoid of the classifier's logits) of a batch, float32 on the CPU."""
        return self.embed_and_predict(images)[1]

    @torch.no_grad()
    def embed_and_predict(self, images: Tensor) -> tuple[Tensor, Tensor]:
        """:meth:`embed` and :meth:`predict_labels` of a batch from one backbone pass (late fusion needs both)."""
        classifier = self.classifier if self.classifier is not None else self.head
        if not self.predicts_labels or not isinstance(classifier, nn.Linear):
            raise ArgumentError("this model has no label classifier (train with the BCE baseline or bce_weight > 0)")
        features = self.backbone(self.normalize(images.to(next(self.parameters()).device)))
        probs = torch.sigmoid(classifier(features).float()).cpu()
        return self._embedding(features), probs

    @torch.no_grad()
    def embed(self, images: Tensor) -> Tensor:
        """L2-normalised retrieval embeddings of a batch (eval mode is the caller's business).

        The batch is moved to the model's device, so callers need not know where the model lives.
        """
        return self._embedding(self.backbone(self.normalize(images.to(next(self.parameters()).device))))

    def _embedding(self, features: Tensor) -> Tensor:
        if self.embedding == "projection":
            features = self.head(features)
        return nn.functional.normalize(features.float(), dim=1)

    @property
    def embedding_dim(self) -> int:
        return self.feature_dim if self.embedding == "backbone" else self.config["out_dim"]
