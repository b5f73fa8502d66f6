"""`localctrl ui` starts a real MLflow UI on 127.0.0.1 that answers HTTP; the test stops it afterwards."""

import os
import shutil
import sys
import urllib.request
from pathlib import Path

import psutil
from servers import free_port, running


def localctrl_executable() -> str:
    beside_python = Path(sys.executable).parent / "localctrl"
    return str(beside_python) if beside_python.exists() else shutil.which("localctrl")


def test_ui_serves_the_store_on_loopback(tmp_path):
    port = free_port()
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}"}
    with running([localctrl_executable(), "ui", "--port", str(port)], port, env, tmp_path) as server:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/2.0/mlflow/experiments/search?max_results=10", timeout=5) as response:
            assert b"experiments" in response.read()
        listening = {
            conn.laddr.ip
            for proc in [psutil.Process(server.pid), *psutil.Process(server.pid).children(recursive=True)]
            for conn in proc.net_connections(kind="inet")
            if conn.status == psutil.CONN_LISTEN and conn.laddr.port == port
        }
        assert listening == {"127.0.0.1"}


def test_the_printed_links_open_the_runs_tables_in_a_real_browser_not_the_genai_overview(tmp_path, monkeypatch):
    import re

    import mlflow
    from browser import rendered_dom, screenshot

    from localctrl.common.tracking import EXPERIMENT_KIND, start_run

    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)
    for experiment, run_name in (("bench", "shapes-quick-global-adapter"), ("train", "canny-z0-run")):
        with start_run(experiment, run_name=run_name, params={"lr": 1e-3}):
            mlflow.log_metric("edge_f1_in", 0.7)
    assert mlflow.get_experiment_by_name("bench").tags[EXPERIMENT_KIND[0]] == EXPERIMENT_KIND[1]
    port = free_port()
    with running([localctrl_executable(), "ui", "--port", str(port)], port, {**os.environ, "MLFLOW_TRACKING_URI": store},
                 tmp_path) as server:
        printed = server.stdout.read1().decode()
        links = dict(re.findall(r"(bench|train) runs: (\S+)", printed))
        assert set(links) == {"bench", "train"} and all(link.endswith("/runs") for link in links.values()), printed
        bench, train = rendered_dom(links["bench"]), rendered_dom(links["train"])
        picture = screenshot(links["bench"], "mlflow-bench-runs.png")
    assert "shapes-quick-global-adapter" in bench and "canny-z0-run" in train  # each link shows its experiment's runs
    assert "No data available" not in bench  # not the GenAI traces overview ("Traces 0, No data available")
    assert picture.stat().st_size > 10_000
