"""ControlNets: load, build with seeded random weights, and check that they fit a UNet.

diffusers adds ControlNet residual k to UNet skip connection k with `zip`, so a ControlNet built for another UNet
silently drops residuals; `check_controlnet_fits` makes it an error.
"""

from pathlib import Path

import torch
from diffusers import ControlNetModel, UNet2DConditionModel
from torch import nn

from localctrl.common.seeding import seeded
from localctrl.errors import InputError
from localctrl.models.adapters import Shape
from localctrl.models.convert import check_safetensors
from localctrl.models.weights import resolve_pretrained

# diffusers' (and lllyasviel's SD 1.x) conditioning embedding widths: 3 stride-2 convs for the VAE's factor 8.
SD_CONDITIONING_CHANNELS = (16, 32, 96, 256)


class ControlNetMismatchError(InputError):
    """A ControlNet whose residuals do not line up with the UNet's skip connections."""


def load_controlnet(name_or_path: str | Path, dtype: torch.dtype | None = None) -> ControlNetModel:
    """A ControlNet from a diffusers folder or a cached hub id (safetensors only: never unpickles)."""
    folder = resolve_pretrained(name_or_path, what="ControlNet")
    check_safetensors(folder, f"ControlNet {name_or_path}", name=str(name_or_path))  # a .bin-only folder: say what to do
    return ControlNetModel.from_pretrained(folder, torch_dtype=dtype, use_safetensors=True)


def conditioning_channels_for(block_out_channels, vae_scale_factor: int) -> tuple[int, ...]:
    """Conditioning-embedding widths downsampling by `vae_scale_factor` (one stride-2 conv per entry after the
    first): SD's widths, capped at the UNet's first width (the embedding is added to conv_in's output)."""
    downsamples = vae_scale_factor.bit_length() - 1
    if 2**downsamples != vae_scale_factor or downsamples >= len(SD_CONDITIONING_CHANNELS):
        raise ValueError(f"cannot build a ControlNet conditioning embedding for a VAE scale factor of {vae_scale_factor}")
    return tuple(min(width, block_out_channels[0]) for width in SD_CONDITIONING_CHANNELS[: downsamples + 1])


def build_controlnet(source, seed: int = 0, vae_scale_factor: int | None = None,
                     conditioning_channels: int = 3) -> ControlNetModel:
    """A ControlNet for `source` (a Stack, or a UNet with its `vae_scale_factor`), with seeded random weights.

    As diffusers' `ControlNetModel.from_unet`: the encoder starts as a copy of the UNet's. Unlike it, the
    zero convolutions (the residual projections and the embedding's last conv) are random too: a zero-initialised
    ControlNet adds nothing, which would make every mechanics test pass vacuously. The conditioning embedding
    gets He-initialised convs: with PyTorch's default init its conv stack shrinks the condition's signal ~100×,
    and the condition would hardly change the residuals.
    """
    if isinstance(source, UNet2DConditionModel):
        if vae_scale_factor is None:
            raise ValueError("building a ControlNet from a bare UNet needs the VAE scale factor (8 for SD 1.x)")
        unet = source
    else:
        unet, vae_scale_factor = source.unet, vae_scale_factor or source.vae_scale_factor
    widths = conditioning_channels_for(unet.config.block_out_channels, vae_scale_factor)
    with seeded(seed):
        controlnet = ControlNetModel.from_unet(unet, conditioning_embedding_out_channels=widths,
                                               conditioning_channels=conditioning_channels)
        for conv in [*controlnet.controlnet_down_blocks, controlnet.controlnet_mid_block]:
            conv.reset_parameters()
        embedding = controlnet.controlnet_cond_embedding
        for conv in [embedding.conv_in, *embedding.blocks, embedding.conv_out]:
            nn.init.kaiming_normal_(conv.weight, nonlinearity="relu")
    controlnet.to(unet.device)
    if controlnet.dtype != unet.dtype:  # diffusers warns on any dtype cast, even a no-op one
        controlnet.to(dtype=unet.dtype)
    return controlnet.eval()


def skip_shapes(model: UNet2DConditionModel | ControlNetModel, latent_size: int) -> list[Shape]:
    """Shapes of the skip connections of a UNet's encoder (or a ControlNet's copy of it), then the mid block's.

    conv_in's output, each resnet's output and each downsampler's output, block by block: the order in
    which diffusers adds `down_block_additional_residuals` to them (UNet2DConditionModel.forward).
    """
    size = latent_size
    shapes = [(model.conv_in.out_channels, size, size)]
    for block in model.down_blocks:
        shapes += [(resnet.out_channels, size, size) for resnet in block.resnets]
        for downsampler in block.downsamplers or []:
            size = (size + 1) // 2  # a stride-2 3×3 conv with padding 1
            shapes.append((downsampler.out_channels, size, size))
    return shapes + [(model.mid_block.resnets[-1].out_channels, size, size)]


def controlnet_residual_shapes(controlnet: ControlNetModel, latent_size: int) -> list[Shape]:
    """Shapes of a ControlNet's down residuals then its mid residual: its 1×1 projections of its own skip connections."""
    projections = [*controlnet.controlnet_down_blocks, controlnet.controlnet_mid_block]
    skips = skip_shapes(controlnet, latent_size)
    if len(projections) != len(skips):
        return [(conv.out_channels, 0, 0) for conv in projections]  # malformed: sizes unknown, never a fit
    return [(conv.out_channels, height, width) for conv, (_, height, width) in zip(projections, skips)]


def check_controlnet_fits(controlnet: ControlNetModel, unet: UNet2DConditionModel, image_size: int,
                          vae_scale_factor: int) -> None:
    """Raise `ControlNetMismatchError` unless the ControlNet reads image-size conditions into latent-size features
    and its residuals (down ones, then mid) match the UNet's skip connections (then mid block) one for one."""
    embedding_factor = 2 ** (len(controlnet.config.conditioning_embedding_out_channels) - 1)
    if embedding_factor != vae_scale_factor:
        raise ControlNetMismatchError(
            f"the ControlNet's conditioning embedding downsamples by {embedding_factor} "
            f"(conditioning_embedding_out_channels={tuple(controlnet.config.conditioning_embedding_out_channels)}), "
            f"but the VAE by {vae_scale_factor}: a condition at the image size would not land at the latent size."
        )
    latent_size = image_size // vae_scale_factor
    got, expected = controlnet_residual_shapes(controlnet, latent_size), skip_shapes(unet, latent_size)
    if got != expected:
        raise ControlNetMismatchError(
            f"ControlNet residuals {got} do not match the UNet's skip connections and mid block {expected} "
            f"(channels, height, width) at image size {image_size}; diffusers would silently drop or misplace them."
        )
