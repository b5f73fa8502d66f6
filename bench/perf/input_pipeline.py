"""Training steps/s with the real input pipeline, three ways side by side: today's loop, DataLoader workers, + latent cache.

Unlike `bench.perf.training` (synthetic tensors), each step here is `localctrl.train`'s from the data on: a manifest
dataset made by `localctrl.data.prepare.prepare_dataset` (Lanczos fit, OpenCV Canny) from synthetic photo-like PNGs,
trained on its edge maps, → `localctrl.data.loader` (workers 0 or 2) → the VAE posterior (encoded, or read from
`localctrl.data.latent_cache`) → noise and timesteps → text (caption dropout) → `control_loss` → backward → clipping →
AdamW. Each variant starts from the same adapter and steps 0, 1, …; the cache is built before any timing (its build
time is reported beside the rows). The variants' repeats are interleaved (`measure_side_by_side`), so a machine busy
with something else for a while slows all three alike, and a variant's ratio to today's loop is the median of the
rounds' ratios (`paired_ratio`). Every step also records where its time went (data, latents, text, loss, backward +
optimiser), with a synchronize at each boundary, so a ratio below expectations can be explained.
"""

import json
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from functools import partial
from pathlib import Path

import numpy as np
import torch
from diffusers import DDPMScheduler
from PIL import Image, ImageDraw

from bench.perf.flops import synchronize
from bench.perf.timing import measure_side_by_side, paired_ratio
from localctrl.common.checkpoints import step_generator
from localctrl.config import Section, train_config
from localctrl.data.examples import ExampleSet
from localctrl.data.latent_cache import latent_cache
from localctrl.data.loader import training_loader
from localctrl.data.manifest import MANIFEST, write_manifest
from localctrl.data.prepare import prepare_dataset
from localctrl.local_adapter import LocalAdapter
from localctrl.models.adapters import build_adapter, default_kind
from localctrl.models.stacks import load_stack
from localctrl.text_conditioning import TextEncoderCache
from localctrl.train_step import control_loss, drop_captions, freeze

TODAY, WORKERS, CACHED = "today's loop (workers 0, no cache)", "workers 2", "workers 2 + latent cache"
VARIANTS = ((TODAY, 0, False), (WORKERS, 2, False), (CACHED, 2, True))  # (name, DataLoader workers, latent cache)
PHASES = ("data", "latents", "text", "loss", "backward + AdamW")
COLOURS = ("red", "green", "blue", "yellow", "grey", "purple", "orange", "white")


class PipelineRun(Section):
    """One stack's measurement: its batch, and how many steps each timed repeat holds."""

    base: str
    batch: int = 4
    steps_per_repeat: int = 1
    warmup: int = 2  # steps
    min_repeats: int = 3
    max_repeats: int = 10
    budget_s: float = 60.0  # per variant, after two repeats (bench.perf.timing.measure)


def synthetic_photos(folder: Path, n: int, size: int = 512, seed: int = 0) -> Path:
    """`n` photo-like size² PNGs (a smooth random colour field, a few soft-edged shapes, mild grain) and a captions CSV
    naming them; the same seed gives the same bytes. Returns the captions file."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    rows = ["file,caption"]
    for k in range(n):
        field = Image.fromarray(rng.integers(0, 256, (5, 5, 3), dtype=np.uint8)).resize((size, size), Image.Resampling.BICUBIC)
        draw = ImageDraw.Draw(field)
        for _ in range(int(rng.integers(2, 5))):
            x0, y0 = rng.integers(0, size * 3 // 4, 2)
            w, h = rng.integers(size // 8, size // 3, 2)
            colour = tuple(int(c) for c in rng.integers(0, 256, 3))
            (draw.ellipse if rng.random() < 0.5 else draw.rectangle)([int(x0), int(y0), int(x0 + w), int(y0 + h)], fill=colour)
        grain = rng.normal(0, 6, (size, size, 3))
        array = np.clip(np.asarray(field, dtype=np.float64) + grain, 0, 255).astype(np.uint8)
        Image.fromarray(array).save(folder / f"photo-{k:03d}.png")
        rows.append(f"photo-{k:03d}.png,a photo of {COLOURS[k % len(COLOURS)]} shapes on a soft background number {k}")
    captions = folder.parent / "captions.csv"
    captions.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return captions


def edge_dataset(photos: Path, captions: Path, out: Path, size: int) -> Path:
    """The photos prepared at `size` with the repository's own `prepare_dataset`, every item in train. Prepare names its
    OpenCV edge map after the detector ("canny"); training reads a manifest's edge map as the condition `edges`."""
    prepare_dataset(photos, captions, out, size=size, conditions=("canny",), split_probs=(1.0, 0.0, 0.0))
    rows = [json.loads(line) for line in (out / MANIFEST).read_text(encoding="utf-8").splitlines() if line.strip()]
    write_manifest(out, [{**row, "conditions": {"edges": row["conditions"]["canny"]}} for row in rows])
    return out


@contextmanager
def variant_steps(stack, examples: ExampleSet, config, device: torch.device, workers: int, cache, autocast_dtype,
                  phases: dict[str, list[float]]) -> Iterator[Callable[[], None]]:
    """One training step of a variant, from a fresh adapter and AdamW and a loader at step 0; its workers end with the
    block."""
    frozen = stack.unet.dtype
    adapter = LocalAdapter(build_adapter(stack, default_kind(stack), in_channels=1, seed=config.seed)).to(device).train()
    optimizer = torch.optim.AdamW(adapter.parameters(), lr=config.optim.lr, weight_decay=config.optim.weight_decay)
    scheduler = DDPMScheduler.from_config(stack.scheduler.config)
    alphas = scheduler.alphas_cumprod.to(device)
    encode_text = TextEncoderCache(stack, device, frozen, alone=True, stored=cache.text if cache else None)
    settings = config.model_copy(update={"data": config.data.model_copy(update={"workers": workers})})
    state = {"step": 0, "tic": 0.0, "steps": iter(training_loader(examples, settings, 0, [0], cache, pin_memory=device.type == "cuda"))}

    def lap(phase: str) -> None:
        synchronize(device)
        now = time.perf_counter()
        phases[phase].append(now - state["tic"])
        state["tic"] = now

    def step() -> None:
        synchronize(device)
        state["tic"] = time.perf_counter()
        (item,) = next(state["steps"])
        lap("data")
        generator = step_generator(config.seed, "noise-0", state["step"])
        latents, noise, timesteps, noisy = item.noisy_latents(stack, scheduler, config.timesteps, generator, device, frozen)
        lap("latents")
        text = encode_text(drop_captions(item.batch.captions, config.caption_dropout, generator))
        lap("text")
        with torch.autocast(device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
            terms = control_loss(stack, adapter, scheduler, alphas, latents, noise, timesteps, noisy, text,
                                 item.batch.conditions.to(device), item.batch.masks.to(device), True, "area", config.z0)
        lap("loss")
        terms.loss.backward()
        torch.nn.utils.clip_grad_norm_(adapter.parameters(), config.optim.max_grad_norm)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        lap("backward + AdamW")
        state["step"] += 1

    try:
        yield step
    finally:
        state.clear()  # the loader's iterator goes, and with it its worker processes


def measure_variants(run: PipelineRun, device: torch.device, mixed_precision: torch.dtype | None, checkpointing: bool,
                  photos: tuple[Path, Path], work: Path, items: int, quick: bool) -> dict:
    """The three variants on one stack; rows with steps/s, spreads and each phase's median seconds, and the ratios."""
    stack = load_stack(run.base)
    frozen = mixed_precision or torch.float32
    freeze(stack, frozen, device)
    if checkpointing:
        stack.unet.enable_gradient_checkpointing()
    size = stack.image_size
    data = edge_dataset(*photos, work / f"data-{size}", size)
    total = run.warmup + run.max_repeats * run.steps_per_repeat + 1
    config = train_config({"base": run.base, "condition": "edges", "data.source": str(data), "optim.batch_size": run.batch,
                           "optim.grad_accum": 1, "steps": total, "data.cache_dir": str(work / "cache")},
                          source="localctrl perf")
    examples = ExampleSet(config.data, config.condition, size, "train", None)
    repeats = {"min_repeats": 2, "max_repeats": 2} if quick else {"min_repeats": run.min_repeats, "max_repeats": run.max_repeats}
    tic = time.perf_counter()  # built before any timing, its cost reported beside the rows
    cache = latent_cache(stack, examples, config.data.cache_dir, device, frozen, say=lambda line: None)
    build_s = time.perf_counter() - tic
    phases: dict[str, dict[str, list[float]]] = {name: {phase: [] for phase in PHASES} for name, _, _ in VARIANTS}
    with ExitStack() as variants:
        steps = {name: variants.enter_context(variant_steps(stack, examples, config, device, workers, cache if cached else None,
                                                            mixed_precision, phases[name]))
                 for name, workers, cached in VARIANTS}
        many = lambda step, count: [step() for _ in range(count)]  # noqa: E731
        timings = measure_side_by_side({name: partial(many, step, run.steps_per_repeat) for name, step in steps.items()},
                                       {name: partial(many, step, run.warmup) for name, step in steps.items()}, device,
                                       budget_s=run.budget_s, **repeats)
    rows = []
    for name, workers, cached in VARIANTS:
        timing = timings[name]
        timed = len(timing.seconds) * run.steps_per_repeat  # the last steps: the warm-up's are left out of the phases
        per_step = timing.median / run.steps_per_repeat
        rows.append({"variant": name, "workers": workers, "latent_cache": cached, "batch": run.batch, "steps_per_s": 1 / per_step,
                     "images_per_s": run.batch / per_step, "spread": timing.spread, "timed_steps": timed,
                     "step_seconds_all": [seconds / run.steps_per_repeat for seconds in timing.seconds],
                     "phase_seconds": {phase: float(np.median(times[-timed:])) for phase, times in phases[name].items()},
                     "cache_build_s": build_s if cached else None})
    return {"base": stack.source, "image_size": size, "items": items, "batch": run.batch, "frozen_dtype": str(frozen).removeprefix("torch."),
            "gradient_checkpointing": checkpointing, "rows": rows,
            "ratios": {name: paired_ratio(timings[name], timings[TODAY]) for name, _, _ in VARIANTS[1:]}}


def input_pipeline_throughput(runs: tuple[PipelineRun, ...], device: str | torch.device, mixed_precision: torch.dtype | None,
                              checkpointing: bool, items: int = 16, quick: bool = False, seed: int = 0) -> list[dict]:
    """Each run's stack measured in turn on the same prepared photos; a failure is recorded and the others go on."""
    device, sections = torch.device(device), []
    with tempfile.TemporaryDirectory(prefix="localctrl-perf-input-") as folder:
        work = Path(folder)
        photos = work / "photos"
        captions = synthetic_photos(photos, items, seed=seed)
        for run in runs:
            try:
                sections.append(measure_variants(run, device, mixed_precision, checkpointing, (photos, captions), work, items, quick))
            except Exception as error:  # one stack failing (memory, say) must not lose the other's numbers
                sections.append({"base": run.base, "error": f"{type(error).__name__}: {error}"[:500]})
    return sections
