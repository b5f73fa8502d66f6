"""Local control itself: a control model's feature maps multiplied by the mask M, resized to each map.

f ← f · resize(M, size of f), per sample (a batch may mix masks), identically at training and at inference, before
classifier-free-guidance duplication (docs/method.md, "Architecture and feature masking"). The reference resized
with `nearest`, which moves box edges by up to 63 px at 8² and can erase thin masks; `area` (fractional coverage)
and `max` (any coverage) are offered, and the mode travels with a saved adapter.
"""

from typing import get_args

import torch.nn.functional as F
from torch import Tensor

from localctrl.config import ResizeMode
from localctrl.errors import InputError

RESIZE_MODES: tuple[str, ...] = get_args(ResizeMode)


def check_resize_mode(mode: str) -> None:
    if mode not in RESIZE_MODES:
        raise InputError(f"unknown mask resize mode '{mode}'; expected one of {', '.join(RESIZE_MODES)}")


def resize_mask(mask: Tensor, size: tuple[int, int], mode: ResizeMode) -> Tensor:
    """Masks (N, 1, H, W) in [0, 1] resized to `size`: nearest | area (coverage fraction) | max (any coverage)."""
    check_resize_mode(mode)
    if mode == "nearest":
        return F.interpolate(mask, size=size, mode="nearest")
    if mode == "area":
        return F.adaptive_avg_pool2d(mask, size)
    return F.adaptive_max_pool2d(mask, size)


def masked(feature: Tensor, mask: Tensor, mode: ResizeMode) -> Tensor:
    """A feature map (N, C, h, w) times the mask (N, 1, H, W) resized to (h, w)."""
    return feature * resize_mask(mask.to(feature.dtype), feature.shape[-2:], mode)


def check_control_inputs(condition: Tensor, mask: Tensor | None, channels: int, model: str) -> None:
    """A condition (N, channels, H, W) and an optional mask (N, 1, H, W) of the same size, for an adapter or ControlNet."""
    if condition.ndim != 4 or condition.shape[1] != channels:
        raise InputError(f"condition has shape {tuple(condition.shape)}: the {model} expects (N, {channels}, H, W)")
    if mask is not None and (mask.ndim != 4 or mask.shape[1] != 1 or mask.shape[0] != condition.shape[0]
                             or mask.shape[-2:] != condition.shape[-2:]):
        raise InputError(f"mask has shape {tuple(mask.shape)}: expected (N, 1, H, W) matching the condition "
                         f"{tuple(condition.shape)} (the mask must have the image's size)")
