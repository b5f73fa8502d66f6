"""`localctrl train`: a T2I-Adapter whose features are masked, with the z0 edge loss, on a frozen base.

One loop, top to bottom: set up → (resume) → for each step: batch, noise, masked adapter features,
frozen UNet, loss, optimiser step → log → validate (in-mask fidelity, out-of-mask edge density, grid) →
checkpoint. Training runs on accelerate (one process or DDP), with frozen modules in bf16/fp16 on GPU.
"""

import json
import math
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import mlflow
import torch
from accelerate import Accelerator
from accelerate.utils import broadcast_object_list
from diffusers import DDPMScheduler
from diffusers.optimization import get_scheduler
from rich.progress import Progress

from localctrl.common.checkpoints import load_training_state, save_training_state, step_generator
from localctrl.common.files import check_writable, read_image, read_json, remove_stray_temporaries, write_text
from localctrl.common.grids import save_captioned_grid
from localctrl.common.progress import step_bar
from localctrl.common.tracking import check_tracking, start_run
from localctrl.config import DataSettings, TrainConfig, describe_changes
from localctrl.data.conditions import CHANNELS
from localctrl.data.examples import ExampleSet
from localctrl.data.latent_cache import latent_cache
from localctrl.data.loader import training_loader
from localctrl.errors import InputError, LocalctrlError
from localctrl.local_adapter import LocalAdapter
from localctrl.models.adapters import build_adapter
from localctrl.models.stacks import load_stack
from localctrl.rehearsal import is_stand_in
from localctrl.sampling import to_uint8
from localctrl.text_conditioning import TextEncoderCache
from localctrl.train_step import control_loss, drop_captions, freeze
from localctrl.validation import selection, validate

EXPERIMENT = "train"


class NonFiniteLossError(LocalctrlError, RuntimeError):
    """The loss became NaN/inf; training stops and the last good checkpoint is kept."""


@dataclass
class TrainResult:
    out: Path
    best_adapter: Path
    last_adapter: Path
    best_metric: float  # the best validation score: the selection metric, negated where lower is better
    best_metric_name: str
    steps: int
    run_id: str

    @property
    def best_value(self) -> float:
        """The selection metric's best value as logged (every selection metric is ≥ 0; best_metric may be negated)."""
        return abs(self.best_metric)


def train(config: TrainConfig, resume: bool = True, progress: Progress | None = None) -> TrainResult:
    """Train (or resume) the adapter `config` describes; `progress`: a display to show the steps on (else one of its own)."""
    # --- set up: frozen base, trainable adapter, data, optimiser -------------------------------------------
    accelerator = Accelerator(mixed_precision=config.mixed_precision, gradient_accumulation_steps=config.optim.grad_accum,
                              cpu=not torch.cuda.is_available())  # without CUDA, launched processes form a gloo CPU group
    frozen_dtype = {"no": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[config.mixed_precision]
    if accelerator.is_main_process:  # where the run goes must take it, before anything is loaded or trained
        check_writable(config.out, "the output folder (out)")
        check_tracking()
        remove_stray_temporaries(config.out)  # what killed runs' atomic writes left behind
    stack = load_stack(config.base)
    freeze(stack, frozen_dtype, accelerator.device)
    if config.gradient_checkpointing:
        stack.unet.enable_gradient_checkpointing()
    adapter = LocalAdapter(build_adapter(stack, config.adapter, CHANNELS[config.condition], config.seed), resize=config.masks.resize)
    stack.check_adapter(adapter.adapter)
    train_set = ExampleSet(config.data, config.condition, stack.image_size, "train", config.data.train_items())
    validation = ExampleSet(config.data, config.condition, stack.image_size, "val", config.data.validation_items)
    validation_batch = validation.validation_batch(config.seed, config.masks, config.masked)
    chosen, higher_is_better = selection(config.condition, world=validation.source == "shapes")  # picks adapter-best
    cache = latent_cache(stack, train_set, config.data.cache_dir, accelerator.device, frozen_dtype, main=accelerator.is_main_process,
                         wait=accelerator.wait_for_everyone, progress=progress) if config.data.cache_latents else None
    encode_text = TextEncoderCache(stack, accelerator.device, frozen_dtype, alone=True,  # each unique caption encoded once
                                   stored=cache.text if cache else None)
    noise_scheduler = DDPMScheduler.from_config(stack.scheduler.config)
    alphas = noise_scheduler.alphas_cumprod.to(accelerator.device)
    z0 = config.z0 if config.masked else None  # the global baseline trains on the plain diffusion loss
    optimizer = torch.optim.AdamW(adapter.parameters(), lr=config.optim.lr, weight_decay=config.optim.weight_decay)
    schedule = get_scheduler("constant_with_warmup", optimizer, num_warmup_steps=config.optim.warmup_steps)
    adapter, optimizer = accelerator.prepare(adapter, optimizer)

    # --- resume: weights, optimiser, schedule, step, early-stopping state -----------------------------------
    out = Path(config.out)
    checkpoint_path, state_path = out / "checkpoint.pt", out / "state.json"
    state = read_json(state_path, "run state") if resume and state_path.is_file() else {}
    params = json.loads(config.model_dump_json())
    scheduling = {name: params["data"].pop(name) for name in DataSettings.SCHEDULING_FIELDS}  # may change on resume: tags
    if state:
        check_resumable(state, params, accelerator.num_processes, out)
    step = load_training_state(checkpoint_path, adapter=accelerator.unwrap_model(adapter), optimizer=optimizer,
                               schedule=schedule) if state else 0
    best, stale = state.get("best", -math.inf), state.get("stale", 0)

    main = accelerator.is_main_process  # only the main process logs to MLflow and writes checkpoints
    # MLflow params are write-once: a resume at another process count keeps the accumulation the run started with.
    logged_accum = state.get("logged_grad_accum", params["optim"]["grad_accum"])
    logged_params = {**params, "optim": {**params["optim"], "grad_accum": logged_accum}}
    tags = {"localctrl.rehearsal": "true"} if is_stand_in(config.base) else {}  # stand-in weights: numbers meaningless
    with (start_run(EXPERIMENT, run_name=out.name, params=logged_params, tags=tags, resume_run_id=state.get("run_id"))
          if main else nullcontext()) as run, step_bar(progress, f"train {out.name}", config.steps, step, enabled=main) as bar:
        def save_state():
            write_text(state_path, json.dumps({"config": params, "run_id": run.info.run_id, "best": best, "stale": stale,
                                              "num_processes": accelerator.num_processes, "logged_grad_accum": logged_accum}))

        if main:
            out.mkdir(parents=True, exist_ok=True)
            save_state()
            mlflow.log_dict(params, "config.json")  # the whole config as one readable artifact beside the flat params
            mlflow.set_tags({"localctrl.num_processes": accelerator.num_processes,  # tags: they may change when resuming
                             **{f"localctrl.data.{name}": value for name, value in scheduling.items()}})
        tic, start_step = time.perf_counter(), step
        # Micro-batch g of the step's process-count-independent sequence: 1 process × accumulation 2 sees the same
        # examples and noise as 2 processes × accumulation 1 (and DDP averages the same gradients).
        micro_batches = [micro * accelerator.num_processes + accelerator.process_index for micro in range(config.optim.grad_accum)]
        steps = iter(training_loader(train_set, config, step, micro_batches, cache, pin_memory=accelerator.device.type == "cuda"))
        while step < config.steps:
            # --- one optimiser step, accumulated over micro-batches ------------------------------------------
            for micro, (g, item) in enumerate(zip(micro_batches, next(steps))):
                generator = step_generator(config.seed, f"noise-{g}", step)
                batch = item.batch
                latents, noise, timesteps, noisy = item.noisy_latents(stack, noise_scheduler, config.timesteps, generator,
                                                                      accelerator.device, frozen_dtype)
                text = encode_text(drop_captions(batch.captions, config.caption_dropout, generator))
                with accelerator.accumulate(adapter), accelerator.autocast():
                    terms = control_loss(stack, adapter, noise_scheduler, alphas, latents, noise, timesteps, noisy, text,
                                         batch.conditions.to(accelerator.device), batch.masks.to(accelerator.device), config.masked,
                                         config.masks.resize, z0)
                    if not torch.isfinite(terms.loss):
                        raise NonFiniteLossError(f"loss is {terms.loss.item()} at step {step + 1} (micro-batch {micro}); "
                                                 f"the last good checkpoint is kept in {checkpoint_path}")
                    accelerator.backward(terms.loss)
                if accelerator.sync_gradients:  # the last micro-batch: one optimiser step
                    grad_norm = accelerator.clip_grad_norm_(adapter.parameters(), config.optim.max_grad_norm)
                    optimizer.step()
                    schedule.step()
                    optimizer.zero_grad(set_to_none=True)
            step += 1

            # --- log, validate, checkpoint ----------------------------------------------------------------------
            note = None
            if main and step % config.log_every == 0:
                rate = (step - start_step) / (time.perf_counter() - tic)
                mlflow.log_metrics({"loss": terms.loss.item(), "loss_simple": terms.loss_simple.item(), "loss_z0": terms.loss_z0.item(),
                                    "lr": schedule.get_last_lr()[0], "grad_norm": float(grad_norm), "steps_per_s": rate}, step=step)
                note = f"loss {terms.loss.item():.4f}, {rate:.2f} steps/s"
            bar.advance(note)
            stop = False
            if main and (step % config.validate_every == 0 or step == config.steps):
                local = accelerator.unwrap_model(adapter)
                metrics, images = validate(stack, local, validation_batch, config.validation_steps, config.seed, config.masked,
                                           config.condition, world=validation.source == "shapes",
                                           scale=config.validation_scale)
                mlflow.log_metrics(metrics, step=step)
                bar.show(f"validation {chosen} {metrics[chosen]:.3f}")
                grid = save_captioned_grid(to_uint8(images), validation_batch.captions, out / "validation" / f"step-{step:06d}.png",
                                           masks=validation_batch.masks)
                mlflow.log_artifact(str(grid), "validation")
                mlflow.log_image(read_image(grid, "RGB"), key="validation", step=step)  # the run page's image slider
                settings = {"masked_training": config.masked, "condition": config.condition, "base": config.base}
                local.save_pretrained(out / "adapter-last", **settings)
                score = metrics[chosen] if higher_is_better else -metrics[chosen]  # best: the highest score
                if score > best:
                    best, stale = score, 0
                    local.save_pretrained(out / "adapter-best", **settings)
                else:
                    stale += 1
                    stop = stale >= config.patience
            if main and (step % config.checkpoint_every == 0 or step == config.steps or stop):
                save_training_state(checkpoint_path, step, adapter=accelerator.unwrap_model(adapter), optimizer=optimizer,
                                    schedule=schedule)
                save_state()
            if broadcast_object_list([stop])[0]:  # the main process decides early stopping for all
                break
        accelerator.wait_for_everyone()
        if main:
            mlflow.log_artifacts(str(out / "adapter-best"), "adapter-best")
        return TrainResult(out, out / "adapter-best", out / "adapter-last", best, chosen, step, run.info.run_id if main else None)


def check_resumable(state: dict, params: dict, num_processes: int, out: Path) -> None:
    """Resume only the same run: same config, except that the process count may change at an unchanged effective batch."""
    before, now = state["config"], params
    unchanged = lambda config: {**config, "optim": {k: v for k, v in config["optim"].items() if k != "grad_accum"}}  # noqa: E731
    if changes := describe_changes(unchanged(before), unchanged(now)):
        raise InputError(f"{out} holds a run with another config ({changes}); use a new --out or the same settings")
    effective_before = before["optim"]["grad_accum"] * state.get("num_processes", 1)
    effective_now = now["optim"]["grad_accum"] * num_processes
    if effective_before != effective_now:
        raise InputError(f"{out} was trained with {state.get('num_processes', 1)} process(es) × accumulation {before['optim']['grad_accum']}; "
                         f"resuming with {num_processes} × {now['optim']['grad_accum']} changes the effective batch")
