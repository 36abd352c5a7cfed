"""The hybrid: a contrastive loss on the projection head plus λ·BCE of an extra label classifier."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from macl.config import TrainConfig, load_config
from macl.errors import ArgumentError, ConfigError
from macl.losses import build_loss
from macl.models import Encoder
from macl.pipeline import load_model
from macl.train import Trainer, build_model
from tiny_archive import LabelledTensors


def test_encoder_with_label_classifier() -> None:
    enc = Encoder("resnet18", out_dim=16, classes=5).eval()
    x = torch.rand(3, 3, 32, 32)
    out, logits = enc.forward_hybrid(x)
    assert out.shape == (3, 16) and logits.shape == (3, 5)
    assert torch.allclose(out, enc(x))  # the head's output is the plain forward's
    probs = enc.predict_labels(x)
    assert probs.shape == (3, 5) and torch.allclose(probs, torch.sigmoid(logits.detach()))
    assert enc.predicts_labels and not Encoder("resnet18", out_dim=16).predicts_labels
    with pytest.raises(ArgumentError, match="no extra label classifier"):
        Encoder("resnet18", out_dim=16).forward_hybrid(x)
    with pytest.raises(ArgumentError, match="no label classifier"):
        Encoder("resnet18", out_dim=16).predict_labels(x)
    with pytest.raises(ArgumentError, match="needs a projection head"):
        Encoder("resnet18", head="classifier", out_dim=5, classes=5)
    # the BCE baseline predicts labels with its own head
    bce = Encoder("resnet18", head="classifier", out_dim=5).eval()
    assert torch.allclose(bce.predict_labels(x), torch.sigmoid(bce(x)))


def test_config_checks_the_weight() -> None:
    assert load_config(None, ["train.bce_weight=0.3"]).train.bce_weight == 0.3
    with pytest.raises(ConfigError, match=r"^train\.bce_weight must not be negative"):
        load_config(None, ["train.bce_weight=-1"])
    with pytest.raises(ConfigError, match=r"^train\.bce_weight is the weight of a BCE head"):
        load_config(None, ["train.loss=bce", "train.bce_weight=0.5"])


def test_hybrid_loss_is_contrastive_plus_weighted_bce(tmp_path) -> None:
    config = TrainConfig(loss="mulsupcon", bce_weight=0.7, image_size=24, batch_size=4, epochs=1, out_dim=8)
    trainer = Trainer(config, LabelledTensors(), None, tmp_path)
    assert trainer.model.classifier is not None and trainer.model.config["classes"] == 4
    images, labels = torch.rand(8, 3, 24, 24), torch.tensor([[1, 0, 1, 0], [1, 1, 0, 0]] * 4).float()
    trainer.model.eval()  # batch-norm in eval mode: both computations see the same statistics
    output, logits = trainer.model(images, with_logits=True)
    got = trainer.objective(output, labels, logits)
    features = trainer.model.backbone(images)
    expected = build_loss("mulsupcon")(
        trainer.model.head(features), labels
    ) + 0.7 * nn.functional.binary_cross_entropy_with_logits(trainer.model.classifier(features), labels)
    assert torch.allclose(got.backward, expected, atol=1e-6) and abs(got.value - expected.item()) < 1e-6
    got.backward.backward()
    assert trainer.model.classifier.weight.grad is not None and trainer.model.classifier.weight.grad.abs().sum() > 0


def test_hybrid_trains_and_its_checkpoint_keeps_the_classifier(tmp_path) -> None:
    config = TrainConfig(loss="macl", bce_weight=0.3, image_size=24, batch_size=4, epochs=1, out_dim=8)
    trainer = Trainer(config, LabelledTensors(), None, tmp_path)
    trainer.fit()
    model, state = load_model(tmp_path / "last.pt")
    assert state["model_config"]["classes"] == 4 and model.classifier is not None
    x = torch.rand(2, 3, 24, 24)
    assert torch.allclose(model.predict_labels(x), trainer.model.eval().predict_labels(x))
    # without a head the model is exactly the contrastive one (no classifier, same parameter count)
    plain = build_model(TrainConfig(loss="macl"), 4)
    assert plain.classifier is None and "classes" in plain.config and plain.config["classes"] == 0
