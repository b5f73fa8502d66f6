"""The `localctrl` command line: thin commands that parse options and call localctrl / bench / reports.

Every error a user can mend (localctrl.errors.LocalctrlError) ends in `Commands.invoke`: one red line, exit code 2,
no traceback. Choices are the Literal types of localctrl.config, so `--help` lists them. Heavy imports (torch,
diffusers, mlflow) happen inside the commands that need them, so `--help` and argument errors are quick.
"""

import os
import subprocess
import sys
from pathlib import Path
from typing import Annotated, Literal

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from typer.core import TyperGroup

from localctrl.common import quiet
from localctrl.config import (
    AdapterKind,
    CiFormat,
    PerfOnly,
    PerfPrecision,
    PerfPreset,
    Precision,
    PrepareFit,
    Scheduler,
    validated,
)
from localctrl.errors import InputError, LocalctrlError
from suites import available_suites

# transformers draws a "Loading weights" bar per model and "Writing model shards" per save (hub progress bars): noise
# here, where our own progress bars show the long steps. `localctrl fetch` turns them back on for its downloads.
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
quiet.install()  # and the library notes a user cannot act on (localctrl.common.quiet names each)

console = Console(highlight=False)  # notes and paths name things like lpips[alexnet]: no markup guessing
errors = Console(stderr=True, highlight=False, soft_wrap=True)  # an error is one line, never wrapped into several


class Commands(TyperGroup):
    """The one error handler of every command."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except LocalctrlError as error:
            errors.print(f"[red]{escape(str(error))}[/red]")
            raise typer.Exit(2) from None


app = typer.Typer(cls=Commands, no_args_is_help=True,
                  help="Local control of text-to-image diffusion: train masked T2I-Adapters, benchmark, report.")
data_app = typer.Typer(help="Write datasets in the manifest format.", no_args_is_help=True)
world_app = typer.Typer(help="The shapes world's shipped models: build them, check them.", no_args_is_help=True)
app.add_typer(data_app, name="data")
app.add_typer(world_app, name="world")

Seed = Annotated[int, typer.Option(help="Seed (the same seed and arguments give the same result).")]
Threads = Annotated[int, typer.Option(help="CPU threads for torch (0: torch's default).")]
Processes = Annotated[int, typer.Option(min=1, help="Processes (GPUs, or gloo CPU processes without CUDA), via accelerate launch.")]


def set_threads(threads: int) -> None:
    if threads:
        import torch

        torch.set_num_threads(threads)


# --- running on several processes ----------------------------------------------------------------------------------

def without_option(arguments: list[str], option: str) -> list[str]:
    """Command-line arguments minus `option VALUE` / `option=VALUE` (to relaunch a command on several processes)."""
    kept, skip = [], False
    for argument in arguments:
        if skip:
            skip = False
        elif argument == option:
            skip = True
        elif not argument.startswith(f"{option}="):
            kept.append(argument)
    return kept


def relaunch(num_processes: int) -> None:
    """Rerun this very command under `accelerate launch` on N processes (DDP over GPUs, or gloo CPU processes without
    CUDA) and exit with its code; a launched process (LOCAL_RANK set) returns and does its share."""
    if num_processes <= 1 or "LOCAL_RANK" in os.environ:
        return
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", str(num_processes),
              "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"]
    raise typer.Exit(subprocess.call([*launch, "-m", "cli", *without_option(sys.argv[1:], "--num-processes")]))


def is_helper_process() -> bool:
    """A launched process other than the main one: the main one reports."""
    return os.environ.get("LOCAL_RANK", "0") != "0"


# --- the method: train, sample ---------------------------------------------------------------------------------------

@app.command()
def train(
    config: Annotated[Path | None, typer.Option("--config", help="YAML training config (see localctrl/config.py).")] = None,
    overrides: Annotated[list[str] | None, typer.Option("--set", help="Override a setting: --set z0.weight=1e-2 (repeatable).")] = None,
    fresh: Annotated[bool, typer.Option(help="Ignore an existing checkpoint in the output folder instead of resuming.")] = False,
    num_processes: Processes = 1,
) -> None:
    """Train a local adapter (masked features + z0 edge loss) on a frozen base; resumes from --set out=DIR."""
    from localctrl.config import load_train_config

    settings = load_train_config(config, overrides or [])  # a bad config fails here, before any process starts
    relaunch(num_processes)
    from localctrl.train import train as run_training

    result = run_training(settings, resume=not fresh)
    if result.run_id is None:  # a non-main DDP process: the main one reports
        return
    console.print(f"Trained {result.steps} steps; best validation {result.best_metric_name} {result.best_value:.3f}")
    console.print(f"Adapters: {result.best_adapter.resolve()} (best), {result.last_adapter.resolve()} (last); MLflow run {result.run_id}")


@app.command()
def sample(
    prompts: Annotated[list[str], typer.Option("--prompt", help="Prompt (repeatable: one image per prompt and seed).")],
    base: Annotated[str, typer.Option(help="Base stack: shapes-base, tiny, a pipeline folder or a cached hub id.")] = "shapes-base",
    adapter: Annotated[Path | None, typer.Option(help="Adapter folder (from localctrl train); none: text only.")] = None,
    conditions: Annotated[list[Path] | None, typer.Option("--condition", help="Condition image (one, or one per prompt).")] = None,
    masks: Annotated[list[str] | None, typer.Option("--mask", help="none | full | box:x0,y0,x1,y1 | mask.png (one, or one per prompt).")] = None,
    scale: Annotated[float, typer.Option(help="Adapter conditioning scale.")] = 1.0,
    conditioning_factor: Annotated[float, typer.Option(min=0, max=1, help="Fraction of the first steps that get the control.")] = 1.0,
    scheduler: Annotated[Scheduler, typer.Option(help="Sampling scheduler.")] = "ddim",
    steps: Annotated[int, typer.Option(min=1)] = 30,
    guidance: Annotated[float, typer.Option()] = 7.5,
    seed: Annotated[int, typer.Option(help="Image k uses seed + k.")] = 0,
    images_per_prompt: Annotated[int, typer.Option(min=1)] = 1,
    batch_size: Annotated[int, typer.Option(min=1)] = 16,
    precision: Annotated[Precision, typer.Option(help="Autocast dtype of the frozen modules (fp32: exact).")] = "fp32",
    out: Annotated[Path, typer.Option(help="Folder for the PNGs and grid.png.")] = Path("localctrl-runs/samples"),
) -> None:
    """Sample images with local control: PNGs plus a grid with each mask outlined."""
    import torch

    from localctrl.common.files import write_png
    from localctrl.common.grids import save_captioned_grid
    from localctrl.config import SamplerSettings
    from localctrl.data.sample_inputs import broadcast, load_condition, parse_mask
    from localctrl.local_adapter import LocalAdapter
    from localctrl.models.stacks import load_stack
    from localctrl.sampling import Request, to_uint8
    from localctrl.sampling import sample as generate

    settings = validated(SamplerSettings, "localctrl sample", scheduler=scheduler, steps=steps, guidance=guidance, scale=scale,
                         conditioning_factor=conditioning_factor, batch_size=batch_size, precision=precision)
    if conditions and adapter is None:
        raise InputError("--condition needs --adapter")
    stack = load_stack(base)
    for prompt in stack.cut_prompts(prompts):
        errors.print(f"[yellow]prompt '{escape(prompt)}' is longer than the text encoder's {stack.tokenizer.model_max_length} "
                     "tokens: the rest is ignored[/yellow]")
    local = LocalAdapter.from_pretrained(adapter) if adapter else None
    if local is not None:
        stack.check_adapter(local.adapter)
    size = stack.image_size
    condition_list = broadcast(conditions or [], len(prompts), "--condition")
    mask_list = broadcast(masks or [], len(prompts), "--mask")
    requests = []
    for prompt, condition, mask in zip(prompts, condition_list, mask_list):
        tensor = load_condition(condition, local.adapter.config.in_channels, size) if condition else None
        region = parse_mask(mask or "none", size)
        for _ in range(images_per_prompt):
            requests.append(Request(prompt, seed + len(requests), tensor, region))
    images = to_uint8(generate(stack, requests, local, settings))
    for k, image in enumerate(images):
        write_png(out / f"{k:05d}.png", image.permute(1, 2, 0).numpy())
    shown = torch.stack([r.mask if r.mask is not None else torch.zeros(1, size, size) for r in requests])
    grid = save_captioned_grid(images, [r.prompt for r in requests], out / "grid.png", masks=shown)
    console.print(f"Wrote {len(images)} images to {out.resolve()} (grid: {grid.resolve()})")


# --- measuring and presenting: bench, report, perf -------------------------------------------------------------------

def parse_assignment(text: str, option: str) -> tuple[str, str]:
    """`NAME=VALUE` of a repeatable option."""
    name, equals, value = text.partition("=")
    if not equals or not name or not value:
        raise InputError(f"{option} {text!r}: expected NAME=VALUE, e.g. depth=control_depth")
    return name, value


def parse_shard(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    index, _, count = text.partition("/")
    if not (index.isdigit() and count.isdigit() and int(index) < int(count)):
        raise InputError(f"--shard '{text}': expected i/n with 0 <= i < n, e.g. 0/4")
    return int(index), int(count)


@app.command()
def bench(
    suite: Annotated[str, typer.Option(help=f"Shipped suite name ({', '.join(available_suites())}) or a suite .yaml.")],
    limit: Annotated[int | None, typer.Option(min=1, help="Use only the first N items.")] = None,
    methods: Annotated[list[str] | None, typer.Option("--methods", help="Only these methods (repeatable); the reference method stays.")] = None,
    dry_run: Annotated[bool, typer.Option(help="Print the plan (to train / to generate / cached / unavailable) and stop.")] = False,
    shard: Annotated[str | None, typer.Option(help="i/n: generate only shard i of n (job arrays); score with a run without --shard.")] = None,
    device: Annotated[str, typer.Option(help="cpu | cuda | cuda:N")] = "cpu",
    out: Annotated[Path | None, typer.Option(help="Output folder (default localctrl-runs/bench/<suite>).")] = None,
    base: Annotated[str | None, typer.Option(help="Override the suite's base; 'tiny' = mechanics mode (random stand-ins, named so).")] = None,
    batch_size: Annotated[int | None, typer.Option(min=1, help="Images per sampler call (default: the suite's).")] = None,
    steps: Annotated[int | None, typer.Option(min=1, help="Sampler steps (default: the suite's).")] = None,
    num_processes: Processes = 1,
    cache: Annotated[Path, typer.Option(help="Where adapters trained for suites are kept (shared by suites).")] = Path("localctrl-runs/bench-cache"),
    recheck: Annotated[bool, typer.Option(help="Check every stage even when nothing changed since the last finished run.")] = False,
) -> None:
    """Run a benchmark suite: train what it needs, generate, detect, score, log to MLflow (every stage cached)."""
    from bench.finished import finished_rerun
    from bench.invocation import BenchOptions

    shard_index = parse_shard(shard)
    options = validated(BenchOptions, "localctrl bench", limit=limit, methods=methods, dry_run=dry_run, shard=shard_index, device=device,
                        out=out, base=base, batch_size=batch_size, steps=steps, cache=cache)
    stderr = Console(stderr=True, highlight=False)
    # before any process is launched or model loaded: a rerun with nothing to compute prints the finished run's results
    result = None if recheck or "LOCAL_RANK" in os.environ else finished_rerun(suite, options, say=lambda text: stderr.print(escape(text)))
    if result is not None:
        for note in result.notes:
            stderr.print(f"[yellow]{escape(note)}[/yellow]")
    else:
        relaunch(num_processes)
        from bench.run import run_bench

        result = run_bench(suite, options, console=Console(stderr=True))
    if is_helper_process():
        return
    if result.results:
        from reports.summary import summary_table

        typer.echo(summary_table(result))
    console.print(f"images, scores and grids → {result.out.resolve()}" + (f"; MLflow run {result.run_id}" if result.run_id else ""))


@app.command(context_settings={"allow_extra_args": True})  # extra args: the rest of `--compare ID ID ...`
def report(
    ctx: typer.Context,
    suite_run: Annotated[str | None, typer.Option("--suite-run", help="A bench parent run id (or a unique prefix of one).")] = None,
    suite: Annotated[str | None, typer.Option(help="A suite name: its latest finished bench run.")] = None,
    compare: Annotated[list[str] | None, typer.Option(help="Runs side by side: --compare ID ID ... (or repeated, or ID,ID).")] = None,
    out: Annotated[Path | None, typer.Option(help="Folder to write (default localctrl-runs/report/<suite>).")] = None,
    reference: Annotated[str | None, typer.Option(help="Method paired comparisons are against (default: the suite's z0 method).")] = None,
    ci: Annotated[CiFormat, typer.Option(help="pm: mean ± CI half-width | interval: mean \\[lo, hi] (the CSV has both bounds).")] = "pm",
    metrics: Annotated[list[str] | None, typer.Option("--metric", help="Main-table column, e.g. edge_f1_in (repeatable).")] = None,
    paired: Annotated[bool, typer.Option(help="Paired-bootstrap comparisons with the reference (daggers in the table).")] = True,
    figures: Annotated[bool, typer.Option(help="Draw the figures (PNG and PDF).")] = True,
    log: Annotated[bool, typer.Option(help="Also log the report as artifacts (report/) of the parent run(s).")] = True,
    doc: Annotated[Path | None, typer.Option(help="Markdown file (README.md) whose marked block for the suite gets the main "
                                                  "table and trade-off figure (`make readme`).")] = None,
) -> None:
    """Paper tables (Markdown, LaTeX, CSV) and figures from bench runs in MLflow, logged with the parent run."""
    from reports.build import ReportOptions, build_report, resolve_run_ids

    if ctx.args and not compare:
        raise InputError(f"unexpected arguments {' '.join(ctx.args)} (several run ids go after --compare)")
    ids = resolve_run_ids(suite_run, suite, [*compare, *ctx.args] if compare else None)
    options = validated(ReportOptions, "localctrl report", out=out, reference=reference, ci=ci, metrics=metrics, paired=paired,
                        figures=figures, log=log, doc=doc)
    result = build_report(ids, options)
    typer.echo(result.markdown)
    for note in result.notes:
        console.print(f"[yellow]note:[/yellow] {escape(note)}")
    console.print(f"{len(result.files)} files (tables, figures, report.md) → {result.out.resolve()}")
    for logged in result.logged:
        console.print(f"logged as MLflow artifacts: runs:/{logged}")
    if result.documented:
        console.print(f"the suite's table and figure → {', '.join(str(path) for path in result.documented)}")


@app.command()
def perf(
    preset: Annotated[PerfPreset, typer.Option(help="cpu: tiny stack, CPU numbers | gpu: the prepared GPU check (sd15-random, 512²).")] = "cpu",
    out: Annotated[Path | None, typer.Option(help="JSON to write (default localctrl-runs/perf/<preset>.json).")] = None,
    base: Annotated[str | None, typer.Option(help="Stack (default: tiny for cpu, sd15-random for gpu).")] = None,
    device: Annotated[str | None, typer.Option(help="cpu | cuda | cuda:N (default: the preset's).")] = None,
    steps: Annotated[int | None, typer.Option(min=1, help="Sampler steps (default 20 cpu, 30 gpu).")] = None,
    batches: Annotated[str | None, typer.Option(help="Comma-separated batch sizes (default 16 cpu; 1,8,16,32 gpu).")] = None,
    images: Annotated[int | None, typer.Option(min=1, help="At least this many images per sampling measurement.")] = None,
    train_steps: Annotated[int | None, typer.Option(min=1, help="Timed training steps.")] = None,
    precision: Annotated[PerfPrecision, typer.Option(help="gpu: the same precision for both samplers.")] = "bf16-weights",
    compile: Annotated[bool, typer.Option("--compile", help="gpu: also time our sampler with a torch.compile'd UNet.")] = False,
    budget_s: Annotated[float | None, typer.Option(help="gpu: skip measurements not started after this many seconds (default 360).")] = None,
    xl_base: Annotated[str | None, typer.Option(help="gpu: the SDXL stack measured after the SD 1.5 one (default sdxl-random; "
                                                     "'' leaves it out).")] = None,
    xl_budget_s: Annotated[float | None, typer.Option(help="gpu: skip SDXL measurements not started after this many seconds "
                                                           "(default 480).")] = None,
    rerun: Annotated[bool, typer.Option(help="cpu: measure whole-process reruns of a suite (--rerun-suite).")] = True,
    rerun_suite: Annotated[str, typer.Option(help="cpu, --only reruns: the suite run first, then rerun fully cached.")] = "smoke",
    quick: Annotated[bool, typer.Option("--quick", help="Tiny sizes: runs the preset's code path in seconds (tests).")] = False,
    only: Annotated[PerfOnly | None, typer.Option(help="Run one measurement of the preset alone (its own JSON).")] = None,
) -> None:
    """Throughput side by side: sampler vs diffusers, metrics, cached rerun, training; a table with ratios and a JSON."""
    from bench.perf.presets import PerfOptions, run_perf

    try:
        sizes = tuple(int(b) for b in batches.split(",")) if batches else None
    except ValueError:
        raise InputError(f"--batches '{batches}': expected comma-separated whole numbers, e.g. 1,8,16") from None
    options = validated(PerfOptions, "localctrl perf", preset=preset, out=out, base=base, device=device, steps=steps, batches=sizes,
                        images=images, train_steps=train_steps, precision=precision, compile=compile, budget_s=budget_s,
                        xl_base=xl_base, xl_budget_s=xl_budget_s, rerun_suite=rerun_suite if rerun else None, quick=quick, only=only)
    result, table = run_perf(options)
    typer.echo(table)
    typer.echo(f"JSON → {Path(result['options']['out']).resolve()}")  # last: where the numbers went


# --- data ------------------------------------------------------------------------------------------------------------

@data_app.command("shapes")
def data_shapes(
    out: Annotated[Path, typer.Option("--out", help="Dataset folder to write (manifest.jsonl + PNGs).")],
    n: Annotated[int, typer.Option("-n", "--n", min=1, help="Number of items.")] = 1000,
    seed: Annotated[int, typer.Option(help="World seed: the same seed and arguments give byte-identical files.")] = 0,
    size: Annotated[int, typer.Option(min=32, max=256, help="Image size in pixels.")] = 64,
    max_objects: Annotated[int, typer.Option(min=1, max=6, help="Most objects per scene (1–2 by default).")] = 2,
    overlap: Annotated[bool, typer.Option(help="Allow objects to overlap (z-order by layer).")] = False,
    workers: Annotated[int, typer.Option(min=1, help="Processes rendering in parallel.")] = 2,
) -> None:
    """Render the shapes world: images, captions, edges, segmentation, instances, depth and object masks."""
    from collections import Counter

    from localctrl.data.manifest import read_manifest
    from localctrl.shapes.dataset import write_shapes_dataset
    from localctrl.shapes.scene import WorldConfig

    config = WorldConfig(size=size, object_count_probs=WorldConfig.count_probs(max_objects), allow_overlap=overlap)
    folder = write_shapes_dataset(out, n=n, seed=seed, config=config, workers=workers)
    splits = Counter(item.split for item in read_manifest(folder, check_files=False))
    console.print(f"Wrote {n} items ({', '.join(f'{k}: {v}' for k, v in sorted(splits.items()))}) to {folder.resolve()}")


@data_app.command("prepare")
def data_prepare(
    out: Annotated[Path, typer.Option(help="Dataset folder to write (manifest.jsonl + PNGs).")],
    images: Annotated[Path | None, typer.Option(help="Folder of source images.")] = None,
    captions: Annotated[Path | None, typer.Option(help="CSV/JSONL (file, caption) or COCO captions JSON; none: <stem>.txt beside each image.")] = None,
    hf_dataset: Annotated[Path | None, typer.Option(help="A Hugging Face dataset saved with save_to_disk (instead of --images).")] = None,
    hf_split: Annotated[str | None, typer.Option(help="Split of --hf-dataset (needed when it has several).")] = None,
    image_column: Annotated[str, typer.Option(help="Image column of --hf-dataset.")] = "image",
    caption_column: Annotated[str, typer.Option(help="Caption column of --hf-dataset (a list: its first caption).")] = "caption",
    id_column: Annotated[str | None, typer.Option(help="Column with stable ids in --hf-dataset (default: the row number).")] = None,
    hf_condition: Annotated[list[str] | None, typer.Option(help="CONDITION=COLUMN: a condition map --hf-dataset ships, taken "
                                                                "instead of computed (depth=control_depth; repeatable).")] = None,
    size: Annotated[int, typer.Option(min=32, help="Training size: shorter side resized (Lanczos), centre crop.")] = 512,
    fit: Annotated[PrepareFit, typer.Option(help="crop: the centre square; stretch: the whole image resized to size×size "
                                                 "(bicubic), as ControlNet++'s evaluation does.")] = "crop",
    conditions: Annotated[list[str] | None, typer.Option("--condition", help="canny (OpenCV 100/200) | colour-grid | depth (DPT) | "
                                                                             "seg (UperNet, ADE20K) (repeatable).")] = None,
    depth_model: Annotated[str, typer.Option(help="Depth network: dpt-hybrid (T2I-Adapter's training condition) | dpt-large "
                                                  "(ControlNet++'s detector).")] = "dpt-hybrid",
    seed: Annotated[int, typer.Option(help="Seed of the split assignment.")] = 0,
    device: Annotated[str, typer.Option(help="cpu | cuda | cuda:N (where the depth and seg networks run).")] = "cpu",
) -> None:
    """Prepare real images + captions as a manifest dataset (resumable; unreadable images reported and skipped)."""
    from localctrl.data.prepare import REPORT, prepare_dataset
    from localctrl.data.sources import hf_dataset_items

    if (images is None) == (hf_dataset is None):
        raise InputError("give exactly one of --images (with --captions) or --hf-dataset")
    columns = dict(parse_assignment(text, "--hf-condition") for text in hf_condition or [])
    if columns and hf_dataset is None:
        raise InputError("--hf-condition names columns of --hf-dataset: give --hf-dataset too")
    source = images or hf_dataset_items(hf_dataset, image_column, caption_column, hf_split, id_column, columns)
    report = prepare_dataset(source, captions, out, size=size, conditions=tuple(conditions or ["canny"]), seed=seed,
                             depth_model=depth_model, device=device, fit=fit)
    console.print(f"{report.written} written, {report.reused} already there, {len(report.skipped)} skipped → {out.resolve()}")
    for condition, repo in report.condition_models.items():
        console.print(f"{condition} computed with {repo} (recorded in the manifest)")
    if report.skipped:
        console.print(f"[yellow]Skipped images are listed in {(out / REPORT).resolve()}[/yellow]")


# --- the shapes world's models -----------------------------------------------------------------------------------------

@world_app.command("pretrain")
def world_pretrain(
    out: Annotated[Path, typer.Option(help="Folder for checkpoints and the exported shapes-base pipeline.")] = Path("localctrl-runs/shapes-base-build"),
    seed: Seed = 0,
    vae_steps: Annotated[int, typer.Option(help="VAE training steps.")] = 1500,
    unet_steps: Annotated[int, typer.Option(help="UNet + text encoder training steps.")] = 6000,
    train_items: Annotated[int, typer.Option(help="Train-split scenes rendered for training.")] = 40_000,
    threads: Threads = 0,
) -> None:
    """Train shapes-base from scratch (seeded, MLflow-tracked); run again on the same --out to resume."""
    from localctrl.shapes.pretrain import PretrainConfig, pretrain

    set_threads(threads)
    folder = pretrain(out, PretrainConfig(seed=seed, vae_steps=vae_steps, unet_steps=unet_steps, train_items=train_items))
    console.print(f"shapes-base written to {folder.resolve()} (checkpoints in {(out / 'checkpoints').resolve()})")


@world_app.command("train-net")
def world_train_net(
    out: Annotated[Path, typer.Option(help="Folder to write shapes-net to (safetensors + config.json).")] = Path("localctrl-runs/shapes-net"),
    base: Annotated[str, typer.Option(help="Stack whose VAE reconstructions shapes-net also learns from.")] = "shapes-base",
    steps: Annotated[int, typer.Option(help="Training steps.")] = 1500,
    seed: Seed = 0,
    pool: Annotated[int, typer.Option(help="VAE reconstructions precomputed for training.")] = 8192,
    threads: Threads = 0,
) -> None:
    """Train shapes-net (FID-shapes features, align-shapes) on world images and their VAE reconstructions."""
    import mlflow

    from localctrl.common.tracking import start_run
    from localctrl.models.stacks import load_stack
    from localctrl.shapes.net import save_shapes_net, train_shapes_net

    set_threads(threads)
    vae = load_stack(base).vae
    with start_run("shapes-net", run_name="shapes-net", params={"base": base, "steps": steps, "seed": seed, "pool": pool}):
        net = train_shapes_net(steps, seed=seed, vae=vae, pool_size=pool, log=lambda step, metrics: mlflow.log_metrics(metrics, step=step))
        folder = save_shapes_net(net, out)
        mlflow.log_artifacts(str(folder), "shapes-net")
    console.print(f"shapes-net written to {folder.resolve()}")


@world_app.command("check")
def world_check(
    base: Annotated[str, typer.Option(help="shapes-base (shipped) or a pipeline folder.")] = "shapes-base",
    net: Annotated[Path | None, typer.Option(help="shapes-net folder (default: the shipped one).")] = None,
    samples: Annotated[int, typer.Option(min=8, help="Generated and real images per measurement.")] = 256,
    as_json: Annotated[bool, typer.Option("--json", help="Print the measurements as JSON only.")] = False,
    grid: Annotated[Path | None, typer.Option(help="Also save a grid of samples with their prompts (PNG).")] = None,
    card: Annotated[bool, typer.Option(help="Write the results (and grid) into the base folder's model card.")] = False,
) -> None:
    """Measure the shipped world models on held-out scenes (VAE, shapes-net, shapes-base samples)."""
    import json

    from localctrl.common.grids import save_captioned_grid
    from localctrl.models.stacks import SHIPPED_BASES, load_stack
    from localctrl.models.weights import SHAPES_NET_DIR
    from localctrl.shapes.card import write_model_card
    from localctrl.shapes.check import CheckSettings
    from localctrl.shapes.check import world_check as measure
    from localctrl.shapes.net import load_shapes_net

    stack = load_stack(base)
    results, images, captions = measure(stack, load_shapes_net(net or SHAPES_NET_DIR), CheckSettings(samples=samples))
    folder = SHIPPED_BASES.get(base, Path(base))
    if card:
        grid = folder / "samples.png"
    if grid is not None:
        save_captioned_grid(images[:24], captions[:24], grid)
    card_path = write_model_card(folder, results, grid.name) if card else None
    if as_json:
        print(json.dumps(results, indent=2))
        return
    table = Table("measurement", "value", title=f"world check ({results['counts']['images']} held-out scenes)")
    table.add_row("VAE reconstruction PSNR", f"{results['vae_psnr_db']:.2f} dB")
    table.add_row("shapes-net all-correct, real", f"{results['net_accuracy_real']:.3f}")
    table.add_row("shapes-net all-correct, VAE reconstructions", f"{results['net_accuracy_reconstructions']:.3f}")
    for source in ("real", "samples"):
        align = results[f"align_{source}"]
        table.add_row(f"align-shapes, {source} (1 obj / 2 obj)", f"{align['all']:.3f} ({align['one_object']:.3f} / {align['two_object']:.3f})")
    table.add_row("FID-shapes, samples vs real", f"{results['fid_shapes_samples_vs_real']:.2f}")
    table.add_row("FID-shapes, real vs real (floor)", f"{results['fid_shapes_real_vs_real']:.2f}")
    for source in ("real", "reconstructions"):
        read = results[f"readers_{source}"]
        table.add_row(f"readers on {'VAE reconstructions' if source != 'real' else 'real images'}: depth RMSE (exact px) / "
                      "seg px acc / canny edge F1",
                      f"{read['depth_rmse']:.2f} ({read['depth_exact_pixels']:.3f}) / {read['seg_pixel_accuracy']:.3f} / "
                      f"{read['canny_edge_f1']:.3f}")
    console.print(table)
    if grid is not None:
        console.print(f"Sample grid: {grid.resolve()}")
    if card_path is not None:
        console.print(f"Model card: {card_path.resolve()}")


# --- the installation --------------------------------------------------------------------------------------------------

@app.command()
def doctor(
    rehearse: Annotated[Path | None, typer.Option(help="Write seeded random stand-ins of every pretrained component, in their real "
                                                       "formats, into this new folder and check them (see README, Rehearsal).")] = None,
) -> None:
    """Print versions, device, the MLflow store in use, and which pretrained components are available."""
    from contextlib import nullcontext

    from bench.doctor import report

    if rehearse:
        from localctrl.rehearsal.write import using_rehearsal, write_rehearsal

        write_rehearsal(rehearse, say=lambda text: console.print(f"rehearsal: {text}"))
    with using_rehearsal(rehearse) if rehearse else nullcontext():
        found = report()
    versions = Table("package", "version", title="Versions")
    for name, value in found["versions"].items():
        versions.add_row(name, value)
    console.print(versions)
    console.print(f"Device: {found['device']}")
    console.print(f"MLflow tracking URI: {found['tracking_uri']}")
    components = Table("component", "used for", "source", "status", title="Pretrained components")
    for status in found["components"]:
        part = status.component
        state = f"[green]available[/green] {status.location}" if status.location else "[yellow]missing[/yellow]"
        state += " [magenta](rehearsal stand-in)[/magenta]" if status.stand_in else ""
        components.add_row(part.name, part.used_for, part.source, state)
    console.print(components)
    missing = [status.component for status in found["components"] if status.location is None]
    if missing:
        console.print(f"How to provide what is missing (Hugging Face cache looked in: {found['hub_cache']}):")
        for part in missing:
            console.print(f"  {part.name}: {part.how}")
    console.print("Always available offline: the tiny and sd15-random stacks (random weights, for mechanics and speed).")
    if rehearse:
        console.print(f"Rehearsal written to {rehearse.resolve()}: `sh {rehearse / 'rehearse.sh'}` runs a paper-canny-sd15 "
                      f"rehearsal (data prepare, convert, train, bench, report) on it; `. {rehearse / 'rehearsal.env'}` points "
                      "a shell at it. Its numbers are meaningless.")


@app.command()
def fetch(
    suite: Annotated[str, typer.Argument(help="Shipped suite name (e.g. paper-canny-sd15) or a suite .yaml.")],
    dry_run: Annotated[bool, typer.Option(help="Only list what would be downloaded.")] = False,
    yes: Annotated[bool, typer.Option("--yes", help="Download without asking.")] = False,
) -> None:
    """Download exactly the weights a suite lacks (listed with their sizes first); the only command that downloads."""
    from bench.fetch import download, plan_suite, size_text
    from bench.suite import load_suite

    loaded = load_suite(suite)
    items, others = plan_suite(loaded, say=console.print)
    for line in others:
        console.print(f"[yellow]missing, not downloadable:[/yellow] {escape(line)}")
    if not items:
        console.print(f"Nothing to download: suite '{loaded.name}' needs no weights that are not here.")
        return
    table = Table("for", title=f"To download for suite '{loaded.name}'")
    for column in ("source", "file"):
        table.add_column(column, overflow="fold")  # URLs and paths in full, wrapped
    table.add_column("size", justify="right")
    for item in items:
        for file, size in item.files.items():
            note = " (pickled: converted to safetensors after download)" if file.endswith(".bin") and item.convert else ""
            table.add_row(escape(item.need.what), item.need.source, escape(file) + note, size_text(size))
    unknown = any(size is None for item in items for size in item.files.values())
    table.add_row("total", "", f"{sum(len(item.files) for item in items)} files",
                  size_text(sum(item.size for item in items)) + (" + unknown" if unknown else ""))
    console.print(table)
    if dry_run:
        console.print("Dry run: nothing downloaded.")
        return
    if not yes and not typer.confirm("Download these files?"):
        console.print("Nothing downloaded.")
        return
    download(items, say=console.print)
    import torch
    from huggingface_hub.constants import HF_HUB_CACHE

    console.print(f"Done: suite '{loaded.name}' has its weights → {HF_HUB_CACHE} (file URLs: {torch.hub.get_dir()}/checkpoints)"
                  + (" (other things are still missing, above)." if others else "."))


@app.command()
def convert(
    name_or_folder: Annotated[str, typer.Argument(help="A model or pipeline folder, or a cached hub id, with pickled .bin weights.")],
) -> None:
    """Write safetensors beside a model's pickled .bin weights, read as a plain state dict (nothing else is unpickled)."""
    from localctrl.models.convert import convert_to_safetensors

    written = convert_to_safetensors(name_or_folder, say=console.print)
    folders = sorted({str(path.parent.resolve()) for path in written})
    console.print(f"{len(written)} safetensors file(s) written" + (f" → {', '.join(folders)}" if folders else "")
                  + "; localctrl loads them from now on.")


@app.command()
def stack(
    base: Annotated[str, typer.Argument(help="tiny | sd15-random | a diffusers pipeline folder | a cached hub id")] = "tiny",
    seed: Annotated[int, typer.Option(help="Seed of random-weight stacks.")] = 0,
    adapter: Annotated[Literal[AdapterKind, "none"] | None, typer.Option(
        help="Also build a random adapter of this kind and check it fits (default: the base's own, full or full_xl).")] = None,
    save: Annotated[Path | None, typer.Option(help="Write the stack (and adapter) in the diffusers folder format here.")] = None,
) -> None:
    """Load or build a model stack, print its parts and check an adapter lines up with its UNet."""
    from localctrl.models.adapters import adapter_feature_shapes, build_adapter, default_kind
    from localctrl.models.stacks import RANDOM_BASES, load_stack

    loaded = load_stack(base, seed=seed)
    adapter = adapter or default_kind(loaded)
    table = Table("module", "parameters", title=f"Stack {loaded.source} ({loaded.image_size}² images)")
    for name, count in loaded.parameter_counts().items():
        table.add_row(name, f"{count / 1e6:.2f} M")
    table.add_row("tokenizer", f"{len(loaded.tokenizer)} tokens")
    table.add_row("scheduler", type(loaded.scheduler).__name__)
    console.print(table)
    built = None
    if adapter != "none" and base in RANDOM_BASES:
        built = build_adapter(RANDOM_BASES[base], adapter, seed=seed)
        loaded.check_adapter(built)
        console.print(f"{adapter} adapter features {adapter_feature_shapes(built, loaded.image_size)} fit the UNet's down blocks.")
    if save is not None:
        loaded.save_pretrained(save)
        if built is not None:
            built.save_pretrained(save / f"adapter-{adapter}", safe_serialization=True)
        console.print(f"Saved to {save.resolve()}")


@app.command()
def ui(
    host: Annotated[str, typer.Option(help="Interface to bind; 127.0.0.1 keeps runs private to this machine.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port of the MLflow UI.")] = 5000,
    open_browser: Annotated[bool, typer.Option("--open", help="Open the first runs table in a browser once the UI answers.")] = False,
) -> None:
    """Open the MLflow UI on the store localctrl logs to (MLFLOW_TRACKING_URI or ./localctrl-runs), with direct links
    to the bench and train experiments' runs tables (MLflow 3 opens an experiment on its GenAI overview otherwise)."""
    import time
    import urllib.request
    import webbrowser

    from localctrl.common.tracking import runs_links, tracking_uri, ui_command

    links = runs_links(host=host, port=port)
    console.print(f"MLflow UI for {tracking_uri()} at http://{host}:{port} (Ctrl-C to stop)")
    for name, link in links.items():
        console.print(f"  {name} runs: {link}")
    if not links:
        console.print("  (no bench or train runs in this store yet)")
    sys.stdout.flush()  # the links before the server's own log, also when stdout is a pipe
    server = subprocess.Popen(ui_command(host=host, port=port))
    try:
        if open_browser and links:
            deadline = time.monotonic() + 120
            while server.poll() is None and time.monotonic() < deadline:
                try:
                    urllib.request.urlopen(f"http://{host}:{port}/health", timeout=2).close()
                    webbrowser.open(next(iter(links.values())))
                    break
                except OSError:
                    time.sleep(0.5)
        raise typer.Exit(server.wait())
    except KeyboardInterrupt:
        server.terminate()
        server.wait()
        raise typer.Exit(0) from None


if __name__ == "__main__":
    app()
