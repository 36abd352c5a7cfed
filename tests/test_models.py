"""Encoders: torchvision backbones without their classifier, heads, embedding spaces, weight files."""

from __future__ import annotations

import urllib.error

import pytest
import torch
import torchvision

from macl.errors import ArgumentError, MaclError, MissingFileError
from macl.models import Encoder, build_backbone, weights_statistics


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
    model, _, stats = build_backbone("resnet18", path)
    assert torch.equal(model.conv1.weight, source.conv1.weight)
    assert stats == weights_statistics("resnet18")  # a plain torchvision state dict: ImageNet statistics
    torch.save({"conv1.weight": source.conv1.weight}, tmp_path / "partial.pth")
    with pytest.raises(ArgumentError, match="does not fit resnet18"):
        build_backbone("resnet18", tmp_path / "partial.pth")
    with pytest.raises(MissingFileError, match="weights must be 'none', 'imagenet'"):
        build_backbone("resnet18", tmp_path / "missing.pth")


def test_imagenet_weights_without_network_say_how_to_supply_a_file(monkeypatch) -> None:
    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(torchvision.models._api, "load_state_dict_from_url", offline)
    with pytest.raises(
        MaclError, match=r"Download https://\S*resnet18\S* on a machine with internet and pass its path as weights"
    ):
        build_backbone("resnet18", "imagenet")


def test_unknown_backbone() -> None:
    with pytest.raises(ValueError, match="unknown backbone 'resnet19'"):
        build_backbone("resnet19")


def _conv1_input(model: Encoder, images: torch.Tensor) -> torch.Tensor:
    seen: list[torch.Tensor] = []
    handle = model.backbone.conv1.register_forward_hook(lambda module, args, out: seen.append(args[0].detach()))
    model.eval()(images)
    model.embed(images)
    handle.remove()
    assert torch.equal(seen[0], seen[1])  # training forward and embedding see the same tensor
    return seen[0]


def test_torchvision_weights_get_the_normalised_tensor(tmp_path) -> None:
    path = tmp_path / "resnet18.pth"
    torch.save(torchvision.models.resnet18().state_dict(), path)
    images = torch.rand(2, 3, 32, 32)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    pretrained = Encoder("resnet18", weights=path)
    assert torch.allclose(_conv1_input(pretrained, images), (images - mean) / std, atol=1e-6)
    assert pretrained.config["normalization"] == weights_statistics("resnet18")
    scratch = Encoder("resnet18")  # from scratch: no statistics to match, the [0, 1] image as it is
    assert torch.equal(_conv1_input(scratch, images), images) and scratch.config["normalization"] is None
    assert Encoder("resnet18", normalization="imagenet").config["normalization"] == weights_statistics("resnet18")
    forced_off = Encoder("resnet18", weights=path, normalization="none")
    assert torch.equal(_conv1_input(forced_off, images), images)


def test_imagenet_download_brings_its_statistics(monkeypatch) -> None:
    state = torchvision.models.resnet18().state_dict()
    monkeypatch.setattr(torchvision.models._api, "load_state_dict_from_url", lambda *args, **kwargs: state)
    enc = Encoder("resnet18", weights="imagenet")
    assert torch.equal(enc.backbone.conv1.weight, state["conv1.weight"])
    assert enc.config["normalization"] == weights_statistics("resnet18")


def test_weights_file_may_state_its_own_statistics(tmp_path) -> None:
    stats = {"mean": [0.3, 0.4, 0.5], "std": [0.1, 0.2, 0.3]}
    path = tmp_path / "own.pth"
    torch.save({"state_dict": torchvision.models.resnet18().state_dict(), "normalization": stats}, path)
    images = torch.rand(1, 3, 32, 32)
    expected = (images - torch.tensor(stats["mean"]).view(1, 3, 1, 1)) / torch.tensor(stats["std"]).view(1, 3, 1, 1)
    assert torch.allclose(_conv1_input(Encoder("resnet18", weights=path), images), expected, atol=1e-6)
    torch.save({"state_dict": torchvision.models.resnet18().state_dict(), "normalization": {"mean": [0]}}, path)
    with pytest.raises(ArgumentError, match="normalization"):
        Encoder("resnet18", weights=path)


def test_normalisation_survives_a_checkpoint(tmp_path) -> None:
    stats = {"mean": [0.3, 0.4, 0.5], "std": [0.1, 0.2, 0.3]}
    enc = Encoder("resnet18", out_dim=16, normalization=stats).eval()
    rebuilt = Encoder(**enc.config).eval()  # what loading a checkpoint does: config from the file, then weights
    rebuilt.load_state_dict(enc.state_dict())
    images = torch.rand(2, 3, 32, 32)
    assert torch.equal(rebuilt.embed(images), enc.embed(images))
    assert "normalize.mean" not in enc.state_dict()  # statistics travel in the config, not the weights
