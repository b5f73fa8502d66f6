"""Two `localctrl bench` processes on one --out, --cache and fresh MLflow store: one training, one set of runs."""

import os
import subprocess
import sys
from pathlib import Path

import mlflow

REPOSITORY = Path(__file__).parents[2]


def test_two_processes_on_one_cache_train_each_adapter_once_and_log_one_parent_run(tmp_path):
    command = [sys.executable, "-m", "cli", "bench", "--suite", "smoke", "--out", str(tmp_path / "out"), "--cache", str(tmp_path / "cache")]
    env = os.environ | {"OMP_NUM_THREADS": "1"}  # the fixture's fresh sqlite store, created by whichever process gets there first
    processes = [subprocess.Popen(command, cwd=REPOSITORY, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for _ in range(2)]
    outputs = [process.communicate(timeout=600) for process in processes]
    for process, (stdout, stderr) in zip(processes, outputs):
        assert process.returncode == 0, stderr[-3000:]
    trainings = mlflow.search_runs(experiment_names=["train"], output_format="list")
    assert len(trainings) == 1, "the second process waits for the adapter the first trains, then reuses it"
    runs = mlflow.search_runs(experiment_names=["bench"], output_format="list")
    parents = [run for run in runs if run.data.tags.get("localctrl.bench.role") == "suite"]
    assert len(parents) == 1 and len(runs) == 1 + 5, "the second run logs into the first one's runs"
    said = "".join(stderr for _, stderr in outputs)
    assert "another localctrl process is" in said  # at least one of them waited for a lock (training or scoring)
