"""Batched sampling with local control: many prompts, conditions and masks per UNet call.

What it shares with diffusers' `StableDiffusionAdapterPipeline` (and equals it image for image, see the
tests): CLIP text embeddings, CFG with the unconditional branch first, adapter features added through
`down_intrablock_additional_residuals` (a fresh list of clones per call), `randn_tensor` latents from one
generator per image. What it adds: features masked per image, a conditioning factor (the fraction of first
steps that get the control, T2I-Adapter's cond_tau), prompts of one batch encoded once per unique text,
requests without an adapter mixed into the same batch (their features are zero, which adds nothing), and
requests with different adapters in one batch (each adapter runs on its own requests; the UNet call is shared).
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
    adapter: LocalAdapter | None = None  # this request's adapter (default: the one given to `sample`)
    scale: float | None = None  # this request's conditioning scale (default: the settings' scale)


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


def adapter_features(default: LocalAdapter | None, chunk: Sequence[Request], image_size: int, scale: float, device, dtype
                     ) -> list[torch.Tensor] | None:
    """Masked, scaled features of a batch (computed once per image, not per step); None if nothing is controlled.

    Requests are grouped by (adapter, scale); each group's features land in its rows, other rows stay zero.
    """
    groups: dict[tuple[int, float], list[int]] = {}
    adapters = {}
    for row, request in enumerate(chunk):
        adapter = request.adapter or default
        if request.condition is not None:
            if adapter is None:
                raise ValueError("a request carries a condition but no adapter was given")
            key = (id(adapter), scale if request.scale is None else request.scale)
            groups.setdefault(key, []).append(row)
            adapters[id(adapter)] = adapter
    if not groups:
        return None
    features = None
    for (adapter_id, group_scale), rows in groups.items():
        adapter = adapters[adapter_id]
        conditions = torch.stack([chunk[row].condition for row in rows]).to(device, dtype)
        masks = torch.stack([torch.ones(1, image_size, image_size) if chunk[row].mask is None else chunk[row].mask for row in rows])
        with torch.no_grad():
            group_features = adapter(conditions, masks.to(device, dtype), scale=group_scale)
        if features is None:
            features = [torch.zeros(len(chunk), *f.shape[1:], device=device, dtype=f.dtype) for f in group_features]
        elif [f.shape[1:] for f in features] != [f.shape[1:] for f in group_features]:
            raise ValueError("adapters mixed in one batch must produce feature maps of the same shapes")
        for full, part in zip(features, group_features):
            full[rows] = part
    return features


@torch.no_grad()
def sample(stack: Stack, requests: Sequence[Request], adapter: LocalAdapter | None = None,
           settings: SamplerSettings = SamplerSettings(), progress: bool = True) -> torch.Tensor:
    """Generate every request; returns float images (N, 3, H, W) in [0, 1] (diffusers' `output_type="np"` values)."""
    unet = stack.unet
    device, dtype = unet.device, unet.dtype
    if any(request.condition is not None and (request.adapter or adapter) is None for request in requests):
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
            features = adapter_features(adapter, chunk, size, settings.scale, device, dtype)
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
