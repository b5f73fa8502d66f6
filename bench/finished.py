"""A bench rerun with nothing to compute: the record a finished run leaves, and the check that nothing it read or wrote
has changed since.

Every stage of `localctrl bench` is cached by content keys (bench.keys), but computing those keys means building the
models and hashing their weights: seconds of imports (torch, diffusers, transformers) for a rerun that then computes
nothing. So a run that scored and logged everything leaves `<out>/.bench-finished.json`, a fingerprint of
- what it read: the resolved suite (and its file), the options, localctrl's own files (code and shipped weights), the
  installed libraries, and the files of the base, the methods' weights, the data and every metric network, by path,
  size and modification time (as make and ninja judge files: a changed file is a changed input);
- what it wrote: every file under --out and the trained adapters it used;
with its results, notes and MLflow runs. A later invocation with the same options whose fingerprint is unchanged, and
whose MLflow runs are still there, prints those results and logs this invocation's time, machine and commit, loading
no model. Anything else, or `--recheck`, takes the full path, whose content keys decide what is computed again; it
then writes a new record.
"""

import json
import os
import sys
import sysconfig
import time
from datetime import datetime, timezone
from pathlib import Path

import bench
import localctrl
from bench.invocation import BenchOptions, BenchResult, output_folder, resolve
from bench.suite import Suite, suite_file
from localctrl.common.files import write_text
from localctrl.common.hashing import json_hash
from localctrl.data.manifest import MANIFEST, read_manifest
from localctrl.models.weights import ModelNotAvailableError, components, resolve_pretrained

RECORD = ".bench-finished.json"
VERSION = 1  # bump when what a record holds changes: older records are then not trusted
CODE = (Path(localctrl.__file__).parent, Path(bench.__file__).parent)  # localctrl's code and shipped weights


def files_state(*roots: str | Path, skip: tuple[str, ...] = ()) -> str:
    """Hash of (path, size, mtime_ns) of every file under `roots` (links followed; a missing root counts as absent);
    file names ending in `skip` and __pycache__ folders are left out."""
    entries = []
    for root in map(Path, roots):
        if root.is_file():
            entries.append(file_entry(root))
        elif root.is_dir():
            for folder, subfolders, names in os.walk(root, followlinks=True):
                subfolders[:] = sorted(name for name in subfolders if name != "__pycache__")
                entries += [file_entry(Path(folder) / name) for name in sorted(names) if not name.endswith(skip)]
        else:
            entries.append([str(root), "absent"])
    return json_hash(entries)


def file_entry(path: Path) -> list:
    try:
        found = path.stat()
    except OSError:  # a dangling link
        return [str(path), "unreadable"]
    return [str(path), found.st_size, found.st_mtime_ns]


def libraries() -> str:
    """The interpreter and every installed distribution with its version (the names of their .dist-info folders)."""
    folders = dict.fromkeys(sysconfig.get_paths()[key] for key in ("purelib", "platlib"))
    names = [sorted(name for name in os.listdir(folder) if name.endswith((".dist-info", ".egg-info", ".egg-link", ".pth")))
             for folder in folders if os.path.isdir(folder)]
    return json_hash([sys.version, names])


def model_state(name: str | None) -> str | None:
    """A model named in a suite: a folder or a hub id in the Hugging Face cache (its files' state, or absent), or a
    built-in name (tiny, shapes-base: localctrl's code and shipped files, in CODE)."""
    if name in (None, "random"):
        return name
    looks_like_hub_id = name.count("/") == 1 and not name.startswith((".", "/", "~"))
    if not Path(name).expanduser().exists() and not looks_like_hub_id:
        return f"built-in {name}"
    try:
        return files_state(resolve_pretrained(name))
    except ModelNotAvailableError:  # mechanics mode stands in for it; fetching it later changes the state
        return f"absent {name}"


def metric_networks() -> str:
    """The files of every metric network found here (a hub repo: its whole snapshot folder)."""
    states = {}
    for component in components():
        if component.metric:
            found = component.locate()
            in_hub_cache = found is not None and "snapshots" in found.parts  # the marker file of a repo's snapshot folder
            states[component.name] = files_state(found.parent if in_hub_cache else found) if found else "absent"
    return json_hash(states)


def data_state(suite: Suite) -> str:
    """The shapes world is rendered by the code; a manifest dataset: the manifest and every file it names."""
    if suite.data.source == "shapes":
        return "shapes"
    folder = Path(suite.data.source)
    if not (folder / MANIFEST).is_file():
        return f"absent {folder}"
    items = read_manifest(folder, check_files=False, strict=False)
    named = [path for item in items for path in (item.image, *item.conditions.values(), *item.masks.values())]
    return files_state(folder / MANIFEST, *named)


def inputs(suite: Suite, options: BenchOptions, name_or_path: str) -> dict[str, str]:
    """What the invocation reads, part by part (a record names the parts that changed)."""
    from localctrl.common.tracking import tracking_uri

    path = suite_file(name_or_path)
    chosen = options.model_dump(mode="json", exclude={"dry_run", "shard"})
    chosen |= {"out": str(output_folder(suite, options).resolve()), "cache": str(Path(options.cache).resolve())}
    weights = [model_state(suite.base)] + [model_state(method.weights) for method in suite.methods.values()]
    return {"suite": json_hash([suite.model_dump(mode="json"), files_state(path) if Path(path).is_file() else str(path)]),
            "options": json_hash(chosen), "code": files_state(*CODE), "libraries": libraries(), "models": json_hash(weights),
            "data": data_state(suite), "metric networks": metric_networks(),
            "tracking": tracking_uri() if options.log else "not logged"}


def outputs(out: Path, trained: list[str]) -> str:
    """What the invocation wrote: every file under `out` but the record and lock files, and the trained adapters used."""
    return files_state(out, *trained, skip=(RECORD, ".lock"))


def write_record(out: Path, read: dict[str, str], result: BenchResult, trained: list[str]) -> None:
    """After a full run that scored (and logged) everything: what a rerun compares itself with."""
    children = child_runs(result.run_id) if result.run_id else []
    record = {"version": VERSION, "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"), "inputs": read,
              "trained": trained, "outputs": outputs(out, trained), "counts": result.counts, "results": result.results,
              "notes": result.notes, "run_id": result.run_id, "children": children}
    write_text(out / RECORD, json.dumps(record, indent=1) + "\n")


def read_record(out: Path) -> dict | None:
    try:
        record = json.loads((out / RECORD).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and record.get("version") == VERSION else None


def changed(name_or_path: str, options: BenchOptions) -> tuple[list[str], Suite, dict | None]:
    """The parts of the last finished run's record that no longer hold (["no record"] without one; [] = nothing
    changed), the resolved suite, and the record."""
    suite = resolve(name_or_path, options)
    out = output_folder(suite, options)
    record = read_record(out)
    if record is None:
        return ["no record"], suite, None
    now = inputs(suite, options, name_or_path)
    parts = [part for part in now if record["inputs"].get(part) != now[part]]
    if outputs(out, record["trained"]) != record["outputs"]:
        parts.append("outputs")
    if not parts and record["run_id"] and not still_logged(record):
        parts.append("MLflow runs")
    return parts, suite, record


def child_runs(run_id: str) -> list[str]:
    from mlflow import MlflowClient

    from bench.stages.log import EXPERIMENT
    from localctrl.common.tracking import experiment_id, use_tracking

    use_tracking()
    runs = MlflowClient().search_runs([experiment_id(EXPERIMENT)], f"tags.`localctrl.bench.parent` = '{run_id}'")
    return sorted(run.info.run_id for run in runs if run.info.status == "FINISHED")


def still_logged(record: dict) -> bool:
    """The record's parent run is in the current store, active and finished, with all its method runs."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    from localctrl.common.tracking import use_tracking

    use_tracking()
    try:
        run = MlflowClient().get_run(record["run_id"])
    except MlflowException:
        return False
    return (run.info.lifecycle_stage == "active" and run.info.status == "FINISHED"
            and child_runs(record["run_id"]) == record["children"])


def log_invocation(run_id: str, counts: dict[str, int], seconds: float, device: str) -> None:
    """What every invocation logs on its parent run (bench.stages.log.log_suite): its plan counts, time, machine, commit."""
    from mlflow import MlflowClient
    from mlflow.entities import Metric, RunTag

    from localctrl.common.machine import describe_machine
    from localctrl.common.tracking import git_commit

    now = int(time.time() * 1000)
    metrics = [Metric(f"plan_{name}", value, now, 0) for name, value in counts.items()] + [Metric("bench_seconds", seconds, now, 0)]
    tags = [RunTag("localctrl.bench.machine", describe_machine(device)), RunTag("localctrl.bench.commit", git_commit() or "none")]
    MlflowClient().log_batch(run_id, metrics=metrics, tags=tags)


def finished_rerun(name_or_path: str, options: BenchOptions, say=print) -> BenchResult | None:
    """The result of the last finished run when nothing it read or wrote has changed (this invocation is logged as a
    rerun that computed nothing); None when the full path must run (it says which parts changed, if there was a record)."""
    started = time.perf_counter()
    if options.dry_run or options.shard is not None:
        return None
    parts, suite, record = changed(name_or_path, options)
    if parts:
        if record is not None:
            say(f"checking every stage: changed since the finished run of {record['finished']}: {', '.join(parts)}")
        return None
    counts = {"items": record["counts"]["items"], "images": record["counts"]["images"], "cached": record["counts"]["images"],
              "generated": 0, "trained": 0}
    if record["run_id"]:
        log_invocation(record["run_id"], counts, time.perf_counter() - started, options.device)
    out = output_folder(suite, options)
    say(f"nothing to compute: what the finished run of {record['finished']} read and wrote is unchanged "
        f"({out / RECORD}; --recheck checks every stage)")
    return BenchResult(suite, out, counts, record["results"], record["run_id"], record["notes"])
