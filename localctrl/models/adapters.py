"""T2I-Adapters: build with seeded random weights, load, and check that they fit a UNet.

diffusers adds adapter feature k to the output of UNet down block k and silently ignores extra or missing
maps, so a mismatched adapter trains and samples without any error. `check_adapter_fits` makes it one.
"""

from pathlib import Path
from typing import get_args

import torch
from diffusers import T2IAdapter, UNet2DConditionModel

from localctrl.common.seeding import seeded
from localctrl.config import AdapterKind
from localctrl.errors import InputError
from localctrl.models.architectures import Architecture
from localctrl.models.convert import check_safetensors
from localctrl.models.weights import resolve_pretrained

Shape = tuple[int, int, int]  # (channels, height, width) of one feature map


class AdapterMismatchError(InputError):
    """An adapter whose feature maps do not line up with the UNet's down blocks."""


ADAPTER_KINDS: tuple[str, ...] = get_args(AdapterKind)


def adapter_config(block_out_channels: list[int], vae_scale_factor: int, kind: str) -> dict:
    """T2IAdapter kwargs whose feature maps line up with a UNet's down blocks (one map per block).

    Full: one width per down block (SD 1.x: [320, 640, 1280, 1280], 2 res blocks, docs/method.md's canny adapter).
    Light: one width fewer, its extra last map repeating the last width (SD 1.x: [320, 640, 1280], 4 res blocks).
    Full XL (SDXL-style UNets: 3 down blocks, the first without cross-attention): widths + the last one again,
    the extra map entering after the mid block; unshuffle by twice the VAE factor, as diffusers' XL adapters.
    Pixel-unshuffle by the VAE's factor puts the first map at latent resolution. Small (toy) UNets get 1 res block.
    """
    channels = list(block_out_channels)
    large = channels[0] >= 320
    if kind == "full":
        return dict(adapter_type="full_adapter", channels=channels, num_res_blocks=2 if large else 1, downscale_factor=vae_scale_factor)
    if kind == "light":
        if channels[-1] != channels[-2]:
            raise InputError(f"a light adapter repeats its last width, but the UNet's last two down blocks have {channels[-2:]} channels")
        return dict(adapter_type="light_adapter", channels=channels[:-1], num_res_blocks=4 if large else 1, downscale_factor=vae_scale_factor)
    if kind == "full_xl":
        if len(channels) != 3:
            raise InputError(f"a full_xl adapter fits SDXL-style UNets with 3 down blocks, not {len(channels)}")
        return dict(adapter_type="full_adapter_xl", channels=[*channels, channels[-1]], num_res_blocks=2 if large else 1,
                    downscale_factor=2 * vae_scale_factor)
    raise InputError(f"unknown adapter kind '{kind}'; known: {', '.join(ADAPTER_KINDS)}")


def default_kind(source) -> str:
    """The adapter type that fits `source` (an Architecture or a Stack): full_xl on SDXL, full on SD 1.x."""
    return "full_xl" if source.is_xl else "full"


def build_adapter(source, kind: str = "full", in_channels: int = 3, seed: int = 0) -> T2IAdapter:
    """A T2I-Adapter ("full", "light" or "full_xl") fitting `source` (an Architecture or a Stack), seeded random weights."""
    if source.is_xl and kind != "full_xl":  # else a shape mismatch error that does not say what to choose
        raise InputError(f"an SDXL base takes the full_xl adapter (the type of TencentARC's SDXL adapters), not '{kind}': "
                         "set adapter=full_xl")
    if isinstance(source, Architecture):
        channels, scale = source.unet["block_out_channels"], 2 ** (len(source.vae["block_out_channels"]) - 1)
    else:
        channels, scale = source.unet.config.block_out_channels, source.vae_scale_factor
    config = adapter_config(channels, scale, kind)
    with seeded(seed):
        return T2IAdapter(in_channels=in_channels, **config)


def load_adapter(name_or_path: str | Path, dtype: torch.dtype | None = None) -> T2IAdapter:
    """A T2I-Adapter from a diffusers folder or hub id (safetensors only: never unpickles)."""
    folder = resolve_pretrained(name_or_path, what="adapter")
    check_safetensors(folder, f"adapter {name_or_path}", name=str(name_or_path))  # a .bin-only folder: say what to do
    return T2IAdapter.from_pretrained(folder, torch_dtype=dtype, use_safetensors=True)


def adapter_feature_shapes(adapter: T2IAdapter, image_size: int) -> list[Shape]:
    """Shapes of the adapter's feature maps for a square `image_size` input.

    Runs the adapter once on its smallest valid input and scales the result: each map's size is the input
    size divided by a fixed factor, so this is exact for any size that is a multiple of the total factor.
    """
    step = adapter.total_downscale_factor
    if image_size % step:
        raise AdapterMismatchError(f"image size {image_size} is not a multiple of the adapter's total downscale factor {step}")
    parameter = next(adapter.parameters())
    probe = torch.zeros(1, adapter.config.in_channels, step, step, dtype=parameter.dtype, device=parameter.device)
    with torch.no_grad():
        features = adapter(probe)
    scale = image_size // step
    return [(f.shape[1], f.shape[2] * scale, f.shape[3] * scale) for f in features]


def unet_residual_shapes(unet: UNet2DConditionModel, latent_size: int) -> list[Shape]:
    """Shapes the UNet expects for `down_intrablock_additional_residuals`, one per down block.

    A cross-attention block adds the residual after its last resnet/attention pair (before downsampling);
    a plain down block adds it to its output (after downsampling) — see UNet2DConditionModel.forward.
    """
    shapes, size = [], latent_size
    for block, channels in zip(unet.down_blocks, unet.config.block_out_channels):
        downsamples = getattr(block, "downsamplers", None) is not None
        if getattr(block, "has_cross_attention", False):
            shapes.append((channels, size, size))
        else:
            shapes.append((channels, size // 2 if downsamples else size, size // 2 if downsamples else size))
        if downsamples:
            size //= 2
    return shapes


def check_adapter_fits(adapter: T2IAdapter, unet: UNet2DConditionModel, image_size: int, vae_scale_factor: int) -> None:
    """Raise `AdapterMismatchError` naming both shape lists unless feature k matches down block k."""
    got = adapter_feature_shapes(adapter, image_size)
    expected = unet_residual_shapes(unet, image_size // vae_scale_factor)
    # SDXL-style adapters may add one more map, which diffusers adds after the mid block if shapes match.
    fits = got == expected or (len(got) == len(expected) + 1 and got[:-1] == expected and got[-1] == expected[-1])
    if not fits:
        raise AdapterMismatchError(
            f"adapter feature maps {got} do not match the UNet's down-block residuals {expected} "
            f"(channels, height, width) at image size {image_size}; diffusers would silently ignore the difference."
        )
