"""Synthetic bench runs logged with bench's own `log_suite` (the real contract, a real sqlite store), in a second.

The numbers are designed so that the expected table is known: relative to the z0 method, `global` is +0.20 edge F1
on every item (a clearly real difference), `masked` scores exactly the same per sample (no difference at all),
`global` has no seg_miou_in (n/a), the text-only method has no preservation scores (n/a).
"""

import json
import shutil
import uuid
import zlib
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from bench.metrics.bootstrap import mean_ci
from bench.metrics.registry import PSNR_CAP_DB
from bench.stages.log import log_suite
from bench.stages.methods import Method
from bench.suite import parse_suite
from localctrl.common.tracking import start_run

ITEMS, SEEDS, SIZE = 6, (0, 1), 32

SUITE = {
    "name": "synthetic",
    "base": "tiny",
    "data": {"source": "shapes", "split": "test", "items": ITEMS},
    "seeds": list(SEEDS),
    "methods": {
        "text-only": {"kind": "text-only", "label": "Text only"},
        "global": {"kind": "adapter", "weights": "random", "mask_at_inference": False, "label": "Global"},
        "masked": {"kind": "adapter", "weights": "random", "label": "Masked", "sweep": {"lambda": 0}},
        "z0": {"kind": "adapter", "weights": "random", "label": "Masked + z0", "sweep": {"lambda": 1.0e-3}},
        "z0-1e-2": {"kind": "adapter", "weights": "random", "label": "z0 λ 1e-2", "sweep": {"lambda": 1.0e-2}},
        "z0-laplacian": {"kind": "adapter", "weights": "random", "label": "z0 Laplacian", "sweep": {"filter": "laplacian"}},
    },
    "metrics": {"fid": {"features": "shapes-net"}, "clip_score": "off", "preservation": {"reference_method": "text-only", "lpips": "off"}},
}
EDGE_OFFSET = {"text-only": -0.15, "global": 0.20, "masked": 0.0, "z0": 0.0, "z0-1e-2": 0.05, "z0-laplacian": 0.02}
FID = {"text-only": 50.0, "global": 80.0, "masked": 60.0, "z0": 55.0, "z0-1e-2": 58.0, "z0-laplacian": 70.0}
TRAINED = ("global", "masked", "z0")  # methods linked to a training run with loss curves


def per_sample_frame(method: str, shift: float) -> pd.DataFrame:
    rng = np.random.default_rng(0)  # the same per-item difficulty for every method: pairs line up
    difficulty = rng.uniform(0.2, 0.6, ITEMS * len(SEEDS))
    noise = np.random.default_rng(zlib.crc32(method.encode())).normal(0, 0.002, len(difficulty))
    if method in ("masked", "z0"):
        noise[:] = 0.0  # masked and z0: identical per sample
    frame = pd.DataFrame({
        "item_id": [f"scene-{k:06d}" for k in range(ITEMS) for _ in SEEDS],
        "seed": [seed for _ in range(ITEMS) for seed in SEEDS],
        "key": [uuid.uuid4().hex for _ in range(ITEMS * len(SEEDS))],
        "edge_f1_in": difficulty + EDGE_OFFSET[method] + shift + noise,
        "edge_leakage_out": 0.3 - EDGE_OFFSET[method] / 2 + noise,
        "edge_density_out": 0.05 + noise,
        "seg_miou_in": 0.4 + EDGE_OFFSET[method] + noise,
        "align_shapes": 0.7 + noise,
    })
    if method != "text-only":  # preservation is measured against the text-only image
        frame["ssim_out"] = 0.9 - 0.2 * (method == "global") + noise
        frame["psnr_out"] = 25.0 - 5 * (method == "global") + noise
        if method == "masked":
            frame.loc[0, "psnr_out"] = np.inf  # identical outside the mask: capped at PSNR_CAP_DB in aggregates
    if method == "global":
        frame = frame.drop(columns="seg_miou_in")  # a metric this method lacks: n/a in the table
    return frame.sample(frac=1.0, random_state=1).reset_index(drop=True)  # row order must not matter: pairs join on ids


def aggregates(frame: pd.DataFrame, fid: float) -> dict[str, float]:
    result = {}
    for column in frame.columns.drop(["item_id", "seed", "key"]):
        mean, lo, hi = mean_ci(frame[column].to_numpy(), n_boot=200, cap=PSNR_CAP_DB if column == "psnr_out" else None)
        result |= {column: mean, f"{column}_ci_lo": lo, f"{column}_ci_hi": hi}
    return result | {"fid": fid, "fid_ci_lo": fid - 5, "fid_ci_hi": fid + 6, "kid": fid / 1000}


def write_qualitative(folder: Path, methods: list[str], labels: dict[str, str], count: int = 2) -> Path:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    items = []
    for k in range(count):
        item_id = f"scene-{k:06d}"
        condition = np.zeros((SIZE, SIZE), np.uint8)
        condition[8:24, 8] = condition[8:24, 23] = condition[8, 8:24] = condition[23, 8:24] = 255  # a square's edges
        mask = np.zeros((SIZE, SIZE), np.uint8)
        mask[4 + k : 20 + k, 4 : 20 + 2 * k] = 255  # growing: the items fall into different mask-size bins
        Image.fromarray(condition).save(folder / f"{item_id}-condition.png")
        Image.fromarray(mask).save(folder / f"{item_id}-mask.png")
        images = {}
        for method in methods:
            images[method] = f"{item_id}-{method}.png"
            Image.fromarray(rng.integers(0, 255, (SIZE, SIZE, 3), dtype=np.uint8)).save(folder / images[method])
        items.append({"item_id": item_id, "prompt": f"a red square on a grey background {k}", "seed": 0,
                      "condition": f"{item_id}-condition.png", "mask": f"{item_id}-mask.png", "images": images})
    (folder / "qualitative.json").write_text(json.dumps({"methods": labels, "items": items}))
    return folder


def log_training_run(method: str) -> str:
    with start_run("train", run_name=f"train-{method}", params={"method": method}) as run:
        for step in range(10, 110, 10):
            mlflow.log_metrics({"loss_simple": 0.05 / step ** 0.3, "loss_z0": 0.0 if method != "z0" else 0.02 / step ** 0.2,
                                "loss": 0.05}, step=step)
        mlflow.log_metric("val_edge_f1_in", 0.3, step=100)
    return run.info.run_id


def log_synthetic_suite(folder: Path, shift: float = 0.0) -> str:
    """One parent run + one child run per method, as `localctrl bench` logs them; returns the parent run id."""
    suite = parse_suite(SUITE, "synthetic")
    folder.mkdir(parents=True, exist_ok=True)
    methods, results, tables = {}, {}, {}
    for name, spec in suite.methods.items():
        frame = per_sample_frame(name, shift)
        tables[name] = folder / f"{name}-{uuid.uuid4().hex[:16]}.parquet"
        frame.to_parquet(tables[name], index=False)
        results[name] = aggregates(frame, FID[name] + shift)
        methods[name] = Method(name, spec, None, key=name, training_run_id=log_training_run(name) if name in TRAINED else None,
                               weights=spec.weights)
    labels = {name: spec.label or name for name, spec in suite.methods.items()}
    qualitative = write_qualitative(folder / f"qualitative-{uuid.uuid4().hex[:6]}", list(suite.methods), labels)
    comparison = write_qualitative(folder / f"comparison-{uuid.uuid4().hex[:6]}", list(suite.methods), labels, count=ITEMS)
    return log_suite(suite, uuid.uuid4().hex, {"items": ITEMS, "images": ITEMS * len(SEEDS) * 6}, methods, results, tables, {},
                     {"fid.features": "shapes-net", "clip": "off", "lpips": "off"}, "name: synthetic\n", ["a note from the bench"],
                     qualitative, comparison=comparison, seconds=200.4, machine="2-core Test CPU, no GPU")


@pytest.fixture(scope="session")
def _migrated_store(tmp_path_factory) -> Path:
    """An empty MLflow sqlite store made once: creating one runs MLflow's schema migrations (~4 s each time)."""
    path = tmp_path_factory.mktemp("store-template") / "mlflow.db"
    mlflow.MlflowClient(tracking_uri=f"sqlite:///{path}").search_experiments()
    return path


@pytest.fixture(autouse=True)
def private_tracking_store(private_tracking_store, _migrated_store):
    """The top-level private store of each test, started from a copy of the migrated template."""
    shutil.copy(_migrated_store, private_tracking_store / "mlflow.db")
    return private_tracking_store


@pytest.fixture
def log_run(tmp_path):
    """log_run(shift=0.0) logs one more synthetic suite run into this test's store and returns its parent run id."""
    count = iter(range(1000))
    return lambda shift=0.0: log_synthetic_suite(tmp_path / f"bench-{next(count)}", shift)


@pytest.fixture(scope="module")
def _built(tmp_path_factory, _migrated_store):
    from reports.build import ReportOptions, build_report

    folder = tmp_path_factory.mktemp("report-store")
    shutil.copy(_migrated_store, folder / "mlflow.db")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", uri)
        run_id = log_synthetic_suite(folder / "bench")
        report = build_report([run_id], ReportOptions(out=folder / "report"))
    return uri, report


@pytest.fixture
def built(_built, monkeypatch):
    """One report of one synthetic suite run, built once for the module's tests (they only read it)."""
    uri, report = _built
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    return report
