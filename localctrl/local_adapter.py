"""Local control: a T2I-Adapter whose feature maps are multiplied by the mask, resized to each map.

f_k ← scale · f_k · resize(M, size of f_k), per sample (a batch may mix masks), identically at training and
at inference, before classifier-free-guidance duplication. The reference resized with `nearest`, which
moves box edges by up to 63 px at 8² and can erase thin masks; `area` (fractional coverage) and `max`
(any coverage) are offered, and the mode travels with the saved adapter.
"""

import json
from pathlib import Path

import torch
import torch.nn.functional as F
from diffusers import T2IAdapter
from torch import Tensor, nn

RESIZE_MODES = ("nearest", "area", "max")
SETTINGS_FILE = "localctrl.json"  # beside diffusers' config.json: plain T2IAdapter.from_pretrained ignores it


def resize_mask(mask: Tensor, size: tuple[int, int], mode: str) -> Tensor:
    """Masks (N, 1, H, W) in [0, 1] resized to `size`: nearest | area (coverage fraction) | max (any coverage)."""
    if mode == "nearest":
        return F.interpolate(mask, size=size, mode="nearest")
    if mode == "area":
        return F.adaptive_avg_pool2d(mask, size)
    if mode == "max":
        return F.adaptive_max_pool2d(mask, size)
    raise ValueError(f"unknown mask resize mode '{mode}'; expected one of {', '.join(RESIZE_MODES)}")


def check_resize_mode(mode: str) -> None:
    if mode not in RESIZE_MODES:
        raise ValueError(f"unknown mask resize mode '{mode}'; expected one of {', '.join(RESIZE_MODES)}")


def check_control_inputs(condition: Tensor, mask: Tensor | None, channels: int, model: str) -> None:
    """A condition (N, channels, H, W) and an optional mask (N, 1, H, W) of the same size, for an adapter or ControlNet."""
    if condition.ndim != 4 or condition.shape[1] != channels:
        raise ValueError(f"condition has shape {tuple(condition.shape)}: the {model} expects (N, {channels}, H, W)")
    if mask is not None and (mask.ndim != 4 or mask.shape[1] != 1 or mask.shape[0] != condition.shape[0]
                             or mask.shape[-2:] != condition.shape[-2:]):
        raise ValueError(f"mask has shape {tuple(mask.shape)}: expected (N, 1, H, W) matching the condition "
                         f"{tuple(condition.shape)} (the mask must have the image's size)")


class LocalAdapter(nn.Module):
    def __init__(self, adapter: T2IAdapter, resize: str = "area"):
        super().__init__()
        check_resize_mode(resize)
        self.adapter, self.resize = adapter, resize

    def check_inputs(self, condition: Tensor, mask: Tensor | None) -> None:
        check_control_inputs(condition, mask, self.adapter.config.in_channels, "adapter")

    def forward(self, condition: Tensor, mask: Tensor | None = None, scale: float | Tensor = 1.0) -> list[Tensor]:
        """Feature maps for the UNet's `down_intrablock_additional_residuals` (no mask: global control)."""
        self.check_inputs(condition, mask)
        features = [feature * scale for feature in self.adapter(condition)]
        if mask is None:
            return features
        return [feature * resize_mask(mask.to(feature.dtype), feature.shape[-2:], self.resize) for feature in features]

    def save_pretrained(self, folder: str | Path, **settings) -> Path:
        """diffusers' adapter folder (safetensors) plus the local settings (resize mode, training facts)."""
        folder = Path(folder)
        self.adapter.save_pretrained(folder, safe_serialization=True)
        (folder / SETTINGS_FILE).write_text(json.dumps({"resize": self.resize, **settings}, indent=2, sort_keys=True) + "\n")
        return folder

    @classmethod
    def from_pretrained(cls, folder: str | Path, dtype: torch.dtype | None = None) -> "LocalAdapter":
        from localctrl.models.adapters import load_adapter

        settings_path = Path(folder) / SETTINGS_FILE
        settings = json.loads(settings_path.read_text()) if settings_path.is_file() else {}
        return cls(load_adapter(folder, dtype=dtype), resize=settings.get("resize", "area"))
