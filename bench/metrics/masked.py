"""Per-sample image similarity restricted to a region: PSNR, SSIM and LPIPS, for outside-mask preservation.

Images are float (N, 3, H, W) in [0, 1]; a region is (N, 1, H, W) in {0, 1}. Every function returns a (N,) tensor,
NaN where the region is empty (nothing to measure; aggregates skip NaN).
SSIM and LPIPS look at a neighbourhood (SSIM an 11-px window, LPIPS AlexNet's much wider receptive field), so
pixels near the region's border also see what lies across it; `exclude_band` removes such a band when wanted.
"""

import warnings
from pathlib import Path

import torch
from torch import Tensor, nn

from localctrl.models.weights import require
from localctrl.validation import dilate


def _region_mean(values: Tensor, region: Tensor) -> Tensor:
    """Mean of a per-pixel map (N, C, H, W) over the region's pixels and all channels."""
    region = region.to(values.device, values.dtype).expand_as(values)
    return (values * region).sum(dim=(1, 2, 3)) / region.sum(dim=(1, 2, 3))  # 0/0 → NaN for an empty region


def masked_psnr(a: Tensor, b: Tensor, region: Tensor) -> Tensor:
    """10·log10(1 / MSE) with the MSE over region pixels and channels (data range 1).

    Identical images in the region give +inf (kept as is per sample; aggregates cap it at bench.metrics.registry.PSNR_CAP_DB).
    """
    mse = _region_mean((a.double() - b.double()) ** 2, region)
    return (10 * torch.log10(1 / mse)).float()


def masked_ssim(a: Tensor, b: Tensor, region: Tensor) -> Tensor:
    """Mean over the region of torchmetrics' full SSIM map (Gaussian window 11, σ 1.5, data range 1), channels averaged.

    Any channel count works (edge maps are 1-channel). With a full region this is torchmetrics' SSIM of each sample.
    """
    from torchmetrics.functional.image import structural_similarity_index_measure  # lazily: torchmetrics takes seconds

    _, full = structural_similarity_index_measure(a.float(), b.float(), gaussian_kernel=True, sigma=1.5, kernel_size=11,
                                                  data_range=1.0, reduction="none", return_full_image=True)
    return _region_mean(full, region)


def load_lpips(random_weights: bool = False, device: str | torch.device = "cpu", seed: int = 0) -> "lpips.LPIPS":  # noqa: F821
    """LPIPS (AlexNet, v0.1) returning its spatial distance map; `.name` says which backbone it really has.

    Real: torchvision's ImageNet AlexNet from the torch hub cache only (MetricUnavailable when it is missing, so nothing
    downloads it), read with `torch.load(weights_only=True)` by us rather than by torchvision, which unpickles it.
    `random_weights=True`: a seeded random backbone ("lpips[random-alexnet]"), for mechanics and smoke suites only.
    LPIPS's own linear heads ship inside the lpips package either way.
    """
    import lpips  # lazily: it imports torchvision's model zoo, seconds that a cached rerun need not pay

    checkpoint = None if random_weights else require("LPIPS AlexNet backbone")
    with torch.random.fork_rng(devices=[]), warnings.catch_warnings():
        # lpips still calls torchvision's deprecated `pretrained=`; the warning is lpips's, not ours to act on
        warnings.filterwarnings("ignore", "Arguments other than a weight enum|The parameter 'pretrained'", UserWarning)
        torch.manual_seed(seed)
        net = lpips.LPIPS(net="alex", spatial=True, pnet_rand=True, verbose=False)
    if checkpoint is not None:
        load_alexnet_features(net.net, checkpoint)
    net.name = "lpips[random-alexnet]" if random_weights else "lpips[alexnet]"
    return net.eval().requires_grad_(False).to(device)


@torch.no_grad()
def load_alexnet_features(backbone: nn.Module, checkpoint: Path) -> None:
    """torchvision's AlexNet checkpoint into lpips's backbone, whose slices hold `features[i]` under the name "i"."""
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    convolutions = [(name, module) for part in backbone.children() for name, module in part.named_children()
                    if isinstance(module, nn.Conv2d)]
    for name, conv in convolutions:
        conv.weight.copy_(state[f"features.{name}.weight"])
        conv.bias.copy_(state[f"features.{name}.bias"])


@torch.no_grad()
def masked_lpips(a: Tensor, b: Tensor, region: Tensor, net: "lpips.LPIPS") -> Tensor:  # noqa: F821
    """Mean over the region of LPIPS's spatial map (upsampled by lpips to the image size); 0 for identical images."""
    param = next(net.parameters())
    distance = net(a.to(param.device, param.dtype), b.to(param.device, param.dtype), normalize=True)  # normalize: [0,1] in
    return _region_mean(distance.float().cpu(), region.cpu())


def exclude_band(region: Tensor, mask: Tensor, band_px: int) -> Tensor:
    """`region` without the pixels within band_px (chessboard distance) of the mask's edge, on either side of it.

    For the outside region 1 - M this removes a band of band_px pixels around the mask, so preservation skips the
    seam where a method may legitimately blend; the image border is not a mask edge and is kept.
    """
    if band_px <= 0:
        return region
    mask = mask.float()
    grown, shrunk = dilate(mask, band_px), 1 - dilate(1 - mask, band_px)
    return region * (1 - (grown - shrunk)).to(region.dtype)
