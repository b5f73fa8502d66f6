"""A rerun with nothing to compute (bench.finished): it loads no model, prints the finished run's results, and any change
to what the run read or wrote sends it down the full path."""

import os
import re
import subprocess
import sys
from pathlib import Path

import mlflow

from bench.finished import changed
from bench.run import BenchOptions, run_bench
from reports.summary import summary_table

ROOT = Path(__file__).resolve().parents[2]


def test_a_finished_run_reruns_without_loading_a_model_until_something_changes(tmp_path):
    options = BenchOptions(out=tmp_path / "out", cache=tmp_path / "cache")
    first = run_bench("smoke", options)
    assert changed("smoke", options)[0] == []

    command = [sys.executable, "-X", "importtime", "-m", "cli", "bench", "--suite", "smoke", "--out", str(options.out),
               "--cache", str(options.cache)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, env=os.environ | {"COLUMNS": "400"})
    assert done.returncode == 0, done.stderr[-2000:]
    imported = set(re.findall(r"^import time:\s+\d+ \|\s+\d+ \|\s+([\w.]+)$", done.stderr, flags=re.M))
    assert not imported & {"torch", "diffusers", "transformers", "open_clip"}, "a rerun with nothing to compute loads no model"
    assert "nothing to compute" in done.stderr
    assert summary_table(first) in done.stdout  # the same table the full run printed
    parent = mlflow.get_run(first.run_id).data
    assert parent.metrics["plan_cached"] == parent.metrics["plan_images"] == 20 and parent.metrics["plan_generated"] == 0

    assert "options" in changed("smoke", options.model_copy(update={"limit": 2}))[0]
    image = next((options.out / "images").rglob("*.png"))
    os.utime(image, ns=(image.stat().st_atime_ns, image.stat().st_mtime_ns + 1))
    assert changed("smoke", options)[0] == ["outputs"]
    again = run_bench("smoke", options)  # the full path: nothing computed, a new record
    assert again.counts["generated"] == 0 and changed("smoke", options)[0] == []
    mlflow.delete_run(first.run_id)
    assert changed("smoke", options)[0] == ["MLflow runs"]
