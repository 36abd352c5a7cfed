"""Augmentations for overhead imagery and the multi-view wrapper a contrastive loss needs.

Overhead images have no "up": flips and 90° rotations are label-preserving and free, unlike for
photographs. Crops are kept large (``scale`` from 0.5) because a multi-label image can lose a small
labelled object (a ship, a car) to an aggressive crop, turning its labels into noise. Colour jitter is
moderate: land-cover classes are partly defined by colour (water vs grass).

All transforms act on the sample dict of :class:`macl.data.base.MultiLabelDataset` and change only its
``'image'`` (float 3×H×W in [0, 1]). They are applied by wrapping a dataset (:class:`Transformed`), never
by setting a shared dataset's ``transforms``: one decoded archive serves training views, evaluation and
several benchmark cells at once. Evaluation needs no transform here: images are resized once, the
same way everywhere (:func:`macl.data.cache.resize_image`).
"""

from __future__ import annotations

from typing import Any

import torch
from torchvision.transforms import v2

from macl.data.base import ArchiveView, Sample, Transform


class RandomRotate90(torch.nn.Module):
    """Rotate by 0°, 90°, 180° or 270° with equal probability (exact: no interpolation)."""

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        k = int(torch.randint(0, 4, ()).item())
        return torch.rot90(image, k, dims=(-2, -1)) if k else image


def train_augmentation(size: int, crop_scale: tuple[float, float] = (0.5, 1.0), jitter: float = 0.3) -> v2.Compose:
    """Random resized crop to ``size``, flips, 90° rotations, colour jitter — one augmented view."""
    return v2.Compose(
        [
            v2.RandomResizedCrop(size, scale=crop_scale, antialias=True),
            v2.RandomHorizontalFlip(),
            v2.RandomVerticalFlip(),
            RandomRotate90(),
            v2.RandomApply([v2.ColorJitter(jitter, jitter, jitter, jitter / 4)], p=0.8),
        ]
    )


class MultiView:
    """``V`` independent augmentations of one image: ``sample['image']`` becomes (V, 3, H, W).

    A DataLoader then yields (B, V, 3, H, W); :func:`views_to_batch` turns it into the view-major
    (V·B, 3, H, W) batch and (V·B, C) labels the losses expect.
    """

    def __init__(self, transform: torch.nn.Module, n_views: int = 2) -> None:
        if n_views < 1:
            raise ValueError(f"n_views must be >= 1; got {n_views}")
        self.transform, self.n_views = transform, n_views

    def __call__(self, sample: Sample) -> Sample:
        image = sample["image"]
        return {**sample, "image": torch.stack([self.transform(image) for _ in range(self.n_views)])}

    def __repr__(self) -> str:
        return f"MultiView({self.transform!r}, n_views={self.n_views})"


def views_to_batch(images: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, V, 3, H, W), (B, C) → view-major (V·B, 3, H, W), (V·B, C): item ``m`` is image ``m mod B``."""
    b, v = images.shape[:2]
    return images.transpose(0, 1).reshape(v * b, *images.shape[2:]), labels.repeat(v, 1)


class Transformed(ArchiveView):
    """A view of ``dataset`` whose samples pass through ``transform``; the dataset itself is untouched."""

    def __init__(self, dataset: Any, transform: Transform) -> None:
        super().__init__(dataset)
        self.transform = transform

    def __getitem__(self, index: int) -> Sample:
        return self.transform(self.dataset[index])
