"""The paper's objective: ‖ε̂ − ε‖² + λ(t)·‖M ⊙ (S(ẑ0) − S(z0))‖², computed per sample, vectorised.

ẑ0 is the initial latent the UNet implies at step t; S is an edge filter applied per latent channel before
masking. ẑ0 is not detached: the z0 term's gradient flows through the frozen UNet into the adapter.
"""

from dataclasses import dataclass

import kornia
import torch
import torch.nn.functional as F
from torch import Tensor

from localctrl.config import Z0Filter, Z0Settings


def _gather(alphas_cumprod: Tensor, timesteps: Tensor, like: Tensor) -> Tensor:
    return alphas_cumprod.to(like.device)[timesteps].to(like.dtype).view(-1, *([1] * (like.ndim - 1)))


def predicted_z0(model_output: Tensor, noisy: Tensor, timesteps: Tensor, alphas_cumprod: Tensor, prediction_type: str) -> Tensor:
    """ẑ0 from the UNet output at z_t = √ᾱ z0 + √(1−ᾱ) ε, for ε-, v- and sample-prediction."""
    alpha = _gather(alphas_cumprod, timesteps, noisy)
    if prediction_type == "epsilon":
        return (noisy - (1 - alpha).sqrt() * model_output) / alpha.sqrt()
    if prediction_type == "v_prediction":
        return alpha.sqrt() * noisy - (1 - alpha).sqrt() * model_output
    if prediction_type == "sample":
        return model_output
    raise ValueError(f"unknown prediction type '{prediction_type}'; expected epsilon, v_prediction or sample")


EDGE_FILTERS = {"sobel": kornia.filters.sobel, "laplacian": lambda latents: kornia.filters.laplacian(latents, kernel_size=5),
                "none": lambda latents: latents}


def edge_filter(latents: Tensor, name: Z0Filter) -> Tensor:
    """Per-channel edge map of latents (N, C, h, w): kornia's Sobel magnitude, a 5×5 Laplacian, or identity."""
    return EDGE_FILTERS[name](latents)


def z0_term(z0_pred: Tensor, z0: Tensor, latent_mask: Tensor, settings: Z0Settings) -> Tensor:
    """Per-sample ‖M ⊙ (S(ẑ0) − S(z0))‖², averaged over the image or over the mask (× channels)."""
    squared = ((edge_filter(z0_pred, settings.filter) - edge_filter(z0, settings.filter)) * latent_mask).pow(2)
    if settings.reduction == "image-mean":
        return squared.mean(dim=(1, 2, 3))
    area = latent_mask.expand_as(squared).sum(dim=(1, 2, 3))
    return squared.sum(dim=(1, 2, 3)) / area.clamp(min=1e-8)


def z0_weight(timesteps: Tensor, alphas_cumprod: Tensor, settings: Z0Settings) -> Tensor:
    """λ(t) per sample: constant, inside [t_lo, t_hi] only, or scaled by the noise level 1 − ᾱ_t."""
    weight = torch.full(timesteps.shape, settings.weight, dtype=torch.float32, device=timesteps.device)
    if settings.weighting == "window":
        low, high = settings.window
        return weight * ((timesteps >= low) & (timesteps <= high)).float()
    if settings.weighting == "noise":
        return weight * (1 - alphas_cumprod.to(timesteps.device)[timesteps].float())
    return weight


@dataclass
class LossTerms:
    loss: Tensor  # what is minimised
    loss_simple: Tensor  # ‖ε̂ − ε‖² (or the v / sample target), batch mean
    loss_z0: Tensor  # the unweighted z0 term, batch mean


def local_control_loss(model_output: Tensor, target: Tensor, noisy: Tensor, z0: Tensor, timesteps: Tensor, latent_mask: Tensor,
                       alphas_cumprod: Tensor, prediction_type: str, settings: Z0Settings | None) -> LossTerms:
    """The training objective; `settings=None` (or disabled, or λ = 0) gives the plain diffusion loss."""
    simple = F.mse_loss(model_output.float(), target.float(), reduction="none").mean(dim=(1, 2, 3))
    if settings is None or not settings.enabled or settings.weight == 0:
        return LossTerms(simple.mean(), simple.mean(), torch.zeros((), device=simple.device))
    z0_pred = predicted_z0(model_output.float(), noisy.float(), timesteps, alphas_cumprod, prediction_type)
    term = z0_term(z0_pred, z0.float(), latent_mask.float(), settings)
    total = simple + z0_weight(timesteps, alphas_cumprod, settings) * term
    return LossTerms(total.mean(), simple.mean(), term.mean())
