"""A team's setup: a real `mlflow server` (sqlite backend, proxied artifacts) on 127.0.0.1; train and bench log to it over
HTTP, and everything reads back — runs, metrics, the training link and the per-sample parquet artifact."""

import sys

import mlflow
import pandas as pd
from servers import free_port, running

from bench.run import BenchOptions, run_bench
from localctrl.config import load_train_config
from localctrl.train import train


def test_train_and_bench_log_to_a_remote_tracking_server(tmp_path, monkeypatch):
    port = free_port()
    command = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", f"sqlite:///{tmp_path / 'server.db'}",
               "--artifacts-destination", str(tmp_path / "server-artifacts"), "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    with running(command, port, {"MLFLOW_DISABLE_TELEMETRY": "true", "PATH": "/usr/bin:/bin"}, tmp_path):
        monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{port}")
        trained = train(load_train_config(overrides=["base=tiny", "steps=2", "validate_every=2", "checkpoint_every=2", "log_every=1",
                                                     "data.shapes_items=16", "data.validation_items=2", "validation_steps=2",
                                                     f"out={tmp_path / 'adapter'}"]))
        result = run_bench("smoke", BenchOptions(out=tmp_path / "bench", cache=tmp_path / "cache"))

        mlflow.set_tracking_uri(f"http://127.0.0.1:{port}")
        assert mlflow.get_run(trained.run_id).data.metrics["loss_simple"] > 0
        children = mlflow.search_runs(experiment_names=["bench"], filter_string=f"tags.`mlflow.parentRunId` = '{result.run_id}'",
                                      output_format="list")
        assert len(children) == 5
        child = next(run for run in children if run.data.tags["localctrl.method"] == "random-masked")
        assert child.data.metrics["edge_f1_in"] == result.results["random-masked"]["edge_f1_in"]
        mlflow.artifacts.download_artifacts(run_id=child.info.run_id, artifact_path="per-sample", dst_path=str(tmp_path / "got"))
        table = pd.read_parquet(next((tmp_path / "got" / "per-sample").glob("*.parquet")))
        assert len(table) == 4 and table["edge_f1_in"].mean() == result.results["random-masked"]["edge_f1_in"]
    assert any((tmp_path / "server-artifacts").rglob("*.parquet")), "artifacts went to the server's store, not a local folder"
    assert not (tmp_path / "bench" / "mlflow.db").exists() and not list(tmp_path.glob("**/localctrl-runs/mlflow.db"))
