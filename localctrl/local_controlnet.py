"""ControlNet as a local-control baseline (docs/method.md, baseline 6): control that acts only inside a mask.

Two ways to confine a ControlNet to a mask M, both training-free:
- "zero-condition": the ControlNet sees condition · M; its residuals are used as they are. A blank
  condition is not "no control": the ControlNet's encoder still reads the noisy latent and the prompt and
  its residuals still change the image (outside the mask too, which is what this baseline measures).
- "mask-residuals": the ControlNet sees the full condition; every residual it hands the UNet (one per skip
  connection, and the mid-block one) is multiplied by M resized to that residual (localctrl.masking, as for
  the adapter). An all-zeros mask gives exactly the text-only image.
A mask of None means control everywhere: both modes are then the stock diffusers ControlNet.
An inpainting ControlNet (lllyasviel/control_v11p_sd15_inpaint) takes instead an image with the pixels to repaint
set to -1 (`inpaint_condition`); the bench uses it, with latents blended outside the mask, as the preservation
upper bound.
Loading, building and the fit check against a UNet are in localctrl.models.controlnets.
"""

from typing import get_args

import torch
from diffusers import ControlNetModel
from torch import Tensor, nn

from localctrl.config import ControlNetMode, ResizeMode
from localctrl.errors import InputError
from localctrl.masking import check_control_inputs, check_resize_mode, masked


def inpaint_condition(image: Tensor, mask: Tensor) -> Tensor:
    """What an inpainting ControlNet takes: image (…, 3, H, W) in [0, 1] with the pixels where mask (…, 1, H, W) > 0.5
    set to -1 (the v1.1 inpaint model card's make_inpaint_condition)."""
    return torch.where(mask > 0.5, torch.full_like(image, -1.0), image)


class LocalControlNet(nn.Module):
    def __init__(self, controlnet: ControlNetModel, mode: ControlNetMode = "mask-residuals", resize: ResizeMode = "area"):
        super().__init__()
        if mode not in get_args(ControlNetMode):
            raise InputError(f"unknown ControlNet mode '{mode}'; expected one of {', '.join(get_args(ControlNetMode))}")
        check_resize_mode(resize)
        self.controlnet, self.mode, self.resize = controlnet, mode, resize

    def check_inputs(self, condition: Tensor, mask: Tensor | None) -> None:
        check_control_inputs(condition, mask, self.controlnet.config.conditioning_channels, "ControlNet")

    def forward(self, sample: Tensor, timestep: Tensor | float, text_embeddings: Tensor, condition: Tensor,
                mask: Tensor | None = None, scale: float = 1.0, added_cond_kwargs: dict | None = None
                ) -> tuple[list[Tensor], Tensor]:
        """(down residuals, mid residual) for the UNet's `down_block_additional_residuals` / `mid_block_additional_residual`.

        sample: the UNet's (scaled) latent input (N, 4, h, w); condition (N, C, H, W) in [0, 1] and mask
        (N, 1, H, W) at image resolution; scale: diffusers' `controlnet_conditioning_scale`; added_cond_kwargs: an SDXL
        ControlNet's pooled embedding and size numbers (localctrl.text_conditioning).
        """
        self.check_inputs(condition, mask)
        if self.mode == "zero-condition" and mask is not None:
            condition = condition * mask.to(condition.dtype)
        down, mid = self.controlnet(sample, timestep, encoder_hidden_states=text_embeddings, controlnet_cond=condition,
                                    conditioning_scale=scale, guess_mode=False, added_cond_kwargs=added_cond_kwargs,
                                    return_dict=False)
        if self.mode == "zero-condition" or mask is None:
            return list(down), mid
        return [masked(residual, mask, self.resize) for residual in down], masked(mid, mask, self.resize)
