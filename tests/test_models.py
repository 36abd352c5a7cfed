"""Encoders: torchvision backbones without their classifier, heads, embedding spaces, weight files."""

from __future__ import annotations

import urllib.error

import pytest
import torch
import torchvision

from macl.models import Encoder, build_backbone


@pytest.mark.parametrize(("name", "dim"), [("resnet18", 512), ("mobilenet_v3_small", 1024)])
def test_backbone_features_and_heads(name: str, dim: int) -> None:
    x = torch.randn(2, 3, 64, 64)
    enc = Encoder(name, out_dim=32).eval()
    assert enc.feature_dim == dim
    assert enc(x).shape == (2, 32)
    emb = enc.embed(x)
    assert emb.shape == (2, dim) and torch.allclose(emb.norm(dim=1), torch.ones(2))
    proj = Encoder(name, out_dim=32, embedding="projection").eval()
    assert proj.embed(x).shape == (2, 32) and proj.embedding_dim == 32


def test_classifier_head_for_bce_baseline() -> None:
    enc = Encoder("resnet18", head="classifier", out_dim=17).eval()
    assert enc(torch.randn(2, 3, 32, 32)).shape == (2, 17)
    assert enc.embed(torch.randn(2, 3, 32, 32)).shape == (2, 512)
    with pytest.raises(ValueError, match="embedding must be 'backbone'"):
        Encoder("resnet18", head="classifier", embedding="projection")


def test_local_weights_file_round_trip(tmp_path) -> None:
    source = torchvision.models.resnet18(num_classes=1000)
    path = tmp_path / "resnet18.pth"
    torch.save(source.state_dict(), path)
    model, _ = build_backbone("resnet18", path)
    assert torch.equal(model.conv1.weight, source.conv1.weight)
    torch.save({"conv1.weight": source.conv1.weight}, tmp_path / "partial.pth")
    with pytest.raises(ValueError, match="does not fit resnet18"):
        build_backbone("resnet18", tmp_path / "partial.pth")
    with pytest.raises(FileNotFoundError, match="weights must be 'none', 'imagenet'"):
        build_backbone("resnet18", tmp_path / "missing.pth")


def test_imagenet_weights_without_network_say_how_to_supply_a_file(monkeypatch) -> None:
    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(torchvision.models._api, "load_state_dict_from_url", offline)
    with pytest.raises(
        RuntimeError, match=r"Download https://\S*resnet18\S* on a machine with internet and pass its path as weights"
    ):
        build_backbone("resnet18", "imagenet")


def test_unknown_backbone() -> None:
    with pytest.raises(ValueError, match="unknown backbone 'resnet19'"):
        build_backbone("resnet19")
