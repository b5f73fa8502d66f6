"""Train shapes-base from scratch on the shapes world: the VAE first, then the UNet with its text encoder.

`pretrain(out, config)` is seeded, shows progress, logs to MLflow and checkpoints every few hundred steps;
called again on the same folder it resumes where it stopped (the same batches, the same final weights).
Recipe (docs/method.md, "The shapes world"): VAE with its log-variance bias at −6 (near-deterministic posterior:
fixes the colour drift of a default init), L1+L2 loss and gradient clipping; UNet with ε-prediction,
min-SNR-5 weighting, AdamW with warm-up and cosine decay, EMA, 10% caption dropout, cached latents.
"""

import json
import math
import time
from pathlib import Path

import mlflow
import torch
import torch.nn.functional as F
from diffusers import DDPMScheduler
from diffusers.training_utils import EMAModel, compute_snr
from pydantic import ConfigDict
from rich.progress import Progress

from localctrl.common.checkpoints import load_training_state, save_training_state, step_generator
from localctrl.common.files import read_json, write_text
from localctrl.common.tracking import start_run
from localctrl.config import Section, describe_changes
from localctrl.errors import InputError
from localctrl.models.stacks import Stack
from localctrl.shapes.base_model import build_untrained_base
from localctrl.shapes.render import render_images
from localctrl.shapes.scene import WorldConfig, split_scenes

EXPERIMENT = "shapes-pretrain"


class PretrainConfig(Section):
    model_config = ConfigDict(frozen=True)
    seed: int = 0
    world_seed: int = 0
    train_items: int = 40_000  # train-split scenes rendered once and kept in memory
    vae_steps: int = 1500
    vae_batch: int = 32
    vae_lr: float = 1e-3
    vae_kl_weight: float = 1e-6
    unet_steps: int = 6000
    unet_batch: int = 64
    unet_lr: float = 8e-4
    warmup_steps: int = 200
    weight_decay: float = 0.01
    min_snr_gamma: float = 5.0
    ema_decay: float = 0.999
    caption_dropout: float = 0.1
    checkpoint_every: int = 250
    log_every: int = 25


def render_train_set(config: PretrainConfig, world: WorldConfig = WorldConfig()) -> tuple[torch.Tensor, list[str]]:
    """The first `train_items` train-split scenes of world `world_seed`: uint8 (N, 3, H, W) and captions."""
    scenes = [scene for _, scene in split_scenes(config.world_seed, "train", config.train_items, world)]
    return render_images(scenes, world.size), [scene.caption for scene in scenes]


def to_model_range(images: torch.Tensor) -> torch.Tensor:
    return images.float() / 127.5 - 1


def warmup_cosine(warmup: int, total: int, floor: float = 0.1):
    """LR multiplier: linear warm-up, then cosine decay to `floor` of the peak (diffusers' cosine schedules decay to 0;
    shapes-base was trained with this one, so its recipe keeps it)."""

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))

    return factor


def train_vae(stack: Stack, images: torch.Tensor, config: PretrainConfig, checkpoint: Path, progress: Progress) -> None:
    vae = stack.vae.train()
    with torch.no_grad():  # the posterior's log-variance half of quant_conv starts at −6 (see module doc; a resume overwrites it)
        vae.quant_conv.bias[vae.config.latent_channels :].fill_(-6.0)
    optimizer = torch.optim.AdamW(vae.parameters(), lr=config.vae_lr, weight_decay=config.weight_decay)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_cosine(50, config.vae_steps))
    start = load_training_state(checkpoint, vae=vae, optimizer=optimizer, schedule=schedule)
    task = progress.add_task("VAE", total=config.vae_steps, completed=start)
    tic = time.perf_counter()
    for step in range(start, config.vae_steps):
        generator = step_generator(config.seed, "vae", step)
        batch = to_model_range(images[torch.randint(len(images), (config.vae_batch,), generator=generator)])
        posterior = vae.encode(batch).latent_dist
        latents = posterior.mean + posterior.std * torch.randn(posterior.mean.shape, generator=generator)
        reconstruction = vae.decode(latents).sample
        mse = F.mse_loss(reconstruction, batch)
        loss = mse + F.l1_loss(reconstruction, batch) + config.vae_kl_weight * posterior.kl().mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        progress.advance(task)
        if (step + 1) % config.log_every == 0:
            psnr = 10 * math.log10(4 / mse.item())  # images span [-1, 1]: peak-to-peak 2
            mlflow.log_metrics({"vae_loss": loss.item(), "vae_psnr": psnr, "vae_lr": schedule.get_last_lr()[0],
                                "vae_steps_per_s": (step + 1 - start) / (time.perf_counter() - tic)}, step=step + 1)
        if (step + 1) % config.checkpoint_every == 0 or step + 1 == config.vae_steps:
            save_training_state(checkpoint, step + 1, vae=vae, optimizer=optimizer, schedule=schedule)
    vae.eval().requires_grad_(False)


@torch.no_grad()
def encode_all(stack: Stack, images: torch.Tensor, batch: int = 500) -> tuple[torch.Tensor, torch.Tensor]:
    """Posterior mean and std of every image (latents are sampled from them per batch, as in training)."""
    means, stds = [], []
    for start in range(0, len(images), batch):
        posterior = stack.vae.encode(to_model_range(images[start : start + batch])).latent_dist
        means.append(posterior.mean)
        stds.append(posterior.std)
    return torch.cat(means), torch.cat(stds)


def set_latent_scale(stack: Stack, means: torch.Tensor) -> float:
    """SD's convention: scale latents to unit standard deviation (recorded in the VAE config)."""
    scale = float(1 / means.std())
    stack.vae.register_to_config(scaling_factor=scale)
    return scale


def train_denoiser(stack: Stack, means: torch.Tensor, stds: torch.Tensor, captions: list[str], config: PretrainConfig,
                   checkpoint: Path, progress: Progress) -> None:
    unet, text_encoder = stack.unet.train(), stack.text_encoder.train()
    scheduler = DDPMScheduler.from_config(stack.scheduler.config)
    tokens, empty = stack.token_ids(captions), stack.token_ids([""])
    parameters = list(unet.parameters()) + list(text_encoder.parameters())
    optimizer = torch.optim.AdamW(parameters, lr=config.unet_lr, weight_decay=config.weight_decay)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_cosine(config.warmup_steps, config.unet_steps))
    ema = EMAModel(parameters, decay=config.ema_decay, use_ema_warmup=True, power=3 / 4)
    start = load_training_state(checkpoint, unet=unet, text_encoder=text_encoder, optimizer=optimizer, schedule=schedule, ema=ema)
    scale = stack.vae.config.scaling_factor
    task = progress.add_task("UNet + text encoder", total=config.unet_steps, completed=start)
    tic = time.perf_counter()
    for step in range(start, config.unet_steps):
        generator = step_generator(config.seed, "unet", step)
        index = torch.randint(len(means), (config.unet_batch,), generator=generator)
        latents = (means[index] + stds[index] * torch.randn(means[index].shape, generator=generator)) * scale
        noise = torch.randn(latents.shape, generator=generator)
        timesteps = torch.randint(scheduler.config.num_train_timesteps, (config.unet_batch,), generator=generator)
        dropped = torch.rand(config.unet_batch, generator=generator) < config.caption_dropout
        ids = torch.where(dropped[:, None], empty, tokens[index])
        prediction = unet(scheduler.add_noise(latents, noise, timesteps), timesteps, text_encoder(ids)[0]).sample
        snr = compute_snr(scheduler, timesteps)
        weight = snr.clamp(max=config.min_snr_gamma) / snr  # min-SNR-γ for ε-prediction
        loss = (weight * F.mse_loss(prediction, noise, reduction="none").mean(dim=(1, 2, 3))).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(parameters, 1.0)
        optimizer.step()
        schedule.step()
        ema.step(parameters)
        progress.advance(task)
        if (step + 1) % config.log_every == 0:
            mlflow.log_metrics({"unet_loss": loss.item(), "unet_lr": schedule.get_last_lr()[0], "unet_grad_norm": grad_norm.item(),
                                "unet_steps_per_s": (step + 1 - start) / (time.perf_counter() - tic)}, step=step + 1)
        if (step + 1) % config.checkpoint_every == 0 or step + 1 == config.unet_steps:
            save_training_state(checkpoint, step + 1, unet=unet, text_encoder=text_encoder, optimizer=optimizer, schedule=schedule,
                                ema=ema)
    ema.copy_to(parameters)  # ship the EMA weights
    unet.eval().requires_grad_(False)
    text_encoder.eval().requires_grad_(False)


def pretrain(out: str | Path, config: PretrainConfig = PretrainConfig()) -> Path:
    """Train (or resume training) shapes-base into `out`; returns the exported diffusers pipeline folder."""
    out = Path(out)
    checkpoints = out / "checkpoints"
    checkpoints.mkdir(parents=True, exist_ok=True)
    run_file = checkpoints / "run.json"
    previous = read_json(run_file, "run state") if run_file.is_file() else None
    if previous is not None and (changes := describe_changes(previous["config"], config.model_dump())):
        raise InputError(f"{out} holds a run with another config ({changes}); use a new --out or the same settings")
    device = "cpu"  # the recipe is sized for CPU; see the model card
    timings = previous.get("timings", {}) if previous else {}
    stack = build_untrained_base(config.seed)
    with start_run(EXPERIMENT, run_name="shapes-base", params=config.model_dump(), tags={"device": device},
                   resume_run_id=previous["run_id"] if previous else None) as run:
        def save_run() -> None:  # what a resume reads back: the run, its config and the time spent so far
            write_text(run_file, json.dumps({"run_id": run.info.run_id, "config": config.model_dump(), "timings": timings}))

        save_run()
        tic = time.perf_counter()
        images, captions = render_train_set(config)
        with Progress() as progress:
            phase_tic = time.perf_counter()
            train_vae(stack, images, config, checkpoints / "vae.pt", progress)
            timings["vae_s"] = timings.get("vae_s", 0) + time.perf_counter() - phase_tic
            save_run()
            means, stds = encode_all(stack, images)
            set_latent_scale(stack, means)
            phase_tic = time.perf_counter()
            train_denoiser(stack, means, stds, captions, config, checkpoints / "unet.pt", progress)
            timings["unet_s"] = timings.get("unet_s", 0) + time.perf_counter() - phase_tic
        timings["total_s"] = timings.get("total_s", 0) + time.perf_counter() - tic
        save_run()
        folder = stack.save_pretrained(out / "shapes-base")
        write_text(folder / "training.json", json.dumps({"config": config.model_dump(), "device": device, "torch": torch.__version__,
                                                           "threads": torch.get_num_threads(), "timings_s": timings,
                                                           "mlflow_run_id": run.info.run_id}, indent=2) + "\n")
        mlflow.log_dict({"config": config.model_dump(), "timings_s": timings}, "training.json")
    return folder
