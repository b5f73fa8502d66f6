"""`localctrl perf`: throughput measured side by side in one run; a table with ratios and a JSON.

Presets:
- `cpu` (tiny random stack, 64²): sampling images/s of localctrl's sampler vs diffusers' StableDiffusionAdapterPipeline
  called once per image (what the reference code did) and at the same batch, in fp32 and bf16 autocast; images/s of
  each metric; a fully cached `smoke` bench rerun vs its first run; training steps/s and peak RSS.
- `gpu` (the prepared GPU check, scripts/gpu_check.sh): the SD1.5 architecture with random weights (`sd15-random`) at 512², 30 DDIM
  steps, CFG 7.5; images/s and model-FLOPs utilisation at batch 1, 8, 16, 32 for our sampler (SDPA; + channels_last;
  + torch.compile with --compile) and for the diffusers pipeline, at the same precision; adapter training at batch 4
  with the frozen UNet in bf16 and gradient checkpointing: steps/s and peak memory. Then the same for SDXL's shapes
  (`sdxl-random`) at 1024², batch 1 and 4, our plain sampler beside StableDiffusionXLAdapterPipeline (`sdxl` in the JSON). The JSON is rewritten after every
  measurement, so a run stopped by a time limit still leaves what it measured; the table is printed last.
Both presets also time training with its real input pipeline (bench.perf.input_pipeline): today's loop, DataLoader
workers, workers + latent cache; cpu on the tiny stack and on sd15-random at 512² (batch 1), gpu on sd15-random at 512²
(batch 4). `--only input-pipeline` runs that measurement alone (its JSON: <preset>-input-pipeline.json), `--only reruns` the
whole-process reruns of `--rerun-suite` (default smoke; <preset>-reruns.json).
MFU = (UNet FLOPs of one call at the batch, both CFG branches, × steps + adapter FLOPs once per image) / wall time /
the card's measured bf16 matmul rate; FLOPs counted by FlopCounterMode (bench.perf.flops).
`--quick` shrinks every size so a CPU test runs either preset's code path on the tiny stack in seconds; its numbers
are not for reading and it judges no goal. Every timing repeats until steady and goals are judged against its spread
(bench.perf.timing).
"""

import gc
import json
import time
from datetime import datetime, timezone
from pathlib import Path

import diffusers
import torch
from pydantic import Field

from bench.perf.flops import matmul_rate
from bench.perf.input_pipeline import CACHED, PHASES, TODAY, PipelineRun, input_pipeline_throughput
from bench.perf.sampling import flops_per_batch, model_flops, perf_requests, sampling_row, stock_pipeline, time_ours, time_stock
from bench.perf.timing import QUICK_NOTE, QUICK_REPEATS, goal_lines, judge, rate_ratio, with_spread
from bench.perf.training import training_throughput
from localctrl.common.files import write_text
from localctrl.common.machine import cpu_name
from localctrl.common.text_table import markdown_table
from localctrl.common.tracking import git_commit
from localctrl.config import PerfOnly, PerfPrecision, PerfPreset, SamplerSettings, Section
from localctrl.local_adapter import LocalAdapter
from localctrl.models.adapters import build_adapter, default_kind
from localctrl.models.stacks import load_stack
from localctrl.sampling import sample, to_uint8

PRESETS = {
    "cpu": dict(base="tiny", device="cpu", steps=20, batches=(16,), images=32, train_steps=10, metric_images=64,
                # a sd15-random step at 512² takes ~12 s on 2 CPU cores: 2 warm-up steps, then 3 to 5 rounds (until steady) of
                # two steps a variant (one step a round left the rounds' ratios ±18–20% apart)
                input_pipeline=(PipelineRun(base="tiny", batch=4, steps_per_repeat=5),
                                PipelineRun(base="sd15-random", batch=1, steps_per_repeat=2, max_repeats=5, budget_s=900.0))),
    "gpu": dict(base="sd15-random", device="cuda", steps=30, batches=(1, 8, 16, 32), images=8, train_steps=10, budget_s=360.0,
                xl_base="sdxl-random", xl_batches=(1, 4), xl_budget_s=480.0,
                input_pipeline=(PipelineRun(base="sd15-random", batch=4, steps_per_repeat=2),)),
}
QUICK = dict(steps=2, batches=(1, 2), images=2, train_steps=2, metric_images=4, matmul_size=256, xl_base="tiny-xl", xl_batches=(1, 2),
             input_pipeline=(PipelineRun(base="tiny", batch=2),))
INPUT_PIPELINE_ITEMS = 16  # photos prepared for the input-pipeline measurement (QUICK: 4)
GPU_PRECISIONS = {"bf16-weights": "bf16 weights (torch_dtype=bfloat16), no autocast, for both samplers",
                  "bf16-autocast": "fp32 weights under bf16 autocast, for both samplers"}


class PerfOptions(Section):
    preset: PerfPreset = "cpu"
    out: Path | None = None  # default localctrl-runs/perf/<preset>.json
    base: str | None = None  # None: the preset's (and the rest likewise)
    device: str | None = None
    steps: int | None = Field(None, ge=1)
    guidance: float = 7.5
    batches: tuple[int, ...] | None = None
    images: int | None = Field(None, ge=1)  # images per sampling measurement (at least; whole batches)
    train_steps: int | None = Field(None, ge=1)
    train_batch: int = 4
    metric_images: int | None = None
    precision: PerfPrecision = "bf16-weights"  # gpu preset: GPU_PRECISIONS
    compile: bool = False  # gpu preset: also time our sampler with the UNet under torch.compile
    matmul_size: int | None = None
    budget_s: float | None = None  # gpu preset: measurements not started by then are skipped (and say so)
    xl_base: str | None = None  # gpu preset: the SDXL stack measured after `base` ("" leaves SDXL out)
    xl_batches: tuple[int, ...] | None = None
    xl_budget_s: float | None = None  # gpu preset: as budget_s, for the SDXL measurements (seconds from the start)
    rerun_suite: str | None = "smoke"  # cpu preset: None skips the cached-rerun measurement
    input_pipeline: tuple[PipelineRun, ...] | None = None  # the stacks (and batches) of the input-pipeline measurement
    only: PerfOnly | None = None  # one measurement alone
    quick: bool = False
    settings: dict = {}  # resolved values, recorded in the JSON

    def resolve(self) -> "PerfOptions":
        defaults = {**PRESETS[self.preset], "matmul_size": 8192, **(QUICK if self.quick else {})}
        values = {name: getattr(self, name) if getattr(self, name, None) is not None else value for name, value in defaults.items()}
        out = self.out or Path("localctrl-runs/perf") / f"{self.preset}{f'-{self.only}' if self.only else ''}.json"
        resolved = self.model_copy(update={"out": out, **values})
        return resolved.model_copy(update={"settings": resolved.model_dump(mode="json", exclude={"settings"})})


def environment(device: torch.device) -> dict:
    """Where and when the numbers were measured, and on which code (a committed JSON says what it is of)."""
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name()
    return {"started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"), "commit": git_commit(), "device": str(device),
            "device_name": name, "threads": torch.get_num_threads(), "torch": torch.__version__, "diffusers": diffusers.__version__}


def images_for(batch: int, at_least: int) -> int:
    return -(-max(batch, at_least) // batch) * batch


def save(result: dict, out: Path) -> None:
    write_text(out, json.dumps(result, indent=2) + "\n")


# --- cpu preset --------------------------------------------------------------------------------------------------------

def run_cpu(options: PerfOptions) -> dict:
    from bench.perf.reruns import whole_process_reruns
    from bench.perf.scoring import metric_throughput  # the metric networks: this preset only

    diffusers.utils.logging.set_verbosity_error()  # Stack.to's "kept in float32" notes would bury the table
    device = torch.device(options.device)
    stack = load_stack(options.base).to(device)
    adapter = LocalAdapter(build_adapter(stack, "full", in_channels=1, seed=0)).to(device)
    size = stack.image_size
    result = {"preset": "cpu", "options": options.settings, **environment(device), "base": stack.source, "image_size": size,
              "scheduler": "ddim", "sampling": [], "ratios": {}}
    # Training first: on CPU its peak is the process's RSS, which the metric networks loaded later would inflate.
    result["training"] = training_throughput(load_stack(options.base), device, batch=options.train_batch, steps=options.train_steps,
                                             warmup=2, mixed_precision=None, checkpointing=False)
    result["input_pipeline"] = measure_input_pipeline(options)
    save(result, options.out)
    pipeline = stock_pipeline(stack, adapter, "ddim")
    repeats = QUICK_REPEATS if options.quick else {}
    with torch.no_grad():
        for precision, autocast_dtype in (("fp32", None), ("bf16 autocast", torch.bfloat16)):
            settings = SamplerSettings(steps=options.steps, guidance=options.guidance, precision="bf16" if autocast_dtype else "fp32")
            images = images_for(max(options.batches), options.images)
            requests = perf_requests(images, size)
            per_image = sampling_row("diffusers", "one image a call", precision, 1, images,
                                     time_stock(pipeline, requests, 1, settings, size, autocast_dtype, **repeats))
            result["sampling"].append(per_image)
            for batch in options.batches:
                batch_settings = settings.model_copy(update={"batch_size": batch})
                ours = sampling_row("localctrl", "sampler", precision, batch, images,
                                    time_ours(stack, adapter, requests, batch_settings, **repeats))
                stock = sampling_row("diffusers", f"batch {batch}", precision, batch, images,
                                     time_stock(pipeline, requests, batch, settings, size, autocast_dtype, **repeats))
                result["sampling"] += [ours, stock]
                result["ratios"][f"{precision}, batch {batch}"] = {
                    "vs_per_image": rate_ratio(ours, per_image), "vs_same_batch": rate_ratio(ours, stock)}
        requests = perf_requests(options.metric_images, size, seed=1)
        generated = to_uint8(sample(stack, requests, adapter, SamplerSettings(steps=options.steps, batch_size=max(options.batches)),
                                    progress=False))
    masks = torch.stack([r.mask for r in requests])
    result["scoring"] = metric_throughput(generated, masks, torch.stack([r.condition for r in requests]), [r.prompt for r in requests],
                                          **repeats)
    result["cached_rerun"] = whole_process_reruns(options.rerun_suite, **repeats) if options.rerun_suite else None
    result["goals"] = cpu_goals(result) | input_pipeline_goals(result) | rerun_goals(result)
    save(result, options.out)
    return result


def rerun_goals(result: dict) -> dict:
    """Issue 18's floor: a fully cached whole-process `smoke` rerun takes at most 25% of its first run."""
    if not (rerun := result["cached_rerun"]) or rerun["suite"] != "smoke":
        return {}
    return {"smoke_rerun_vs_first": judge(rerun["rerun_fraction"], rerun["rerun_spread"], ceiling=0.25,
                                          quick=result["options"]["quick"])}


def cpu_goals(result: dict) -> dict:
    """Issue 7's CPU floors on the tiny stack, at fp32: ≥ 3× the per-image diffusers loop, ≥ 0.95× diffusers at equal batch."""
    largest, quick = max(result["options"]["batches"]), result["options"]["quick"]
    vs_loop = result["ratios"][f"fp32, batch {largest}"]["vs_per_image"]  # our batched sampler vs the reference's loop
    vs_batch = min((r["vs_same_batch"] for name, r in result["ratios"].items() if name.startswith("fp32")),
                   key=lambda ratio: ratio["value"])
    return {"sampler_vs_per_image_loop": judge(vs_loop["value"], vs_loop["spread"], floor=3.0, quick=quick),
            "sampler_vs_same_batch": judge(vs_batch["value"], vs_batch["spread"], floor=0.95, quick=quick)}


def cpu_table(result: dict) -> str:
    o = result["options"]
    lines = [(f"{result['base']}, {result['image_size']}², {o['steps']} DDIM steps, CFG {o['guidance']}, "
              f"{result['threads']} threads, {result['device_name']}"),
             ""]
    sampling = []
    for precision in ("fp32", "bf16 autocast"):
        rows = [row for row in result["sampling"] if row["precision"] == precision]
        ours = {row["batch"]: row for row in rows if row["sampler"] == "localctrl"}
        for row in rows:  # the per-image loop is compared with our largest batch, the other rows at their own batch
            mine = ours[max(ours)] if row["variant"] == "one image a call" else ours[row["batch"]]
            label = f"{'localctrl sampler' if row['sampler'] == 'localctrl' else 'diffusers adapter pipeline'}, " + (
                f"batch {row['batch']}" if row["sampler"] == "localctrl" else row["variant"]) + f", {precision}"
            versus = rate_ratio(mine, row)
            sampling.append([label, row["images"], with_spread(row["images_per_s"], row["spread"]),
                             with_spread(versus["value"], versus["spread"])])
    lines.append(markdown_table(["sampling", "images", "images/s ±spread", "ours ÷ it"], sampling))
    lines.append(markdown_table([f"scoring (per-sample metrics, {result['scoring'][0]['images']} images)", "images/s"],
                                [[row["metric"], with_spread(row["images_per_s"], row["spread"])] for row in result["scoring"]]))
    lines += rerun_lines(result["cached_rerun"])
    lines.append(training_line(result["training"]))
    lines += input_pipeline_lines(result["input_pipeline"])
    lines += goal_lines(result["goals"], quick=o["quick"])
    return "\n".join(([QUICK_NOTE] if o["quick"] else []) + lines)


def rerun_lines(rerun: dict | None) -> list[str]:
    if not rerun:
        return []
    return [f"bench {rerun['suite']}, whole processes: first run {rerun['first_s']:.1f} s (one run: a first run cannot be "
            f"repeated), fully cached rerun {with_spread(rerun['rerun_s'], rerun['rerun_spread'])} s "
            f"({rerun['rerun_fraction']:.0%} of the first; {rerun['speedup']:.1f}× faster), with --recheck "
            f"{with_spread(rerun['recheck_s'], rerun['recheck_spread'])} s, then report "
            f"{with_spread(rerun['report_s'], rerun['report_spread'])} s",
            f"imported by the cached rerun: {', '.join(rerun['rerun_imports']) or 'none of them'}; by report: "
            f"{', '.join(rerun['report_imports']) or 'none of them'}"]


# --- gpu preset --------------------------------------------------------------------------------------------------------

def run_gpu(options: PerfOptions) -> dict:
    """The prepared GPU check (SD 1.5's shapes, then SDXL's); every measurement is saved as soon as it is made."""
    diffusers.utils.logging.set_verbosity_error()  # the bf16 casts' "kept in float32" notes would bury the table
    start, device = time.perf_counter(), torch.device(options.device)
    result = {"preset": "gpu", "options": options.settings, **environment(device), "precision": GPU_PRECISIONS[options.precision],
              "scheduler": "ddim", "sampling": [], "skipped": []}
    result["matmul"] = {"size": options.matmul_size, "dtype": "bfloat16",
                        "flops_per_s": matmul_rate(device, options.matmul_size, torch.bfloat16)}
    save(result, options.out)
    variants = [("SDPA", {}), ("SDPA + channels_last", {"channels_last": True})]
    if options.compile:
        variants.append(("SDPA + channels_last + torch.compile", {"channels_last": True, "compile": True}))
    measure_stack(options, options.base, options.batches, variants, options.budget_s, start, result, result)
    result["goals"] = gpu_goals(result)
    if options.xl_base:  # SDXL at its size beside SD 1.5 at its own; the plain sampler only (compiling it takes minutes)
        result["sdxl"] = {"sampling": [], "skipped": []}
        measure_stack(options, options.xl_base, options.xl_batches, variants[:1], options.xl_budget_s, start, result["sdxl"],
                      result)
    result["input_pipeline"] = measure_input_pipeline(options)  # last: it loads its own stack and prepares its own data
    result["goals"] |= input_pipeline_goals(result)
    result["seconds"] = time.perf_counter() - start
    save(result, options.out)
    return result


def measure_stack(options: PerfOptions, base: str, batches: tuple[int, ...], variants: list, budget_s: float | None,
                  start: float, section: dict, result: dict) -> None:
    """Training, then sampling (stock pipeline, then ours in each variant) of one random-weight stack, into `section`."""
    device, peak = torch.device(options.device), result["matmul"]["flops_per_s"]
    stack = load_stack(base, dtype=torch.bfloat16).to(device)  # training freezes it in bf16 anyway
    section |= {"base": stack.source, "image_size": stack.image_size, "parameters": stack.parameter_counts()}
    try:
        section["training"] = training_throughput(stack, device, batch=options.train_batch, steps=options.train_steps,
                                                  mixed_precision=torch.bfloat16, checkpointing=True)
    except Exception as error:  # as for the sampling variants below: a failure is recorded, the check goes on
        section["training"] = {"error": f"{type(error).__name__}: {error}"[:500]}
    save(result, options.out)
    gc.collect()  # the training's adapter, optimiser state and activations go before sampling is measured
    if device.type == "cuda":
        torch.cuda.empty_cache()

    stack.unet.disable_gradient_checkpointing()
    weights = torch.bfloat16 if options.precision == "bf16-weights" else torch.float32
    autocast_dtype = None if options.precision == "bf16-weights" else torch.bfloat16
    stack.to(dtype=weights)
    adapter = LocalAdapter(build_adapter(stack, default_kind(stack), in_channels=1, seed=0)).to(device, weights).eval()
    settings = SamplerSettings(steps=options.steps, guidance=options.guidance, precision="bf16" if autocast_dtype else "fp32")
    with torch.no_grad():
        section["flops"] = {str(b): flops_per_batch(stack, adapter, b, options.guidance > 1, autocast_dtype) for b in batches}
    save(result, options.out)
    pipeline = stock_pipeline(stack, adapter, "ddim")
    precision, repeats = options.precision, QUICK_REPEATS if options.quick else {}

    def measure(sampler: str, variant: str, batch: int, timer) -> None:
        if budget_s is not None and time.perf_counter() - start > budget_s:
            section["skipped"].append(f"{sampler} {variant} batch {batch}: past the {budget_s:.0f} s budget")
            return
        images = images_for(batch, options.images)
        try:
            timing = timer(perf_requests(images, stack.image_size))
        except Exception as error:  # one failing variant (a compiler missing, say) must not lose the rest of the check
            section["skipped"].append(f"{sampler} {variant} batch {batch}: {type(error).__name__}: {error}"[:500])
            return
        flops = model_flops(section["flops"][str(batch)], options.steps, images, batch)
        section["sampling"].append(sampling_row(sampler, variant, precision, batch, images, timing, flops, peak))
        save(result, options.out)

    # Order matters: channels_last and compile change the shared modules in place, so the stock rows come first.
    with torch.no_grad():
        for batch in batches:
            measure("diffusers", "stock", batch, lambda requests, batch=batch: time_stock(pipeline, requests, batch, settings,
                                                                                          stack.image_size, autocast_dtype,
                                                                                          **repeats))
        for variant, changes in variants:
            for batch in sorted(batches, reverse="compile" in changes):  # compile: the large batches first
                variant_settings = settings.model_copy(update={"batch_size": batch, **changes})
                measure("localctrl", variant, batch, lambda requests, s=variant_settings: time_ours(stack, adapter, requests, s,
                                                                                                     **repeats))


def gpu_goals(result: dict) -> dict:
    """Issue 7's GPU floors: ≥ 40% MFU at batch ≥ 16, ≥ 1.3× diffusers at equal batch, training peak < 24 GB."""
    quick = result["options"]["quick"]
    stock = {row["batch"]: row for row in result["sampling"] if row["sampler"] == "diffusers"}
    best: dict[int, dict] = {}
    for row in result["sampling"]:
        if row["sampler"] == "localctrl" and row["images_per_s"] > best.get(row["batch"], {}).get("images_per_s", 0):
            best[row["batch"]] = row
    goals = {}
    large = [row for batch, row in best.items() if batch >= 16]
    if large:
        top = max(large, key=lambda row: row["mfu"])
        goals["mfu_at_batch_16_plus"] = judge(top["mfu"], top["spread"], floor=0.40, quick=quick)
    ratios = [rate_ratio(row, stock[batch]) for batch, row in best.items() if batch in stock]
    if ratios:
        lowest = min(ratios, key=lambda ratio: ratio["value"])
        goals["vs_diffusers_same_batch"] = judge(lowest["value"], lowest["spread"], floor=1.3, quick=quick)
    if (training := result.get("training")) and training.get("memory", "").startswith("torch.cuda"):
        gb = training["peak_memory_mb"] / 1024  # a peak, not a timing: no spread
        goals["training_peak_gb"] = judge(gb, 0.0, ceiling=24.0, quick=quick)
    return goals


def gpu_table(result: dict) -> str:
    o = result["options"]
    lines = [f"{o['steps']} DDIM steps, CFG {o['guidance']}; {result['precision']}",
             (f"{result['device_name']}: bf16 matmul {result['matmul']['size']}³ at {result['matmul']['flops_per_s'] / 1e12:.0f} "
              "TFLOP/s; MFU = (UNet call × steps + adapter) FLOPs / s / that rate"),
             ""]
    for section in [result] + ([result["sdxl"]] if "sdxl" in result else []):
        lines += stack_lines(section)
    lines += input_pipeline_lines(result.get("input_pipeline", []))
    lines += goal_lines(result["goals"], quick=o["quick"])
    return "\n".join(([QUICK_NOTE] if o["quick"] else []) + lines)


def stack_lines(section: dict) -> list[str]:
    """One stack's part of the GPU table: its sampling rows, what was skipped, its training line."""
    if "base" not in section:  # its stack was never loaded (the check stopped first)
        return []
    stock = {row["batch"]: row for row in section["sampling"] if row["sampler"] == "diffusers"}
    rows = []
    for row in sorted(section["sampling"], key=lambda row: (row["batch"], row["sampler"] == "localctrl")):
        label = "diffusers adapter pipeline" if row["sampler"] == "diffusers" else f"localctrl ({row['variant']})"
        versus = with_spread(**rate_ratio(row, stock[row["batch"]])) if row["batch"] in stock else "n/a"
        rows.append([label, row["batch"], with_spread(row["images_per_s"], row["spread"]), f"{row['mfu']:.1%}", versus])
    lines = [f"{section['base']}, {section['image_size']}²",
             markdown_table(["sampler", "batch", "images/s ±spread", "MFU", "÷ diffusers"], rows)]
    lines += [f"skipped: {note}" for note in section["skipped"]]
    return lines + ([training_line(section["training"])] if "training" in section else [])


# --- shared ------------------------------------------------------------------------------------------------------------

def training_line(training: dict) -> str:
    if "error" in training:
        return f"training: failed: {training['error']}"
    return (f"training: batch {training['batch']}, frozen {training['frozen_dtype']}"
            f"{', gradient checkpointing' if training['gradient_checkpointing'] else ''}: "
            f"{with_spread(training['steps_per_s'], training['spread'])} steps/s, "
            f"peak {training['peak_memory_mb'] / 1024:.2f} GB, {training.get('memory_before_mb', float('nan')) / 1024:.2f} GB before "
            f"the steps ({training['memory']})")


def measure_input_pipeline(options: PerfOptions) -> list[dict]:
    """The input-pipeline measurement at the preset's precision: fp32 on CPU, bf16 with gradient checkpointing on GPU."""
    gpu = options.preset == "gpu"
    return input_pipeline_throughput(options.input_pipeline, options.device, torch.bfloat16 if gpu else None, checkpointing=gpu,
                                     items=4 if options.quick else INPUT_PIPELINE_ITEMS, quick=options.quick)


def input_pipeline_goals(result: dict) -> dict:
    """Issue 18's floor: with the latent cache (and workers), ≥ 1.3× today's training steps/s on sd15-random at 512²."""
    for section in result.get("input_pipeline", []):
        if section["base"].startswith("sd15-random") and section.get("image_size") == 512 and "ratios" in section:
            ratio = section["ratios"][CACHED]
            return {"latent_cache_vs_today_sd15_512": judge(ratio["value"], ratio["spread"], floor=1.3,
                                                            quick=result["options"]["quick"])}
    return {}


def input_pipeline_lines(sections: list[dict]) -> list[str]:
    """Per stack: each variant's steps/s, its ratio to today's loop, and where a step's time goes."""
    lines = []
    for section in sections:
        if "error" in section:
            lines.append(f"training input pipeline on {section['base']}: failed: {section['error']}")
            continue
        rows = []
        for row in section["rows"]:
            versus = section["ratios"].get(row["variant"])
            rounds = f"{min(versus['per_round']):.2f}–{max(versus['per_round']):.2f}" if versus else ""
            rows.append([row["variant"], with_spread(row["steps_per_s"], row["spread"]), f"{1 / row['steps_per_s']:.3f}",
                         with_spread(versus["value"], versus["spread"]) if versus else "1.00", rounds, row["timed_steps"],
                         *(f"{row['phase_seconds'][phase]:.3f}" for phase in PHASES)])
        build = next(row["cache_build_s"] for row in section["rows"] if row["latent_cache"])
        lines += [(f"training input pipeline: {section['base']}, {section['image_size']}², batch {section['batch']}, frozen "
                   f"{section['frozen_dtype']}{', gradient checkpointing' if section['gradient_checkpointing'] else ''}; "
                   f"{section['items']} prepared photos (manifest, OpenCV edges) → DataLoader → latents → control_loss → "
                   "backward → AdamW"),
                  markdown_table(["variant", "steps/s ±spread", "s/step", f"÷ {TODAY.split(' (')[0]}", "per round", "timed steps",
                                  *(f"{phase} s" for phase in PHASES)], rows),
                  f"latent cache built once, before the timing: {build:.1f} s for {section['items']} items"]
    return lines


def run_input_pipeline(options: PerfOptions) -> dict:
    """`--only input-pipeline`: that measurement alone, at the preset's sizes and precision."""
    diffusers.utils.logging.set_verbosity_error()
    result = {"preset": options.preset, "only": options.only, "options": options.settings, **environment(torch.device(options.device)),
              "input_pipeline": measure_input_pipeline(options)}
    result["goals"] = input_pipeline_goals(result)
    save(result, options.out)
    return result


def run_reruns(options: PerfOptions) -> dict:
    """`--only reruns`: the whole-process reruns of `options.rerun_suite` alone."""
    from bench.perf.reruns import whole_process_reruns

    result = {"preset": options.preset, "only": options.only, "options": options.settings, **environment(torch.device("cpu")),
              "cached_rerun": whole_process_reruns(options.rerun_suite or "smoke", **(QUICK_REPEATS if options.quick else {}))}
    result["goals"] = rerun_goals(result)
    save(result, options.out)
    return result


def run_perf(options: PerfOptions) -> tuple[dict, str]:
    """Resolve the preset, measure, write the JSON (`options.out`); returns the result and its table."""
    options = options.resolve()
    if options.only == "input-pipeline":
        result = run_input_pipeline(options)
        lines = input_pipeline_lines(result["input_pipeline"])
    elif options.only == "reruns":
        result = run_reruns(options)
        lines = rerun_lines(result["cached_rerun"])
    if options.only:
        lines += goal_lines(result["goals"], quick=options.quick)
        return result, "\n".join(([QUICK_NOTE] if options.quick else []) + lines)
    if options.preset == "cpu":
        result = run_cpu(options)
        return result, cpu_table(result)
    result = run_gpu(options)
    return result, gpu_table(result)
