"""Feature extractors for FID / KID, interchangeable: `.name`, and `__call__(uint8 (N, 3, H, W)) -> float64 (N, D)`.

The name is what tables and MLflow record (`fid.features=<name>`), so a stand-in network can never pass for the real
one: "shapes-net" (FID-shapes, not Inception FID), "inception" (clean-fid), "random-inception" (smoke suites only).
"""

import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from cleanfid.inception_torchscript import InceptionV3W
from cleanfid.resize import build_resizer
from torch import Tensor, nn

from localctrl.models.weights import require

INCEPTION_SIZE = 299


class FeatureExtractor:
    """Runs `embed` (float32 batch on `device` → (B, D) tensor) over uint8 images in batches; returns float64 numpy."""

    def __init__(self, name: str, prepare: Callable[[Tensor], Tensor], embed: Callable[[Tensor], Tensor],
                 device: str | torch.device = "cpu", batch_size: int = 64):
        self.name, self.prepare, self.embed = name, prepare, embed
        self.device, self.batch_size = torch.device(device), batch_size

    @torch.no_grad()
    def __call__(self, images_uint8: Tensor) -> np.ndarray:
        if images_uint8.dtype != torch.uint8 or images_uint8.ndim != 4 or images_uint8.shape[1] != 3:
            got = f"{images_uint8.dtype} {tuple(images_uint8.shape)}"
            raise ValueError(f"{self.name} features take uint8 images (N, 3, H, W), got {got}")
        rows = [self.embed(self.prepare(chunk).to(self.device)).double().cpu() for chunk in images_uint8.split(self.batch_size)]
        return torch.cat(rows).numpy() if rows else np.zeros((0, 0))


def shapes_net_features(net, device: str | torch.device | None = None, batch_size: int = 256) -> FeatureExtractor:
    """shapes-net's penultimate features (FID-shapes), fed as localctrl.shapes.check does: uint8 / 255.

    The net is put in eval mode: with BatchNorm in training mode a feature would depend on its batch-mates.
    """
    net.eval()
    device = device if device is not None else next(net.parameters()).device
    net.to(device)
    return FeatureExtractor("shapes-net", lambda images: images.float() / 255, net.features, device, batch_size)


def clean_resize(images_uint8: Tensor) -> Tensor:
    """clean-fid's 'clean' mode resize: PIL bicubic to 299², per channel in float, not re-quantised; values in [0, 255]."""
    resize = build_resizer("clean")
    arrays = [resize(image.permute(1, 2, 0).numpy()) for image in images_uint8.cpu()]
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).float()


def inception_features(device: str | torch.device = "cpu", batch_size: int = 64) -> FeatureExtractor:
    """clean-fid's Inception (the StyleGAN2 TorchScript port of TF Inception, 2048-d pool features), 'clean' mode.

    The file is looked for where bench.pretrained lists it; missing, this raises MetricUnavailable (nothing downloads).
    """
    path: Path = require("Inception (clean-fid)")
    # InceptionV3W takes the folder and appends its fixed file name; a located file always has that name.
    with warnings.catch_warnings():  # torch 2.14 calls torch.jit deprecated; clean-fid's file format is TorchScript
        warnings.filterwarnings("ignore", "`torch.jit.load` is deprecated", FutureWarning)
        model = InceptionV3W(str(path.parent), download=False, resize_inside=False).eval().to(device)
    return FeatureExtractor("inception", clean_resize, model, device, batch_size)


class _RandomConvNet(nn.Module):
    """A small conv net on the Inception input (299², [0, 255]): cheap enough for CPU smoke suites."""

    def __init__(self, dim: int):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 16, 8, stride=8), nn.ReLU(), nn.Conv2d(16, dim, 4, stride=4), nn.ReLU())

    def forward(self, x: Tensor) -> Tensor:
        return self.body((x - 128) / 128).mean(dim=(2, 3))  # Inception's input scaling, then global average pooling


def random_inception_features(seed: int = 0, dim: int = 64, device: str | torch.device = "cpu",
                              batch_size: int = 64) -> FeatureExtractor:
    """Smoke suites only: clean-fid's resize, then a seeded random conv net. Named "random-inception" so results say so."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = _RandomConvNet(dim).eval().to(device)
    return FeatureExtractor("random-inception", clean_resize, model, device, batch_size)
