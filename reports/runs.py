"""Reading bench runs from MLflow: a suite's parent run, its method runs, and the artifacts reports draw from.

The contract is the one bench/stages/log.py writes (experiment "bench"): a parent run tagged
`localctrl.bench.role=suite` with `methods.json` and `qualitative/`, and one child run per method with its
aggregates as metrics and `per-sample/<method>-<hash>.parquet`. Runs logged before `methods.json` existed are
read from the child runs' tags and params instead.
"""

import json
import math
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from unittest import mock

import mlflow
import pandas as pd
from mlflow.exceptions import MlflowException

from bench.metrics.registry import base_of, cap
from bench.stages.log import EXPERIMENT
from localctrl.common.tracking import use_tracking
from localctrl.errors import InputError

PROGRESS_BAR = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"
SUITE_FILTER = "tags.`localctrl.bench.role` = 'suite'"


class ReportError(InputError):
    """A run that cannot be found or read: the message says what was asked and what exists."""


@dataclass
class MethodRun:
    name: str
    label: str
    kind: str
    run_id: str
    sweep: dict = field(default_factory=dict)
    training_run_id: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)  # every logged aggregate (with _ci_lo/_ci_hi)


@dataclass
class SuiteRun:
    run_id: str
    suite: str
    params: dict[str, str]
    methods: list[MethodRun]
    metrics: dict[str, float] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    end_time: float | None = None  # ms since the epoch, when the latest invocation ended

    @property
    def short_id(self) -> str:
        return self.run_id[:7]

    def method(self, name: str) -> MethodRun:
        for method in self.methods:
            if method.name == name:
                return method
        raise ReportError(f"run {self.short_id} ({self.suite}) has no method '{name}'; it has {', '.join(m.name for m in self.methods)}")


def _present(value) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def _prefixed(row: pd.Series, prefix: str) -> dict:
    return {key.removeprefix(prefix): value for key, value in row.items() if key.startswith(prefix) and _present(value)}


def _none_if_text(value: str | None) -> str | None:
    return None if value in (None, "None", "") else value  # flattened params write Python's None as "None"


def suite_runs() -> pd.DataFrame:
    """Every finished suite run, newest first (a rerun of the same suite reuses its run and ends later)."""
    use_tracking()
    if mlflow.get_experiment_by_name(EXPERIMENT) is None:
        return pd.DataFrame(columns=["run_id", "status", "end_time", "tags.localctrl.suite"])
    runs = mlflow.search_runs(experiment_names=[EXPERIMENT], filter_string=SUITE_FILTER, order_by=["attributes.end_time DESC"])
    return runs


def _describe(runs: pd.DataFrame, count: int = 5) -> str:
    if runs.empty:
        return "no suite runs in this store (run `localctrl bench --suite NAME` first)"
    shown = [f"{row.run_id[:7]} ({row['tags.localctrl.suite']}, {row.status})" for _, row in runs.head(count).iterrows()]
    return "latest suite runs: " + ", ".join(shown)


def find_suite_run(run_id: str) -> pd.Series:
    """The parent run with this id, or an unambiguous prefix of one (tables show 7 characters)."""
    runs = suite_runs()
    hits = runs[runs.run_id.str.startswith(run_id)] if len(runs) else runs
    if len(hits) == 1:
        return hits.iloc[0]
    if len(hits) > 1:
        raise ReportError(f"run id '{run_id}' matches {len(hits)} suite runs; give more characters")
    raise ReportError(f"no bench suite run '{run_id}' in {mlflow.get_tracking_uri()}; {_describe(runs)}")


def latest_run_id(suite: str) -> str:
    runs = suite_runs()
    finished = runs[(runs["tags.localctrl.suite"] == suite) & (runs.status == "FINISHED")] if len(runs) else runs
    if finished.empty:
        raise ReportError(f"no finished run of suite '{suite}' in {mlflow.get_tracking_uri()}; {_describe(runs)}")
    return finished.run_id.iloc[0]


def _quiet():
    """MLflow draws a progress bar per artifact download: noise above a command whose output is a table."""
    return mock.patch.dict(os.environ, {PROGRESS_BAR: "false"})


def read_text(run_id: str, artifact_path: str) -> str | None:
    """A run's text artifact; None when it has none."""
    try:
        with _quiet():
            return mlflow.artifacts.load_text(f"runs:/{run_id}/{artifact_path}")
    except (MlflowException, OSError):
        return None


def _method_order(run_id: str) -> dict | None:
    try:
        return json.loads(read_text(run_id, "methods.json") or "null")["methods"]
    except (TypeError, KeyError, ValueError):  # an older run without methods.json: read the child runs
        return None


def _sweep_from_params(params: dict) -> dict:
    sweep = {}
    for key, value in params.items():
        if key.startswith("spec.sweep."):
            try:
                sweep[key.removeprefix("spec.sweep.")] = float(value)
            except ValueError:
                sweep[key.removeprefix("spec.sweep.")] = value
    return sweep


def load_suite_run(run_id: str) -> SuiteRun:
    """The parent run and its method runs, in the suite's method order."""
    parent = find_suite_run(run_id)
    run_id = parent.run_id
    children = mlflow.search_runs(experiment_names=[EXPERIMENT], order_by=["attributes.start_time ASC"],
                                  filter_string=f"tags.mlflow.parentRunId = '{run_id}' and tags.`localctrl.bench.role` = 'method'")
    by_name = {row["tags.localctrl.method"]: row for _, row in children.iterrows()}
    listed = _method_order(run_id) or {name: {} for name in by_name}
    methods = []
    for name, entry in listed.items():
        if name not in by_name:
            continue
        row = by_name[name]
        params = _prefixed(row, "params.")
        methods.append(MethodRun(
            name=name,
            label=entry.get("label") or _none_if_text(params.get("spec.label")) or name,
            kind=entry.get("kind") or params.get("spec.kind", "?"),
            run_id=row.run_id,
            sweep=entry["sweep"] if "sweep" in entry else _sweep_from_params(params),
            training_run_id=entry.get("training_run_id") or _none_if_text(row.get("tags.localctrl.training_run_id")),
            metrics={key: float(value) for key, value in _prefixed(row, "metrics.").items()},
        ))
    if not methods:
        raise ReportError(f"suite run {run_id[:7]} has no method runs (was it interrupted before logging?)")
    end = parent.get("end_time")
    return SuiteRun(run_id, parent.get("tags.localctrl.suite", "?"), _prefixed(parent, "params."), methods,
                    {key: float(value) for key, value in _prefixed(parent, "metrics.").items()}, _prefixed(parent, "tags."),
                    pd.Timestamp(end).timestamp() * 1000 if end is not None and pd.notna(end) else None)


def per_sample(method: MethodRun) -> pd.DataFrame | None:
    """The method's per-sample scores; None when the run has none.

    A reused child run can hold several parquets (one per score key); the one whose means match the metrics the
    run shows (the latest logged values) is the current one.
    """
    with tempfile.TemporaryDirectory() as folder:
        local = download_folder(method.run_id, "per-sample", Path(folder))
        if local is None:
            return None
        frames = [pd.read_parquet(path) for path in sorted(local.glob("*.parquet"))]
    if not frames:
        return None

    def mismatch(frame: pd.DataFrame) -> float:
        columns = [c for c in frame.columns if c in method.metrics and base_of(c) and c not in ("fid", "kid")]
        means = [frame[c].clip(upper=cap(c)).mean() for c in columns]  # as bench aggregates them (+inf PSNR: its cap)
        return sum(abs(m - method.metrics[c]) for m, c in zip(means, columns) if m == m)

    return min(frames, key=mismatch)


def download_folder(run_id: str, artifact_path: str, destination: Path) -> Path | None:
    """A run's artifact folder copied under `destination`; None when the run has none."""
    try:
        with _quiet():
            return Path(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=artifact_path, dst_path=str(destination)))
    except (MlflowException, OSError):
        return None


def training_history(run_id: str, keys: tuple[str, ...] = ("loss_simple", "loss_z0")) -> dict[str, pd.DataFrame]:
    """Per-step values of a training run's metrics: {key: DataFrame(step, value)} for the keys it logged."""
    client = mlflow.MlflowClient()
    history = {}
    for key in keys:
        try:
            points = client.get_metric_history(run_id, key)
        except MlflowException:  # the training run lives in another store (e.g. a copied bench cache): no curve
            return {}
        if points:
            history[key] = pd.DataFrame({"step": [p.step for p in points], "value": [p.value for p in points]}).sort_values("step")
    return history
