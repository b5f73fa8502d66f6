"""`localctrl bench`: the pipeline top to bottom, plan → (train) → generate → detect → score → log (bench/stages/),
each stage cached (bench.keys) and resumable.

Everything that can fail on bad input — the suite file, the base stack, the data (missing files, mask sizes), the
metric weights, the methods' adapters and conditions — is checked before the first image is generated.
"""

import os
import time
from pathlib import Path

import numpy as np
import torch
from accelerate import PartialState
from accelerate.utils import gather_object
from mlflow.exceptions import MlflowException
from rich.console import Console
from rich.markup import escape
from rich.progress import Progress

from bench.finished import inputs, write_record
from bench.invocation import BenchOptions, BenchResult, output_folder, resolve
from bench.keys import StackedHash, bench_key, fid_reference_key, json_hash, stack_key
from bench.metrics.networks import load_scorers
from bench.requirements import MECHANICS_BASES, MissingRequirements, mechanics_suite, missing_requirements, stand_ins
from bench.stages.detect import detect
from bench.stages.generate import generate
from bench.stages.items import CHUNK, example_set, load_items
from bench.stages.log import log_suite
from bench.stages.methods import resolve_method
from bench.stages.plan import Task, chunks, image_problems, plan_tasks, shard_of
from bench.stages.qualitative import COMPARISON_ITEMS, write_qualitative
from bench.stages.score import score_method
from bench.stages.train import needs_training, train_method, trained_folder, trainings
from bench.suite import Suite, suite_file
from localctrl.common.files import atomic, check_writable, png_problem, read_rgb, recorded_problem, remove_stray_temporaries
from localctrl.common.grids import save_captioned_grid
from localctrl.common.locks import locked
from localctrl.common.machine import describe_machine
from localctrl.common.progress import progress_bar
from localctrl.common.tracking import check_tracking, tracking_uri
from localctrl.errors import InputError, NotAvailableError
from localctrl.models.stacks import load_stack


def say_damaged(say, damaged: list[tuple[Path, str]], action: str, shown: int = 5) -> None:
    """One line per damaged cached file (the first `shown`), then how many more: what was wrong and what is done."""
    for path, problem in damaged[:shown]:
        say(f"{path} is {problem}: {action}")
    if len(damaged) > shown:
        say(f"… and {len(damaged) - shown} more damaged files: {action}")


def reference_features(suite: Suite, scorers, image_size: int, out: Path, say) -> tuple[np.ndarray | None, str | None]:
    """Features of the real reference images for FID, cached by (reference set, extractor, resolution)."""
    if scorers.fid_name is None:
        return None, None
    examples = example_set(suite, image_size, suite.metrics.fid.reference_items)

    size = getattr(scorers.fid, "batch_size", CHUNK)  # the extractor's own batch: the features of one call on all images

    def chunks_of_images():  # the reference set a chunk at a time: it is never in memory at once
        for start in range(0, len(examples), size):
            yield torch.stack([torch.from_numpy(examples.example(k).image.copy()).permute(2, 0, 1)
                               for k in range(start, min(start + size, len(examples)))])

    images = StackedHash(len(examples))
    for part in chunks_of_images():
        images.update(part)
    key = fid_reference_key(images.hexdigest(), scorers.fid_name, image_size)
    path = out / "cache" / f"fid-reference-{key}.npy"
    if (problem := recorded_problem(path)) is not None:
        say_damaged(say, [(path, problem)] if problem != "missing" else [], "computed again")
        with atomic(path, record=True) as temporary, open(temporary, "wb") as stream:
            np.save(stream, np.concatenate([scorers.fid(chunk) for chunk in chunks_of_images()]))
    return np.load(path), key


def launched_processes() -> PartialState | None:
    """The process group when run under `accelerate launch` with several processes (gloo on CPU), else None."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return None
    return PartialState(cpu=not torch.cuda.is_available())


def run_bench(name_or_path: str, options: BenchOptions = BenchOptions(), console: Console | None = None) -> BenchResult:
    started = time.perf_counter()
    console = console or Console(stderr=True)
    suite = resolve(name_or_path, options)
    out = output_folder(suite, options)
    read = inputs(suite, options, name_or_path)  # before anything is read: what a finished run's record says it read

    # --- check everything before any expensive work; what is missing first, since that check writes nothing -----
    notes, rehearsed = [], []
    if suite.base in MECHANICS_BASES:
        suite, notes = mechanics_suite(suite)
    elif missing := missing_requirements(suite):
        raise MissingRequirements(suite.name, missing)
    elif rehearsed := stand_ins(suite):  # `localctrl doctor --rehearse`: said, tagged and logged with the run
        notes.append(f"rehearsal: {len(rehearsed)} part(s) of this suite are seeded random stand-ins ({rehearsed[0]}, …): "
                     "every number of this run is meaningless")
    if not options.dry_run:
        check_writable(out, "--out")
        if any(method.train is not None for method in suite.methods.values()):
            check_writable(options.cache, "--cache")
        if options.log and not options.shard:
            check_tracking()
        if stray := remove_stray_temporaries(out) + remove_stray_temporaries(options.cache):
            console.print(f"removed {len(stray)} temporary file(s) that killed runs left under {out} and {options.cache}")
    stack = load_stack(suite.base).to(device=options.device)
    items = load_items(suite, stack.image_size, options.limit)
    scorers = load_scorers(suite, options.device)
    if cut := stack.cut_prompts(items.prompts):  # said, and logged with the run: the images ignore the prompts' ends
        notes.append(f"{len(cut)} prompt(s) are longer than the text encoder's {stack.tokenizer.model_max_length} tokens and "
                     f"are cut there (first: '{cut[0][:80]}…')")
    scorers.notes = notes + scorers.notes  # substitutions first; all of them are printed now and logged with the run
    for note in scorers.notes:
        console.print(f"[yellow]{note}[/yellow]")
    to_train = needs_training(suite, options.cache)

    if options.dry_run:
        adapters = trainings(to_train)
        counts = {"items": len(items), "methods": len(suite.methods), "trainings_needed": len(adapters)}
        console.print(f"[bold]{suite.name}[/bold] dry run: {len(items)} items × {len(suite.seeds)} seed(s) × {len(suite.methods)} methods; "
                      f"{len(adapters)} adapter(s) to train (for {', '.join(to_train) or 'none'})")
        if not to_train:
            methods = {name: resolve_method(suite, name, stack, options.cache) for name in suite.methods}
            tasks = plan_tasks(suite, items, methods, stack_key(stack), out)
            counts |= {"images": len(tasks), "cached": len(tasks) - len(image_problems(tasks))}
            console.print(f"images: {len(tasks)} planned, {counts['cached']} cached, {len(tasks) - counts['cached']} to generate")
        return BenchResult(suite, out, counts)  # metrics left out or substituted were printed above

    processes = launched_processes()
    if processes and options.shard is not None:
        raise InputError("--shard splits work across independent jobs; under accelerate launch the processes split it already")
    with progress_bar(console) as progress:
        def say(text: str) -> None:
            progress.console.print(f"[yellow]{escape(text)}[/yellow]")

        for folder, names in trainings(to_train).items():  # methods that share an adapter share one training
            progress.console.print(f"training the adapter of {', '.join(names)} → {folder}")
            train_method(to_train[names[0]], processes, say, progress)
        if processes:
            processes.wait_for_everyone()  # the main process has marked the adapters done
        methods = {name: resolve_method(suite, name, stack, options.cache) for name in suite.methods}
        tasks = plan_tasks(suite, items, methods, stack_key(stack), out)
        problems = image_problems(tasks)  # checked once: missing, or damaged (a truncated or changed PNG)
        say_damaged(say, [(task.path, problems[task.key]) for task in tasks if problems.get(task.key, "missing") != "missing"],
                    "generated again")
        cached = sum(task.key not in problems for task in tasks)  # a key two tasks share is one image: cached or not for both
        shard = (processes.process_index, processes.num_processes) if processes else options.shard
        batches = chunks(tasks, suite.sampler.batch_size, methods)
        written = generate(stack, suite, items, methods, shard_of(batches, shard), problems, progress, tasks, say)
        if processes:  # every process generated its chunks; the main one goes on to score and log them all
            written = sum(gather_object([written]))
            processes.wait_for_everyone()
            if not processes.is_main_process:
                return BenchResult(suite, out, {"generated": written})
        if options.shard is None and (left := image_problems(tasks)):  # inpainting that waited for other processes' images
            written += generate(stack, suite, items, methods, batches, left, progress, tasks, say)
        counts = {"items": len(items), "images": len(tasks), "cached": cached, "generated": written, "trained": len(trainings(to_train))}
        if options.shard is not None:
            console.print(f"shard {options.shard[0]}/{options.shard[1]}: {written} images written under {out / 'images'}; "
                          "run again without --shard to score and log")
            return BenchResult(suite, out, counts)

        # One final run per --out at a time from here on (shards only generate, so they need no lock): a second run waits,
        # then finds every score cached and the first run's MLflow runs to reuse.
        with locked(out / ".score-and-log.lock", f"scoring and logging {out}", say):
            result = finish(suite, options, name_or_path, out, stack, items, methods, tasks, counts, scorers, say, progress,
                            rehearsal=bool(rehearsed), started=started)
            trained = [str(trained_folder(suite, name, options.cache)) for name, spec in suite.methods.items() if spec.train]
            write_record(out, read, result, trained)  # a rerun with nothing changed need not load a model (bench.finished)
            return result


def finish(suite: Suite, options: BenchOptions, name_or_path: str, out: Path, stack, items, methods: dict, tasks: list[Task],
           counts: dict, scorers, say, progress: Progress, rehearsal: bool = False, started: float | None = None) -> BenchResult:
    """detect → score → log, for a run whose images are all generated (`rehearsal`: on the rehearsal's stand-ins)."""
    detections = {}
    truth = {"edges": True, "depth": items.has_depth, "labels": items.has_semantic}  # what the items can be compared with
    for kind, detector in scorers.detectors.items():
        if truth[kind]:
            detections[kind] = detect(tasks, detector, out, say, progress, device=options.device,
                                      name=scorers.detector_names[kind])
        else:
            scorers.notes.append(f"{kind} fidelity left out: the items have no {'seg labels' if kind == 'labels' else kind} "
                                 "to compare with")
    features, fid_key = reference_features(suite, scorers, stack.image_size, out, say)
    if features is not None and len(items) * len(suite.seeds) <= features.shape[1]:
        scorers.notes.append(f"FID from {len(items) * len(suite.seeds)} images per method with {features.shape[1]}-dim features: "
                             "the covariance is singular, so FID is unreliable (use more items or seeds)")
        say(scorers.notes[-1])
    by_method = {name: [t for t in tasks if t.method == name] for name in methods}
    reference_name = suite.metrics.preservation.reference_method if suite.metrics.preservation else None
    results, tables, grids = {}, {}, {}
    scoring = progress.add_task("score", total=len(methods))
    for name, method_tasks in by_method.items():
        reference = by_method[reference_name] if reference_name and name != reference_name else None
        _, results[name], tables[name] = score_method(suite, items, name, method_tasks, reference, detections, scorers, features,
                                                      fid_key, out, say)
        grids[name] = method_grid(method_tasks, items, out / "grids")
        progress.advance(scoring)
    labels = {name: spec.label or name for name, spec in suite.methods.items()}
    qualitative = write_qualitative(tasks, items, labels, out / "qualitative")
    # the comparison page's material (reports.comparison): the same, for the first COMPARISON_ITEMS items
    comparison = write_qualitative(tasks, items, labels, out / "comparison", count=COMPARISON_ITEMS)
    result = BenchResult(suite, out, counts, results, notes=scorers.notes)
    if options.log:
        names = {"fid.features": scorers.fid_name or "off", "clip": scorers.clip_name or "off", "lpips": scorers.lpips_name or "off"}
        names |= {f"detector.{kind}": name for kind, name in scorers.detector_names.items() if kind in detections}
        names |= {f"condition_model.{condition}": repo for condition, repo in items.condition_models.items()}
        key = bench_key(suite.model_dump(mode="json"), options.limit, items.ids, names if rehearsal else None,
                        {name: method.weights for name, method in methods.items()})
        try:
            result.run_id = log_suite(suite, key, counts, methods, results, tables, grids, names, str(suite_file(name_or_path)),
                                      scorers.notes, qualitative, rehearsal=rehearsal, comparison=comparison,
                                      seconds=time.perf_counter() - started if started else None,
                                      machine=describe_machine(options.device))
        except (MlflowException, OSError) as error:  # the store went away during the run
            raise NotAvailableError(f"could not log to the MLflow store {tracking_uri()} ({str(error).splitlines()[0]}); nothing is "
                                    f"lost: the images and scores are in {out}, and the same command run again logs them") from None
    return result


def method_grid(tasks: list[Task], items, folder: Path, count: int = 8) -> Path:
    """The method's first images with prompts and masks outlined; named by their keys, so a rerun reuses it."""
    shown = tasks[:count]
    path = folder / f"{shown[0].method}-{json_hash([t.key for t in shown])[:12]}.png"
    if png_problem(path) is None:
        return path
    images = torch.stack([read_rgb(t.path) for t in shown])
    item = items.load_for([t.item for t in shown])
    return save_captioned_grid(images, item.prompts, path, masks=item.masks)
