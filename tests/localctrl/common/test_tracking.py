from pathlib import Path

import mlflow

from localctrl.common.tracking import artifact_root, flatten, start_run, tracking_uri, ui_command


def test_default_store_is_sqlite_under_the_workdir(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    assert tracking_uri(tmp_path) == f"sqlite:///{tmp_path.resolve()}/localctrl-runs/mlflow.db"
    assert artifact_root(tmp_path) == (tmp_path.resolve() / "localctrl-runs" / "artifacts").as_uri()


def test_environment_variable_wins(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5999")
    assert tracking_uri(tmp_path) == "http://127.0.0.1:5999"
    assert artifact_root(tmp_path) is None  # a server decides where artifacts go


def test_flatten_nests_keys_with_dots():
    assert flatten({"a": 1, "b": {"c": 0.5, "d": {"e": "x"}}, "f": [1, 2]}) == {"a": "1", "b.c": "0.5", "b.d.e": "x", "f": "[1, 2]"}


def test_start_run_logs_flat_params_and_provenance_to_the_store(private_tracking_store, tmp_path):
    with start_run("unit-test", run_name="first", params={"optim": {"lr": 8e-5}, "seed": 0}, workdir=tmp_path) as run:
        mlflow.log_metric("loss", 0.25, step=1)
        mlflow.log_text("hello", "notes.txt")
    runs = mlflow.search_runs(experiment_names=["unit-test"])
    assert len(runs) == 1
    row = runs.iloc[0]
    assert row["run_id"] == run.info.run_id
    assert row["params.optim.lr"] == "8e-05" and row["params.seed"] == "0"
    assert row["metrics.loss"] == 0.25
    assert row["tags.localctrl.version"]
    artifact_dir = Path(mlflow.get_run(run.info.run_id).info.artifact_uri.removeprefix("file://"))
    assert (artifact_dir / "notes.txt").read_text() == "hello"
    assert artifact_dir.is_relative_to(private_tracking_store)  # artifacts live beside the sqlite store


def test_ui_binds_to_loopback_by_default(tmp_path):
    command = ui_command(port=5123, workdir=tmp_path)
    assert command[command.index("--host") + 1] == "127.0.0.1"
    assert command[command.index("--backend-store-uri") + 1] == tracking_uri(tmp_path)


def test_a_run_killed_before_its_params_were_logged_is_completed_not_a_permanent_block(tmp_path):
    import pytest

    from localctrl.common.tracking import experiment_id
    from localctrl.errors import InputError

    with mlflow.start_run(experiment_id=experiment_id("unit-test", tmp_path)) as killed:  # created, then the process died
        pass
    params = {"optim": {"lr": 8e-5}, "seed": 0}
    with start_run("unit-test", params=params, resume_run_id=killed.info.run_id, workdir=tmp_path):
        pass
    assert mlflow.get_run(killed.info.run_id).data.params == {"optim.lr": "8e-05", "seed": "0"}
    with pytest.raises(InputError, match=r"cannot resume run .* different config \(seed: was '0', now '1'\)"):
        with start_run("unit-test", params={**params, "seed": 1}, resume_run_id=killed.info.run_id, workdir=tmp_path):
            pass
