"""One micro-batch of local-adapter training: noisy latents → masked adapter features → frozen UNet → loss terms.

Shared by `localctrl.train` (the full loop: data, accumulation, logging) and `bench.perf.training` (throughput on
a bare GPU machine), so the measured step is the trained one. No MLflow or accelerate here on purpose.
"""

import torch
from diffusers import DDPMScheduler

from localctrl.config import Z0Settings
from localctrl.local_adapter import LocalAdapter
from localctrl.masking import resize_mask
from localctrl.models.stacks import Stack
from localctrl.text_conditioning import TextConditioning
from localctrl.z0_loss import LossTerms, local_control_loss


def sample_timesteps(kind: str, n: int, total: int, generator: torch.Generator) -> torch.Tensor:
    """Cubic t = (1 − u³)·T favours noisy steps (T2I-Adapter's choice); uniform as an option."""
    u = torch.rand(n, generator=generator)
    t = (1 - u**3) * total if kind == "cubic" else u * total
    return t.long().clamp(0, total - 1)


def freeze(stack: Stack, dtype: torch.dtype, device) -> None:
    """Frozen base: no gradients, eval mode, on `device` in `dtype` (bf16/fp16 under mixed precision). A VAE marked
    `force_upcast` (SDXL's overflows in fp16) stays in fp32, as diffusers' SDXL adapter trainer keeps it."""
    for name, module in stack.modules().items():
        module.requires_grad_(False).eval().to(device)
        wanted = torch.float32 if name == "vae" and getattr(module.config, "force_upcast", False) else dtype
        if module.dtype != wanted:  # cast only when needed: diffusers warns on every dtype cast
            module.to(dtype=wanted)


@torch.no_grad()
def encode_posterior(stack: Stack, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The VAE posterior's (mean, std) of images in [0, 1], in the VAE's dtype: what the latent cache stores."""
    vae = stack.vae  # called outside the step's autocast: an fp32 VAE (SDXL's, `freeze`) encodes in fp32
    posterior = vae.encode(images.to(vae.dtype) * 2 - 1).latent_dist
    return posterior.mean, posterior.std


@torch.no_grad()
def sample_noisy(stack: Stack, scheduler: DDPMScheduler, posterior: tuple[torch.Tensor, torch.Tensor], timestep_kind: str,
                 generator: torch.Generator):
    """(latents z0, noise ε, timesteps t, z_t) from a posterior (mean, std), every random draw from `generator`, in this
    order: the latent sample, the noise, the timesteps (encoded now or read from the cache, the same draws).

    The latents are scaled by the stack's VAE factor (SD 1.x 0.18215, SDXL 0.13025) and cast to the UNet's dtype."""
    mean, std = posterior
    latents = mean + std * torch.randn(mean.shape, generator=generator).to(mean)
    latents = (latents * stack.vae.config.scaling_factor).to(stack.unet.dtype)
    noise = torch.randn(latents.shape, generator=generator).to(latents)
    timesteps = sample_timesteps(timestep_kind, len(latents), scheduler.config.num_train_timesteps, generator).to(latents.device)
    return latents, noise, timesteps, scheduler.add_noise(latents, noise, timesteps)


def noisy_latents(stack: Stack, scheduler: DDPMScheduler, images: torch.Tensor, timestep_kind: str, generator: torch.Generator):
    """`sample_noisy` of the images' posterior, encoded now."""
    return sample_noisy(stack, scheduler, encode_posterior(stack, images), timestep_kind, generator)


def drop_captions(captions: list[str], probability: float, generator: torch.Generator) -> list[str]:
    """Caption dropout: each caption replaced by "" with `probability` (drawn after `sample_noisy`'s draws)."""
    dropped = torch.rand(len(captions), generator=generator) < probability
    return ["" if drop else caption for drop, caption in zip(dropped, captions)]


def control_loss(stack: Stack, adapter: LocalAdapter, scheduler: DDPMScheduler, alphas: torch.Tensor, latents, noise, timesteps, noisy,
                 text: TextConditioning, conditions: torch.Tensor, masks: torch.Tensor, masked: bool, resize: str,
                 z0: Z0Settings | None) -> LossTerms:
    """Loss terms of one micro-batch (run it under the caller's autocast); gradients reach only the adapter."""
    frozen_dtype = stack.unet.dtype
    features = adapter(conditions, masks if masked else None)
    output = stack.unet(noisy, timesteps, **text.unet_kwargs(),
                        down_intrablock_additional_residuals=[f.to(frozen_dtype) for f in features]).sample
    prediction_type = scheduler.config.prediction_type
    target = {"epsilon": noise, "v_prediction": scheduler.get_velocity(latents, noise, timesteps), "sample": latents}[prediction_type]
    latent_mask = resize_mask(masks, latents.shape[-2:], resize)
    return local_control_loss(output, target, noisy, latents, timesteps, latent_mask, alphas, prediction_type, z0)
