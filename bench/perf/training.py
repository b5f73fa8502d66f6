"""Training throughput: steady-state optimiser steps/s and peak memory of adapter training on a frozen base.

The step is `localctrl.train`'s own (`localctrl.train_step`: frozen modules in the mixed-precision dtype, adapter in
fp32 under autocast, VAE encode and text encoding per step, cubic timesteps, masked adapter features into the frozen
UNet, the z0 loss), then backward, clipping and AdamW, on synthetic batches: data rendering, validation and MLflow
logging are left out, and so is `localctrl.train` itself, whose MLflow import a bare GPU machine lacks.
Peak memory: torch.cuda.max_memory_allocated on CUDA; on CPU the process's peak RSS (VmHWM, reset before the
steps where Linux allows it, else the lifetime peak).
"""

import re
import resource
import time
from contextlib import contextmanager
from pathlib import Path

import torch
from diffusers import DDPMScheduler

from bench.perf.flops import synchronize
from bench.perf.timing import Timing
from localctrl.config import Z0Settings
from localctrl.local_adapter import LocalAdapter
from localctrl.models.adapters import build_adapter, default_kind
from localctrl.models.stacks import Stack
from localctrl.text_conditioning import TextEncoderCache
from localctrl.train_step import control_loss, freeze, noisy_latents

CAPTIONS = ["a red circle and a blue square", "a green triangle", "", "a yellow star on a grey background"]


@contextmanager
def peak_memory(device: torch.device):
    """Yields a dict that holds, on exit, `peak_memory_mb` and how it was measured (`memory`)."""
    found: dict = {}
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        found["memory_before_mb"] = torch.cuda.memory_allocated(device) / 2**20
        yield found
        found |= {"peak_memory_mb": torch.cuda.max_memory_allocated(device) / 2**20, "memory": "torch.cuda.max_memory_allocated"}
        return
    status, how = Path("/proc/self/status"), "process peak RSS since start (ru_maxrss)"
    try:
        Path("/proc/self/clear_refs").write_text("5")  # Linux: resets VmHWM to the current RSS
        how = "process peak RSS during the steps (VmHWM after a reset)"
        found["memory_before_mb"] = _status_kb(status, "VmRSS") / 1024
    except OSError:
        pass
    yield found
    peak_kb = _status_kb(status, "VmHWM") if "during" in how else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    found |= {"peak_memory_mb": peak_kb / 1024, "memory": how}


def _status_kb(status: Path, field: str) -> int:
    return int(re.search(rf"{field}:\s+(\d+)", status.read_text()).group(1))


def training_throughput(stack: Stack, device: str | torch.device, batch: int = 4, steps: int = 10, warmup: int = 3,
                        mixed_precision: torch.dtype | None = torch.bfloat16, checkpointing: bool = True, seed: int = 0) -> dict:
    """Optimiser steps/s (at the median step time, with the steps' spread) over `steps` timed steps after `warmup`
    steps, and the peak memory of all of them."""
    device = torch.device(device)
    frozen = mixed_precision or torch.float32
    freeze(stack, frozen, device)
    if checkpointing:
        stack.unet.enable_gradient_checkpointing()
    adapter = LocalAdapter(build_adapter(stack, default_kind(stack), in_channels=1, seed=seed)).to(device).train()
    optimizer = torch.optim.AdamW(adapter.parameters(), lr=8e-5, weight_decay=1e-2)
    noise_scheduler = DDPMScheduler.from_config(stack.scheduler.config)
    alphas = noise_scheduler.alphas_cumprod.to(device)
    encode_text = TextEncoderCache(stack, device, frozen)
    size, generator = stack.image_size, torch.Generator().manual_seed(seed)
    images = torch.rand(batch, 3, size, size, generator=generator).to(device, frozen)
    conditions = (torch.rand(batch, 1, size, size, generator=generator) > 0.8).float().to(device)
    masks = torch.zeros(batch, 1, size, size, device=device)
    masks[:, :, : size // 2] = 1
    captions = [CAPTIONS[k % len(CAPTIONS)] for k in range(batch)]
    z0 = Z0Settings()

    def step() -> None:
        latents, noise, timesteps, noisy = noisy_latents(stack, noise_scheduler, images, "cubic", generator)
        text = encode_text(captions)
        with torch.autocast(device.type, dtype=mixed_precision, enabled=mixed_precision is not None):
            terms = control_loss(stack, adapter, noise_scheduler, alphas, latents, noise, timesteps, noisy, text, conditions, masks,
                                 True, "area", z0)
        terms.loss.backward()
        torch.nn.utils.clip_grad_norm_(adapter.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    with peak_memory(device) as memory:
        for _ in range(warmup):
            step()
        synchronize(device)
        walls = []
        for _ in range(steps):  # each step timed on its own: their spread says how steady the rate is
            tic = time.perf_counter()
            step()
            synchronize(device)
            walls.append(time.perf_counter() - tic)
    timing = Timing(tuple(walls))
    per_step = timing.median
    return {"batch": batch, "steps": steps, "seconds": sum(walls), "step_seconds": per_step, "spread": timing.spread,
            "steps_per_s": 1 / per_step, "images_per_s": batch / per_step,
            "frozen_dtype": str(frozen).removeprefix("torch."), "gradient_checkpointing": checkpointing,
            "adapter_parameters": sum(p.numel() for p in adapter.parameters()), **memory}
