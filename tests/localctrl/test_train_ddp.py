"""DDP training through `localctrl train --num-processes 2` (gloo CPU processes): same weights, cross-count resume."""

import json
import os
import subprocess
import sys
from pathlib import Path

import mlflow
import pytest
import torch
from test_train import SMALL, adapter_weights, config, kill_at_step_3, one_thread  # noqa: F401  (one_thread: autouse fixture)

from localctrl.train import check_resumable, train

REPOSITORY = Path(__file__).parents[2]


def test_two_processes_resume_a_one_process_run_and_reach_its_weights(tmp_path, monkeypatch):
    straight = train(config(tmp_path / "one"))  # 1 process × accumulation 2, 4 steps
    kill_at_step_3(tmp_path / "two", monkeypatch)  # checkpoint at step 2, then killed
    first_run = json.loads((tmp_path / "two" / "state.json").read_text())["run_id"]

    settings = [f"--set={o}" for o in [*SMALL, f"out={tmp_path / 'two'}"]] + ["--set=optim.grad_accum=1"]
    launched = subprocess.run([sys.executable, "-m", "cli", "train", "--num-processes", "2", *settings], cwd=REPOSITORY,
                              env=os.environ | {"OMP_NUM_THREADS": "1"}, capture_output=True, text=True, timeout=300)
    assert launched.returncode == 0, launched.stderr[-3000:]
    state = json.loads((tmp_path / "two" / "state.json").read_text())
    assert state["num_processes"] == 2 and state["run_id"] == first_run
    expected, got = adapter_weights(straight.last_adapter), adapter_weights(tmp_path / "two" / "adapter-last")
    for key in expected:  # DDP sums gradients across processes in another order: equal up to float rounding
        assert torch.allclose(expected[key], got[key], rtol=1e-4, atol=1e-6), key
    runs = mlflow.search_runs(experiment_names=["train"], output_format="list")
    assert sorted(run.info.run_name for run in runs) == ["one", "two"], "only the main process logs, into the resumed run"
    assert mlflow.get_run(first_run).data.tags["localctrl.num_processes"] == "2"


def test_resuming_at_another_effective_batch_is_refused(tmp_path):
    params = json.loads(config(tmp_path).model_dump_json())
    state = {"config": params, "num_processes": 1}
    check_resumable(state, {**params, "optim": {**params["optim"], "grad_accum": 1}}, 2, tmp_path)  # 1 × 2 == 2 × 1
    with pytest.raises(ValueError, match=r"1 process\(es\) × accumulation 2; resuming with 2 × 2 changes the effective batch"):
        check_resumable(state, params, 2, tmp_path)
    with pytest.raises(ValueError, match="another config .*'lr': 1.0"):
        check_resumable(state, {**params, "optim": {**params["optim"], "lr": 1.0}}, 1, tmp_path)
