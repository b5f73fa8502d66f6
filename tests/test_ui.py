"""`localctrl ui` starts a real MLflow UI on 127.0.0.1 that answers HTTP; the test stops it afterwards."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def localctrl_executable() -> str:
    beside_python = Path(sys.executable).parent / "localctrl"
    return str(beside_python) if beside_python.exists() else shutil.which("localctrl")


def test_ui_serves_the_store_on_loopback(tmp_path):
    port = free_port()
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}"}
    server = subprocess.Popen(
        [localctrl_executable(), "ui", "--port", str(port)],
        env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        deadline, body = time.monotonic() + 120, None
        while time.monotonic() < deadline and server.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as response:
                    body = response.read().decode()
                    break
            except OSError:
                time.sleep(0.5)
        assert body is not None, f"no answer from the UI: {server.stdout.read1().decode() if server.poll() is not None else 'still starting'}"
        assert "OK" in body
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/2.0/mlflow/experiments/search?max_results=10", timeout=5) as response:
            assert b"experiments" in response.read()
        listening = {
            conn.laddr.ip
            for proc in [psutil.Process(server.pid), *psutil.Process(server.pid).children(recursive=True)]
            for conn in proc.net_connections(kind="inet")
            if conn.status == psutil.CONN_LISTEN and conn.laddr.port == port
        }
        assert listening == {"127.0.0.1"}
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
