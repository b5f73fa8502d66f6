"""Test settings: no model hub, no telemetry, and every MLflow run in a temporary sqlite store."""

import os

# Read by huggingface_hub and mlflow at import time: set before anything imports them.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"

import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def private_tracking_store(tmp_path, monkeypatch):
    """Each test logs to its own sqlite store, never to the checkout's localctrl-runs/."""
    store = tmp_path / "mlruns-store"
    store.mkdir()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{store / 'mlflow.db'}")
    return store


@pytest.fixture(scope="session")
def tiny_stack():
    from localctrl.models.stacks import load_stack

    return load_stack("tiny", seed=0)
