"""Batched sampling with local control: many prompts, conditions and masks per UNet call.

What it shares with diffusers' `StableDiffusionAdapterPipeline` (and equals it image for image, see the
tests): CLIP text embeddings, CFG with the unconditional branch first, adapter features added through
`down_intrablock_additional_residuals` (a fresh list of clones per call), `randn_tensor` latents from one
generator per image. What it adds: features masked per image, a conditioning factor (the fraction of first
steps that get the control, T2I-Adapter's cond_tau), prompts of one batch encoded once per unique text,
requests without an adapter mixed into the same batch (their features are zero, which adds nothing), and
requests with different adapters in one batch (each adapter runs on its own requests; the UNet call is shared).
Requests may instead carry a LocalControlNet (docs/method.md, baseline 6): its residuals depend on the latents, so it
runs at every controlled step, in both CFG branches as `StableDiffusionControlNetPipeline` (guess_mode=False),
and its residuals go in through `down_block_additional_residuals` / `mid_block_additional_residual`.
A request may instead be blended (Blended Latent Diffusion, docs/method.md's training-free baseline): it is sampled
with control everywhere beside an uncontrolled twin (same prompt and seed, an extra row of the UNet batch), and after
every step its latents outside the mask are replaced by the twin's.
SDXL stacks sample the same way, as `StableDiffusionXLAdapterPipeline` / `StableDiffusionXLControlNetPipeline` (equal
image for image, see tests/localctrl/test_sampling_xl.py): the text conditioning (localctrl.text_conditioning) adds the
pooled embedding and the size numbers to every UNet and ControlNet call, and the VAE decodes in fp32.
Seed rule (README, "Training and sampling"): request k's latent comes from `torch.Generator("cpu").manual_seed(seed_k)`.
"""

from collections.abc import Iterator, Sequence
from contextlib import nullcontext
from dataclasses import dataclass

import diffusers
import torch
from diffusers.utils.torch_utils import randn_tensor
from rich.progress import Progress

from localctrl.config import Precision, SamplerSettings, Scheduler
from localctrl.errors import InputError
from localctrl.local_adapter import LocalAdapter
from localctrl.local_controlnet import LocalControlNet
from localctrl.masking import resize_mask
from localctrl.models.controlnets import check_controlnet_fits
from localctrl.models.stacks import Stack
from localctrl.text_conditioning import TextConditioning, TextEncoderCache

SCHEDULERS: dict[Scheduler, str] = {  # the setting's name → the diffusers scheduler class
    "ddim": "DDIMScheduler",
    "ddpm": "DDPMScheduler",
    "pndm": "PNDMScheduler",
    "euler": "EulerDiscreteScheduler",
    "euler-a": "EulerAncestralDiscreteScheduler",
    "dpm++": "DPMSolverMultistepScheduler",
    "unipc": "UniPCMultistepScheduler",  # ControlNet++'s evaluation samples ControlNets with it
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
    controlnet: LocalControlNet | None = None  # this request's ControlNet, instead of any adapter
    blend: torch.Tensor | None = None  # (1, H, W) in {0, 1}: keep this trajectory inside, an uncontrolled twin's outside

    def __post_init__(self):
        if self.adapter is not None and self.controlnet is not None:
            raise InputError(f"request '{self.prompt}' (seed {self.seed}) has both an adapter and a ControlNet: give one")

    def adapter_or(self, default: LocalAdapter | None) -> LocalAdapter | None:
        """The adapter controlling this request: its own, else the sampler's default, never one beside a ControlNet."""
        return None if self.controlnet is not None else self.adapter or default


PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def autocast(device: torch.device, precision: Precision):
    """The precision setting as an autocast context; fp32 is exact (the diffusers equality tests run at fp32)."""
    dtype = PRECISIONS[precision]
    return torch.autocast(device.type, dtype=dtype, enabled=dtype is not None)


def prepare_modules(stack: Stack, settings: SamplerSettings) -> None:
    """Apply the settings' memory format and compilation to the stack's modules (idempotent; they stay applied)."""
    if settings.channels_last:
        stack.unet.to(memory_format=torch.channels_last)
        stack.vae.to(memory_format=torch.channels_last)
    # nn.Module.compile wraps the module's call in place: the UNet keeps its config, device and dtype attributes.
    if settings.compile and getattr(stack.unet, "_compiled_call_impl", None) is None:
        stack.unet.compile()


def make_scheduler(stack: Stack, name: Scheduler):
    return getattr(diffusers, SCHEDULERS[name]).from_config(stack.scheduler.config)


def batches(requests: Sequence[Request], size: int) -> Iterator[Sequence[Request]]:
    for start in range(0, len(requests), size):
        yield requests[start : start + size]


def control_groups(chunk: Sequence[Request], model_of, scale: float) -> dict[tuple[torch.nn.Module, float], list[int]]:
    """Rows of the conditioned requests grouped by (control model, conditioning scale): one model call per group."""
    groups: dict[tuple[torch.nn.Module, float], list[int]] = {}
    for row, request in enumerate(chunk):
        model = model_of(request)
        if request.condition is not None and model is not None:
            groups.setdefault((model, scale if request.scale is None else request.scale), []).append(row)
    return groups


def stacked_inputs(chunk: Sequence[Request], rows: list[int], image_size: int, device, dtype
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """Conditions and masks of `rows` as batches; a missing mask is all ones (control everywhere)."""
    conditions = torch.stack([chunk[row].condition for row in rows])
    masks = torch.stack([torch.ones(1, image_size, image_size) if chunk[row].mask is None else chunk[row].mask for row in rows])
    return conditions.to(device, dtype), masks.to(device, dtype)


def adapter_features(default: LocalAdapter | None, chunk: Sequence[Request], image_size: int, scale: float, device, dtype
                     ) -> list[torch.Tensor] | None:
    """Masked, scaled features of a batch (computed once per image, not per step); None if nothing is controlled.

    Requests are grouped by (adapter, scale); each group's features land in its rows, other rows stay zero.
    """
    groups = control_groups(chunk, lambda request: request.adapter_or(default), scale)
    if not groups:
        return None
    features = None
    for (adapter, group_scale), rows in groups.items():
        conditions, masks = stacked_inputs(chunk, rows, image_size, device, dtype)
        with torch.no_grad():
            group_features = adapter(conditions, masks, scale=group_scale)
        if features is None:
            features = [torch.zeros(len(chunk), *f.shape[1:], device=device, dtype=f.dtype) for f in group_features]
        elif [f.shape[1:] for f in features] != [f.shape[1:] for f in group_features]:
            raise InputError("adapters mixed in one batch must produce feature maps of the same shapes")
        for full, part in zip(features, group_features):
            full[rows] = part
    return features


@dataclass
class ControlNetGroup:
    """The requests of a batch sharing one ControlNet and scale, with their inputs for both CFG branches."""

    controlnet: LocalControlNet
    scale: float
    rows: list[int]  # rows of the UNet batch: the unconditional branch's, then the conditional branch's
    conditions: torch.Tensor
    masks: torch.Tensor


def controlnet_groups(chunk: Sequence[Request], image_size: int, scale: float, branches: int, device, dtype
                      ) -> list[ControlNetGroup]:
    """The batch's ControlNet groups, prepared once per batch (the ControlNets themselves run at every step)."""
    groups = []
    for (controlnet, group_scale), rows in control_groups(chunk, lambda request: request.controlnet, scale).items():
        conditions, masks = stacked_inputs(chunk, rows, image_size, device, dtype)
        branch_rows = [row + branch * len(chunk) for branch in range(branches) for row in rows]
        groups.append(ControlNetGroup(controlnet, group_scale, branch_rows, conditions.repeat(branches, 1, 1, 1),
                                      masks.repeat(branches, 1, 1, 1)))
    return groups


def controlnet_residuals(groups: list[ControlNetGroup], model_input: torch.Tensor, timestep, text: TextConditioning) -> dict:
    """The UNet's ControlNet keyword arguments for this step ({} without ControlNets); rows without one get zeros."""
    if not groups:
        return {}
    down, mid = None, None
    for group in groups:
        rows_text = text[group.rows]
        group_down, group_mid = group.controlnet(model_input[group.rows], timestep, rows_text.context, group.conditions,
                                                 group.masks, scale=group.scale, added_cond_kwargs=rows_text.added_cond_kwargs())
        if down is None:  # every ControlNet was checked to fit the UNet, so all groups share these shapes
            down = [torch.zeros(len(model_input), *r.shape[1:], device=r.device, dtype=r.dtype) for r in group_down]
            mid = torch.zeros(len(model_input), *group_mid.shape[1:], device=group_mid.device, dtype=group_mid.dtype)
        for full, part in zip([*down, mid], [*group_down, group_mid]):
            full[group.rows] = part
    return {"down_block_additional_residuals": down, "mid_block_additional_residual": mid}


@dataclass
class Blends:
    """A batch's blended rows, their twins' rows (appended to the batch) and their masks at latent resolution."""

    rows: list[int]
    twins: list[int]
    masks: torch.Tensor  # (n, 1, h, w) in {0, 1}

    @staticmethod
    def of(chunk: Sequence[Request], latent_size: int, device, dtype) -> tuple[list[Request], "Blends | None"]:
        """The UNet batch (the chunk, then one uncontrolled twin per blended request) and its blends (None: none)."""
        rows = [row for row, request in enumerate(chunk) if request.blend is not None]
        if not rows:
            return list(chunk), None
        twins = [Request(chunk[row].prompt, chunk[row].seed) for row in rows]
        # Nearest keeps the latent mask binary, as Blended Latent Diffusion's downsampled mask.
        masks = resize_mask(torch.stack([chunk[row].blend for row in rows]).float(), (latent_size, latent_size), "nearest")
        return [*chunk, *twins], Blends(rows, list(range(len(chunk), len(chunk) + len(rows))), masks.to(device, dtype))

    def __call__(self, latents: torch.Tensor) -> torch.Tensor:
        latents = latents.clone()
        latents[self.rows] = self.masks * latents[self.rows] + (1 - self.masks) * latents[self.twins]
        return latents


def check_controls(stack: Stack, requests: Sequence[Request], adapter: LocalAdapter | None) -> None:
    """Fail before sampling: a condition with nothing to read it, or a ControlNet that does not fit the UNet."""
    if any(request.condition is not None and request.controlnet is None and request.adapter_or(adapter) is None
           for request in requests):
        raise InputError("requests carry conditions but no adapter was given")
    size = stack.image_size
    for request in requests:
        if request.blend is not None and tuple(request.blend.shape) != (1, size, size):
            raise InputError(f"request '{request.prompt}' (seed {request.seed}): blend mask has shape "
                             f"{tuple(request.blend.shape)}, expected (1, {size}, {size}) (the image's size)")
    for controlnet in {request.controlnet for request in requests if request.controlnet is not None}:
        check_controlnet_fits(controlnet.controlnet, stack.unet, stack.image_size, stack.vae_scale_factor)


@torch.no_grad()
def sample(stack: Stack, requests: Sequence[Request], adapter: LocalAdapter | None = None,
           settings: SamplerSettings = SamplerSettings(), progress: bool = True) -> torch.Tensor:
    """Generate every request; returns float images (N, 3, H, W) in [0, 1] (diffusers' `output_type="np"` values)."""
    unet = stack.unet
    device, dtype = unet.device, unet.dtype
    check_controls(stack, requests, adapter)
    prepare_modules(stack, settings)
    size = stack.image_size
    encode = TextEncoderCache(stack, device, dtype)
    guided = settings.guidance > 1
    controlled_steps = int(settings.steps * settings.conditioning_factor)
    outputs = []
    with Progress(disable=not progress) as bar, autocast(device, settings.precision):
        task = bar.add_task("sampling", total=len(requests))
        for asked in batches(requests, settings.batch_size):
            scheduler = make_scheduler(stack, settings.scheduler)
            scheduler.set_timesteps(settings.steps, device=device)
            latent_size = size // stack.vae_scale_factor
            chunk, blends = Blends.of(asked, latent_size, device, dtype)
            generators = [torch.Generator("cpu").manual_seed(request.seed) for request in chunk]
            latents = randn_tensor((len(chunk), unet.config.in_channels, latent_size, latent_size), generator=generators,
                                   device=device, dtype=dtype) * scheduler.init_noise_sigma
            text = encode([request.prompt for request in chunk])
            if guided:  # the unconditional branch first, as diffusers' pipelines
                text = TextConditioning.cat([encode.negative(settings.negative_prompt, len(chunk)), text])
            features = adapter_features(adapter, chunk, size, settings.scale, device, dtype)
            if features is not None and guided:
                features = [torch.cat([feature] * 2) for feature in features]  # both CFG branches are controlled
            controlnets = controlnet_groups(chunk, size, settings.scale, 2 if guided else 1, device, dtype)
            step_kwargs = {"generator": generators} if "generator" in scheduler.step.__code__.co_varnames else {}
            for index, timestep in enumerate(scheduler.timesteps):
                model_input = scheduler.scale_model_input(torch.cat([latents] * 2) if guided else latents, timestep)
                controlled = index < controlled_steps
                residuals = [f.clone() for f in features] if features is not None and controlled else None
                # After the controlled steps diffusers runs the ControlNet at scale 0, which adds exact zeros: skip it.
                control = controlnet_residuals(controlnets, model_input, timestep, text) if controlled else {}
                prediction = unet(model_input, timestep, **text.unet_kwargs(), down_intrablock_additional_residuals=residuals,
                                  **control).sample
                if guided:
                    unconditional, conditional = prediction.chunk(2)
                    prediction = unconditional + settings.guidance * (conditional - unconditional)
                latents = scheduler.step(prediction, timestep, latents, **step_kwargs).prev_sample
                if blends is not None:
                    latents = blends(latents)
            outputs.append(decode(stack, latents[: len(asked)]).cpu())
            bar.advance(task, len(asked))
    return torch.cat(outputs)


def decode(stack: Stack, latents: torch.Tensor) -> torch.Tensor:
    """Latents → float images in [0, 1]. A VAE marked `force_upcast` (SDXL's, which overflows in fp16) decodes in fp32,
    outside any autocast, as the SDXL pipelines do; it is moved to fp32 once and stays there (it is small)."""
    vae = stack.vae
    upcast = getattr(vae.config, "force_upcast", False)
    if upcast and vae.dtype != torch.float32:
        vae.to(dtype=torch.float32)
    with torch.autocast(latents.device.type, enabled=False) if upcast else nullcontext():
        images = vae.decode(latents.to(vae.dtype) / vae.config.scaling_factor).sample
    return (images / 2 + 0.5).clamp(0, 1).float()


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """[0, 1] float images → uint8, rounded as diffusers does before saving PNGs."""
    return (images * 255).round().to(torch.uint8)
