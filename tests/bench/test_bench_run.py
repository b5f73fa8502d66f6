"""`localctrl bench` end to end on the tiny stack: caching, resume after SIGKILL, bad input, MLflow runs."""

import dataclasses
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from PIL import Image
from rich.console import Console

from bench.run import BenchOptions, run_bench
from bench.suite import SuiteError, read_suite
from localctrl.local_adapter import LocalAdapter
from localctrl.models.adapters import build_adapter
from localctrl.models.architectures import TINY
from localctrl.shapes.dataset import write_shapes_dataset

NO_TRAINING = {"text-only": {"kind": "text-only"}, "random-masked": {"kind": "adapter", "weights": "random"},
               "random-global": {"kind": "adapter", "weights": "random", "mask_at_inference": False}}


def suite_file(folder: Path, name: str, **changes) -> str:
    """The smoke suite with top-level keys replaced, written as `<folder>/<name>.yaml`."""
    data = read_suite("smoke") | {"name": name} | changes
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return str(path)


def options(folder: Path, **changes) -> BenchOptions:
    return BenchOptions(out=folder / "out", cache=folder / "cache", **changes)


def bench_runs() -> list:
    experiment = mlflow.get_experiment_by_name("bench")
    return mlflow.search_runs(experiment_ids=[experiment.experiment_id], output_format="list")


def test_smoke_runs_and_a_second_run_generates_and_trains_nothing(tmp_path, unet_calls):
    shown = Console(record=True, width=200, force_terminal=True)  # as a terminal sees it: the live bars too
    first = run_bench("smoke", options(tmp_path), console=shown)
    assert first.counts == {"items": 4, "images": 20, "cached": 0, "generated": 20, "trained": 1}
    text = shown.export_text()
    folder = next((tmp_path / "cache" / "adapters").glob("*/bench-done.json")).parent.name
    assert f"training the adapter of trained-masked-z0 → {tmp_path / 'cache' / 'adapters' / folder}" in text
    assert re.search(rf"train {folder} .*━.* 2/4 ", text), "training inside bench shows its steps as they go"
    assert re.search(rf"train {folder}: 4/4 steps in \d+ s \(validation val_edge_f1_in 0\.\d+\)", text)
    parent = mlflow.get_run(first.run_id).data
    assert parent.metrics["bench_seconds"] > 0 and parent.metrics["plan_cached"] == 0 and parent.metrics["plan_trained"] == 1
    assert parent.tags["localctrl.bench.machine"].endswith(", no GPU") and "localctrl.bench.commit" in parent.tags
    assert len(unet_calls) > 0
    assert set(first.results) == {"text-only", "random-global", "random-masked", "random-blended", "trained-masked-z0"}
    assert {"fid_random-inception", "clip_score_ViT-B-16-random", "lpips_out_lpips-random-alexnet", "edge_f1_in", "seg_miou_in",
            "align_shapes", "psnr_out"} <= set(first.results["random-masked"])
    assert "psnr_out" not in first.results["text-only"]  # the preservation reference is not compared with itself

    unet_calls.clear()
    second = run_bench("smoke", options(tmp_path))
    assert len(unet_calls) == 0, "a cached rerun must not call the UNet (neither sampling nor training)"
    assert second.counts == {"items": 4, "images": 20, "cached": 20, "generated": 0, "trained": 0}
    assert second.results == first.results and second.run_id == first.run_id
    assert mlflow.get_run(first.run_id).data.metrics["plan_cached"] == 20  # the latest invocation's counts
    runs = bench_runs()
    assert len(runs) == 6, "one parent and one child per method, reused by the rerun"
    children = [run for run in runs if run.data.tags.get("localctrl.bench.role") == "method"]
    assert {run.data.tags["mlflow.parentRunId"] for run in children} == {first.run_id}
    trained = next(run for run in children if run.data.tags["localctrl.method"] == "trained-masked-z0")
    assert mlflow.get_run(trained.data.tags["localctrl.training_run_id"]).info.status == "FINISHED"
    assert trained.data.metrics["edge_f1_in"] == pytest.approx(first.results["trained-masked-z0"]["edge_f1_in"])


def per_sample_tables(out: Path) -> dict[str, pd.DataFrame]:
    return {path.name.rsplit("-", 1)[0]: pd.read_parquet(path) for path in sorted((out / "scores").glob("*.parquet"))}


def test_a_bench_killed_mid_generation_completes_with_identical_per_sample_metrics(tmp_path):
    suite = suite_file(tmp_path, "killable", methods=NO_TRAINING, data={"source": "shapes", "split": "test", "items": 8},
                       sampler={"scheduler": "ddim", "steps": 12, "guidance": 4.0, "batch_size": 2})
    command = [sys.executable, "-c", "from cli import app; app()", "bench", "--suite", suite, "--out", str(tmp_path / "killed" / "out")]
    process = subprocess.Popen(command, cwd=Path(__file__).parents[2], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               env=os.environ | {"OMP_NUM_THREADS": str(torch.get_num_threads())})  # same float reductions as here
    images = tmp_path / "killed" / "out" / "images"
    deadline = time.monotonic() + 120
    while len(list(images.rglob("*.png"))) < 4 and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    written = len(list(images.rglob("*.png")))
    assert 4 <= written < 24, f"the kill should land mid-generation ({written} of 24 images)"

    resumed = run_bench(suite, options(tmp_path / "killed"))
    assert resumed.counts["generated"] == 24 - written
    uninterrupted = run_bench(suite, options(tmp_path / "clean"))
    for method, table in per_sample_tables(tmp_path / "clean" / "out").items():
        pd.testing.assert_frame_equal(per_sample_tables(tmp_path / "killed" / "out")[method], table)
    for path in sorted((tmp_path / "clean" / "out" / "images").rglob("*.png")):
        assert path.read_bytes() == (images / path.relative_to(tmp_path / "clean" / "out" / "images")).read_bytes()
    assert resumed.results == uninterrupted.results


def test_unknown_suite_key_names_the_file_and_key_path(tmp_path):
    suite = suite_file(tmp_path, "typo", methods={"x": {"kind": "adapter", "weigths": "random"}})
    with pytest.raises(SuiteError, match=r"typo\.yaml: methods\.x\.weigths: Extra inputs are not permitted"):
        run_bench(suite, options(tmp_path))
    with pytest.raises(SuiteError, match="unknown suite 'nope'"):
        run_bench("nope", options(tmp_path))


def manifest_suite(tmp_path: Path, **changes) -> str:
    if not (tmp_path / "data" / "manifest.jsonl").is_file():
        write_shapes_dataset(tmp_path / "data", 40, seed=0, workers=1)
    settings = {"methods": NO_TRAINING, "data": {"source": str(tmp_path / "data"), "split": "test", "items": 3}} | changes
    return suite_file(tmp_path, "manifest", **settings)


def png_files(out: Path) -> dict[Path, bytes]:
    return {path: path.read_bytes() for path in sorted(out.rglob("*.png"))}


def test_bad_input_is_one_clear_error_before_generation_and_loses_nothing(tmp_path):
    suite = manifest_suite(tmp_path)
    run_bench(suite, options(tmp_path))
    finished = png_files(tmp_path / "out")
    assert len(finished) > 0
    manifest = (tmp_path / "data" / "manifest.jsonl").read_text()

    item = next(line for line in manifest.splitlines() if '"split":"test"' in line)
    broken = item.replace(item.split('"image":"')[1].split('"')[0], "images/gone.png")
    (tmp_path / "data" / "manifest.jsonl").write_text(manifest.replace(item, broken))
    with pytest.raises(ValueError, match="images/gone.png"):
        run_bench(suite, options(tmp_path))
    (tmp_path / "data" / "manifest.jsonl").write_text(manifest)

    masked = manifest_suite(tmp_path, masks={"kind": "manifest", "name": "object1"})
    mask_path = tmp_path / "data" / item.split('"object1":"')[1].split('"')[0]
    Image.fromarray(np.zeros((32, 32), np.uint8)).save(mask_path)
    with pytest.raises(ValueError, match=rf"{mask_path}: expected shape \(64, 64\), got \(32, 32\)"):
        run_bench(masked, options(tmp_path))

    Image.fromarray(np.zeros((64, 64), np.uint8)).save(mask_path)
    one_channel = LocalAdapter(build_adapter(TINY, "full", in_channels=1, seed=0)).save_pretrained(tmp_path / "edges-adapter")
    colour = manifest_suite(tmp_path, condition="colour-grid", methods={"text-only": {"kind": "text-only"},
                                                                         "edges": {"kind": "adapter", "weights": str(one_channel)}})
    with pytest.raises(ValueError, match="methods.edges: the adapter takes 1 condition channel.*'colour-grid' has 3"):
        run_bench(colour, options(tmp_path))
    assert png_files(tmp_path / "out") == finished, "failed runs must not touch finished images"


def test_dry_run_prints_the_plan_and_generates_nothing(tmp_path, unet_calls):
    suite = suite_file(tmp_path, "planned", methods=NO_TRAINING)
    planned = run_bench(suite, options(tmp_path, dry_run=True))
    assert planned.counts == {"items": 4, "methods": 3, "trainings_needed": 0, "images": 12, "cached": 0}
    assert len(unet_calls) == 0 and not (tmp_path / "out").exists()
    assert run_bench("smoke", options(tmp_path, dry_run=True)).counts["trainings_needed"] == 1


def test_shards_generate_disjoint_chunks_that_equal_an_unsharded_run(tmp_path, unet_calls):
    suite = suite_file(tmp_path, "sharded", methods=NO_TRAINING, sampler={"scheduler": "ddim", "steps": 3, "guidance": 4.0,
                                                                          "batch_size": 4})
    for shard in ((0, 2), (1, 2)):
        run_bench(suite, options(tmp_path / "sharded", shard=shard))
    unet_calls.clear()
    merged = run_bench(suite, options(tmp_path / "sharded"))
    assert merged.counts["generated"] == 0 and len(unet_calls) == 0
    whole = run_bench(suite, options(tmp_path / "whole"))
    whole_images, sharded_images = tmp_path / "whole" / "out" / "images", tmp_path / "sharded" / "out" / "images"
    assert {p.relative_to(whole_images): b for p, b in png_files(whole_images).items()} == \
           {p.relative_to(sharded_images): b for p, b in png_files(sharded_images).items()}
    assert merged.results == whole.results


def test_inpainting_repaints_the_reference_image_and_waits_for_it_across_shards(tmp_path):
    """local 'inpaint': an inpainting ControlNet given the text-only image with -1 inside the mask, sampled after it;
    a shard without those images leaves its inpainting chunks to the run that has them, and the result is the same."""
    from bench.keys import stack_key
    from bench.stages.generate import request
    from bench.stages.items import load_items
    from bench.stages.methods import resolve_method
    from bench.stages.plan import chunks, plan_tasks
    from bench.suite import load_suite
    from localctrl.common.files import read_rgb
    from localctrl.models.stacks import load_stack

    methods = {"text-only": {"kind": "text-only"}, "inpaint": {"kind": "controlnet", "weights": "random", "local": "inpaint"}}
    sampler = {"scheduler": "ddim", "steps": 2, "guidance": 4.0, "batch_size": 4}
    suite = suite_file(tmp_path, "inpainting", methods=methods, sampler=sampler)
    first = run_bench(suite, options(tmp_path / "sharded", shard=(1, 2)))  # chunk 1: inpainting, before text-only's exist
    assert first.counts["generated"] == 0
    assert run_bench(suite, options(tmp_path / "sharded", shard=(0, 2))).counts["generated"] == 4  # chunk 0: text-only
    merged = run_bench(suite, options(tmp_path / "sharded"))
    assert merged.counts["generated"] == 4  # the inpainting chunk, now that its references are there
    whole = run_bench(suite, options(tmp_path / "whole"))
    assert whole.results == merged.results
    whole_images, sharded_images = tmp_path / "whole" / "out" / "images", tmp_path / "sharded" / "out" / "images"
    assert {p.relative_to(whole_images): b for p, b in png_files(whole_images).items()} == \
           {p.relative_to(sharded_images): b for p, b in png_files(sharded_images).items()}

    loaded = load_suite(suite)
    stack = load_stack("tiny")
    items = load_items(loaded, stack.image_size)
    resolved = {name: resolve_method(loaded, name, stack, tmp_path / "cache") for name in loaded.methods}
    tasks = plan_tasks(loaded, items, resolved, stack_key(stack), tmp_path / "whole" / "out")
    assert [[t.method for t in batch] for batch in chunks(tasks, 3, resolved)] == [["text-only"] * 3, ["text-only"],
                                                                                   ["inpaint"] * 3, ["inpaint"]]
    reference, repaint = tasks[0], tasks[1]
    item = items.load_for([repaint.item])
    asked = request(repaint, item, 0, resolved["inpaint"], reference)
    image = read_rgb(reference.path).float() / 255
    inside = item.masks[0] > 0.5
    assert torch.equal(asked.blend, item.masks[0]) and asked.mask is None  # latents outside: the reference's trajectory
    assert (asked.condition[inside.expand(3, -1, -1)] == -1).all()
    assert torch.equal(asked.condition[~inside.expand(3, -1, -1)], image[~inside.expand(3, -1, -1)])
    changed = {**resolved, "text-only": dataclasses.replace(resolved["text-only"], key="another text-only")}
    other = plan_tasks(loaded, items, changed, stack_key(stack), tmp_path / "o")
    assert other[0].key != reference.key and other[1].key != repaint.key  # its key follows the image it repaints
