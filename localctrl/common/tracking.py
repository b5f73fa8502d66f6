"""MLflow plumbing: the one place that decides where runs and artifacts go, and how runs start.

Tracking URI: `MLFLOW_TRACKING_URI` if set, else `sqlite:///<workdir>/localctrl-runs/mlflow.db` with
artifacts in `<workdir>/localctrl-runs/artifacts` (always explicit: MLflow's own default depends on the CWD).
"""

import logging
import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import localctrl
from localctrl.common.locks import locked
from localctrl.config import describe_changes
from localctrl.errors import InputError, NotAvailableError

RUNS_DIR = "localctrl-runs"
# MLflow 3's "model training" experiment kind (its UI's CUSTOM_MODEL_DEVELOPMENT), not GenAI: set on every experiment
# localctrl logs to. In MLflow 3.17 the experiment's bare link still opens the GenAI overview whatever the tag says
# (checked in headless Chromium), so `localctrl ui` links straight to each experiment's runs table (`runs_links`).
EXPERIMENT_KIND = ("mlflow.experimentKind", "custom_model_development")
UI_HOST = "127.0.0.1"  # never expose runs beyond this machine unless the user asks


def runs_dir(workdir: str | Path | None = None) -> Path:
    return (Path(workdir) if workdir else Path.cwd()).resolve() / RUNS_DIR


def tracking_uri(workdir: str | Path | None = None) -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{runs_dir(workdir) / 'mlflow.db'}"


def artifact_root(workdir: str | Path | None = None) -> str | None:
    """Where new experiments keep artifacts: beside a sqlite store; a remote server decides its own (None)."""
    uri = tracking_uri(workdir)
    if not uri.startswith("sqlite:///"):
        return None
    return (Path(uri.removeprefix("sqlite:///")).parent / "artifacts").as_uri()


_CREATED: set[str] = set()  # sqlite stores this process has made sure exist


def use_tracking(workdir: str | Path | None = None) -> str:
    """Point MLflow at our store (creating it, one process at a time) and return the URI."""
    import mlflow

    uri = tracking_uri(workdir)
    if uri.startswith(("http://", "https://")):  # MLflow retries a dead server for minutes by default; fail in seconds
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")
    if uri.startswith("sqlite:///") and uri not in _CREATED:
        database = Path(uri.removeprefix("sqlite:///"))
        for name in ("mlflow.store.db.utils", "alembic.runtime.migration"):  # "Creating initial MLflow database tables…"
            logging.getLogger(name).setLevel(logging.WARNING)
        # Two processes creating one fresh store race in MLflow's schema migration; the first creates it, the others wait.
        with locked(database.with_name(database.name + ".lock"), f"creating the MLflow store {database}"):
            mlflow.MlflowClient(uri).search_experiments(max_results=1)
        _CREATED.add(uri)
    mlflow.set_tracking_uri(uri)
    return uri


def check_tracking(workdir: str | Path | None = None, timeout: float = 5.0) -> str:
    """Reach the tracking store now, within `timeout` seconds: a store that cannot be reached is an error before any
    work starts, not after it. Returns its URI."""
    import mlflow

    uri = tracking_uri(workdir)
    how = f"start it, or unset MLFLOW_TRACKING_URI to log to {runs_dir(workdir)}"
    try:
        if uri.startswith(("http://", "https://")):
            with urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=timeout) as response:
                response.read()
        else:
            use_tracking(workdir)
            mlflow.MlflowClient(uri).search_experiments(max_results=1)
    except Exception as error:  # refused, timed out, a bad URI, a store that cannot be opened: all end the same way
        detail = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise NotAvailableError(f"the MLflow tracking store {uri} cannot be reached ({detail}): {how}") from None
    return uri


def experiment_id(name: str, workdir: str | Path | None = None) -> str:
    import mlflow
    from mlflow.exceptions import MlflowException

    use_tracking(workdir)
    found = mlflow.get_experiment_by_name(name)
    if found is not None:
        if EXPERIMENT_KIND[0] not in found.tags:  # made by an older localctrl
            mlflow.MlflowClient().set_experiment_tag(found.experiment_id, *EXPERIMENT_KIND)
        return found.experiment_id
    try:
        return mlflow.create_experiment(name, artifact_location=artifact_root(workdir), tags=dict([EXPERIMENT_KIND]))
    except MlflowException:  # another process created it since we looked
        if (found := mlflow.get_experiment_by_name(name)) is None:
            raise
        return found.experiment_id


def flatten(config: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested config → {"a.b.c": "value"}: MLflow params are flat strings."""
    flat = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, prefix=f"{name}."))
        else:
            flat[name] = str(value)
    return flat


def git_commit() -> str | None:
    """The commit of the localctrl checkout, with "-dirty" when tracked files differ from it; None outside a checkout (a
    wheel install)."""
    folder = Path(localctrl.__file__).parent
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=folder, capture_output=True, text=True, timeout=5)
        changed = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=folder, capture_output=True,
                                 text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if head.returncode != 0:
        return None
    return head.stdout.strip() + ("-dirty" if changed.returncode == 0 and changed.stdout.strip() else "")


@contextmanager
def start_run(
    experiment: str,
    run_name: str | None = None,
    params: Mapping[str, Any] | None = None,
    tags: Mapping[str, str] | None = None,
    workdir: str | Path | None = None,
    nested: bool = False,
    resume_run_id: str | None = None,
) -> Iterator["mlflow.ActiveRun"]:  # noqa: F821
    """Start an MLflow run in `experiment` on our store, with flattened params and provenance tags.

    With `resume_run_id` the run is continued; MLflow params are write-once, so the params it has must equal the
    ones asked for (a resumed run with a changed config is an error, not a silent mix). Params it lacks are logged
    now: a run killed before (all of) its params were logged is completed instead of blocking every rerun.
    """
    import mlflow

    run_tags = {"localctrl.version": localctrl.__version__}
    if commit := git_commit():
        run_tags["localctrl.git_commit"] = commit
    run_tags.update(tags or {})
    if resume_run_id is not None:
        use_tracking(workdir)
        logged = mlflow.get_run(resume_run_id).data.params
        wanted = flatten(params or {})
        shared = logged.keys() & wanted.keys()
        if changes := describe_changes({key: logged[key] for key in shared}, {key: wanted[key] for key in shared}):
            raise InputError(f"cannot resume run {resume_run_id} with a different config ({changes})")
        with mlflow.start_run(run_id=resume_run_id, nested=nested) as run:
            if missing := {key: value for key, value in wanted.items() if key not in logged}:
                mlflow.log_params(missing)
            yield run
        return
    with mlflow.start_run(experiment_id=experiment_id(experiment, workdir), run_name=run_name, nested=nested, tags=run_tags) as run:
        if params:
            mlflow.log_params(flatten(params))
        yield run


def runs_links(host: str = UI_HOST, port: int = 5000, names: tuple[str, ...] = ("bench", "train"),
               workdir: str | Path | None = None) -> dict[str, str]:
    """The MLflow UI's runs-table link of each experiment in `names` that the store holds (name → URL)."""
    import mlflow

    use_tracking(workdir)
    links = {}
    for name in names:
        if (found := mlflow.get_experiment_by_name(name)) is not None:
            links[name] = f"http://{host}:{port}/#/experiments/{found.experiment_id}/runs"
    return links


def ui_command(host: str = UI_HOST, port: int = 5000, workdir: str | Path | None = None) -> list[str]:
    """The `mlflow ui` command line serving our store. One worker process: the UI is one researcher's view of a local
    store, and mlflow's default of four starts half as fast on a laptop and holds four copies of mlflow in memory."""
    command = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", tracking_uri(workdir), "--host", host, "--port", str(port),
               "--workers", "1"]
    if root := artifact_root(workdir):
        command += ["--default-artifact-root", root]
    return command
