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
