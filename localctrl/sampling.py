"""Batched sampling with local control: many prompts, conditions and masks per UNet call.

What it shares with diffusers' `StableDiffusionAdapterPipeline` (and equals it image for image, see the
tests): CLIP text embeddings, CFG with the unconditional branch first, adapter features added through
`down_intrablock_additional_residuals` (a fresh list of clones per call), `randn_tensor` latents from one
generator per image. What it adds: features masked per image, a conditioning factor (the fraction of first
steps that get the control, T2I-Adapter's cond_tau), prompts of one batch encoded once per unique text,
requests without an adapter mixed into the same batch (their features are zero, which adds nothing).
Seed rule (DESIGN.md): request k's latent comes from `torch.Generator("cpu").manual_seed(seed_k)`.
"""

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import diffusers
import torch
from diffusers.utils.torch_utils import randn_tensor
from rich.progress import Progress

from localctrl.local_adapter import LocalAdapter
from localctrl.stacks import Stack

SCHEDULERS = {
    "ddim": "DDIMScheduler",
    "ddpm": "DDPMScheduler",
    "pndm": "PNDMScheduler",
    "euler": "EulerDiscreteScheduler",
    "euler-a": "EulerAncestralDiscreteScheduler",
    "dpm++": "DPMSolverMultistepScheduler",
}


@dataclass
class Request:
    """One image to generate."""

    prompt: str
    seed: int
    condition: torch.Tensor | None = None  # (C, H, W) in [0, 1]; None: no control for this image
    mask: torch.Tensor | None = None  # (1, H, W) in [0, 1]; None with a condition: control everywhere


@dataclass(frozen=True)
class SamplerSettings:
    scheduler: str = "ddim"
    steps: int = 30
    guidance: float = 7.5
    scale: float = 1.0  # adapter conditioning scale
    conditioning_factor: float = 1.0  # fraction of the first steps that receive the adapter features
    batch_size: int = 16
    negative_prompt: str = ""
    precision: str = "fp32"  # fp32 | bf16 | fp16: autocast dtype of the frozen modules (weights stay as loaded)


PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def autocast(device: torch.device, precision: str):
    """The precision setting as an autocast context; fp32 is exact (the diffusers equality tests run at fp32)."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision '{precision}'; expected one of {', '.join(PRECISIONS)}")
    dtype = PRECISIONS[precision]
    return torch.autocast(device.type, dtype=dtype, enabled=dtype is not None)


def make_scheduler(stack: Stack, name: str):
    if name not in SCHEDULERS:
        raise ValueError(f"unknown scheduler '{name}'; expected one of {', '.join(SCHEDULERS)}")
    return getattr(diffusers, SCHEDULERS[name]).from_config(stack.scheduler.config)


class TextEncoderCache:
    """Prompt → CLIP embedding (N, tokens, dim), each unique prompt encoded once per sampler call."""

    def __init__(self, stack: Stack, device: torch.device, dtype: torch.dtype):
        self.stack, self.device, self.dtype, self.cache = stack, device, dtype, {}

    @torch.no_grad()
    def __call__(self, prompts: Sequence[str]) -> torch.Tensor:
        missing = sorted(set(prompts) - self.cache.keys())
        if missing:
            ids = self.stack.token_ids(missing).to(self.device)
            embeddings = self.stack.text_encoder(ids)[0].to(self.dtype)
            self.cache.update(zip(missing, embeddings))
        return torch.stack([self.cache[prompt] for prompt in prompts])


def batches(requests: Sequence[Request], size: int) -> Iterator[Sequence[Request]]:
    for start in range(0, len(requests), size):
        yield requests[start : start + size]


def adapter_features(adapter: LocalAdapter, chunk: Sequence[Request], image_size: int, scale: float, device, dtype) -> list[torch.Tensor] | None:
    """Masked, scaled features of a batch (computed once per image, not per step); None if nothing is controlled."""
    if all(request.condition is None for request in chunk):
        return None
    channels = adapter.adapter.config.in_channels
    conditions, masks = [], []
    for request in chunk:
        if request.condition is None:  # no control: zero mask, zero features
            conditions.append(torch.zeros(channels, image_size, image_size))
            masks.append(torch.zeros(1, image_size, image_size))
        else:
            conditions.append(request.condition)
            masks.append(torch.ones(1, image_size, image_size) if request.mask is None else request.mask)
    with torch.no_grad():
        return adapter(torch.stack(conditions).to(device, dtype), torch.stack(masks).to(device, dtype), scale=scale)


@torch.no_grad()
def sample(stack: Stack, requests: Sequence[Request], adapter: LocalAdapter | None = None,
           settings: SamplerSettings = SamplerSettings(), progress: bool = True) -> torch.Tensor:
    """Generate every request; returns float images (N, 3, H, W) in [0, 1] (diffusers' `output_type="np"` values)."""
    unet = stack.unet
    device, dtype = unet.device, unet.dtype
    if adapter is None and any(request.condition is not None for request in requests):
        raise ValueError("requests carry conditions but no adapter was given")
    size = stack.image_size
    encode = TextEncoderCache(stack, device, dtype)
    guided = settings.guidance > 1
    controlled_steps = int(settings.steps * settings.conditioning_factor)
    outputs = []
    with Progress(disable=not progress) as bar, autocast(device, settings.precision):
        task = bar.add_task("sampling", total=len(requests))
        for chunk in batches(requests, settings.batch_size):
            scheduler = make_scheduler(stack, settings.scheduler)
            scheduler.set_timesteps(settings.steps, device=device)
            generators = [torch.Generator("cpu").manual_seed(request.seed) for request in chunk]
            latent_size = size // stack.vae_scale_factor
            latents = randn_tensor((len(chunk), unet.config.in_channels, latent_size, latent_size), generator=generators,
                                   device=device, dtype=dtype) * scheduler.init_noise_sigma
            embeddings = encode([request.prompt for request in chunk])
            if guided:
                embeddings = torch.cat([encode([settings.negative_prompt] * len(chunk)), embeddings])
            features = adapter_features(adapter, chunk, size, settings.scale, device, dtype) if adapter else None
            if features is not None and guided:
                features = [torch.cat([feature] * 2) for feature in features]  # both CFG branches are controlled
            step_kwargs = {"generator": generators} if "generator" in scheduler.step.__code__.co_varnames else {}
            for index, timestep in enumerate(scheduler.timesteps):
                model_input = scheduler.scale_model_input(torch.cat([latents] * 2) if guided else latents, timestep)
                residuals = [f.clone() for f in features] if features is not None and index < controlled_steps else None
                prediction = unet(model_input, timestep, encoder_hidden_states=embeddings,
                                  down_intrablock_additional_residuals=residuals).sample
                if guided:
                    unconditional, conditional = prediction.chunk(2)
                    prediction = unconditional + settings.guidance * (conditional - unconditional)
                latents = scheduler.step(prediction, timestep, latents, **step_kwargs).prev_sample
            images = stack.vae.decode(latents / stack.vae.config.scaling_factor).sample
            outputs.append((images / 2 + 0.5).clamp(0, 1).float().cpu())
            bar.advance(task, len(chunk))
    return torch.cat(outputs)


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """[0, 1] float images → uint8, rounded as diffusers does before saving PNGs."""
    return (images * 255).round().to(torch.uint8)
