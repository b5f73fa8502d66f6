"""The local adapter: a T2I-Adapter whose feature maps are masked (localctrl.masking) and scaled, per sample.

The masked maps enter the UNet as `down_intrablock_additional_residuals`. Saved in diffusers' adapter format, with
the mask resize mode and training facts in `localctrl.json` beside it (plain `T2IAdapter.from_pretrained` ignores it).
"""

import json
from pathlib import Path

import torch
from diffusers import T2IAdapter
from torch import Tensor, nn

from localctrl.common.files import read_json
from localctrl.config import ResizeMode
from localctrl.masking import check_control_inputs, check_resize_mode, masked

SETTINGS_FILE = "localctrl.json"


class LocalAdapter(nn.Module):
    def __init__(self, adapter: T2IAdapter, resize: ResizeMode = "area"):
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
        return [masked(feature, mask, self.resize) for feature in features]

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
        settings = read_json(settings_path, "adapter settings file") if settings_path.is_file() else {}
        return cls(load_adapter(folder, dtype=dtype), resize=settings.get("resize", "area"))
