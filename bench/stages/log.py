"""MLflow logging of a suite invocation: one parent run, one child run per method (README, "Comparing methods in the MLflow UI").

Reruns reuse runs instead of piling up duplicates: the parent is found by the tag `localctrl.bench.key` (a hash of
the resolved suite, limit, methods and base), each child by its parent and `localctrl.method`. Params are
write-once and equal on a rerun (the key covers them); metrics are logged again with the same values, so the
latest value MLflow shows is the current one and the run list stays one row per method.
"""

from pathlib import Path
from typing import TYPE_CHECKING

import mlflow

from bench.suite import Suite
from localctrl.common.machine import describe_machine
from localctrl.common.tracking import experiment_id, git_commit, start_run, use_tracking

if TYPE_CHECKING:  # only a type here: reports import this module for EXPERIMENT and need no model code (diffusers)
    from bench.stages.methods import Method

EXPERIMENT = "bench"


def find_run(filter_string: str) -> str | None:
    runs = mlflow.search_runs(experiment_ids=[experiment_id(EXPERIMENT)], filter_string=filter_string, output_format="list",
                              max_results=1, order_by=["attributes.start_time ASC"])
    return runs[0].info.run_id if runs else None


def log_suite(suite: Suite, bench_key: str, plan_counts: dict[str, int], methods: dict[str, "Method"], results: dict[str, dict],
              tables: dict[str, Path], grids: dict[str, Path], scorer_names: dict[str, str], suite_file: str, notes: list[str],
              qualitative: Path, rehearsal: bool = False, comparison: Path | None = None, seconds: float | None = None,
              machine: str | None = None) -> str:
    """Log the invocation; returns the parent run id. A rehearsal (stand-in weights) is tagged `localctrl.rehearsal`.
    This invocation's wall time (`bench_seconds`), machine and commit are logged again by every rerun: the latest values
    describe the latest invocation (with `plan_cached`, whether it computed everything)."""
    use_tracking()
    parent_id = find_run(f"tags.`localctrl.bench.key` = '{bench_key}' and tags.`localctrl.bench.role` = 'suite'")
    params = {"suite": suite.model_dump(mode="json"), **{f"metric.{k}": v for k, v in scorer_names.items()}}
    tags = {"localctrl.bench.key": bench_key, "localctrl.bench.role": "suite", "localctrl.suite": suite.name}
    marks = {"localctrl.rehearsal": "true"} if rehearsal else {}
    tags |= marks
    run_name = suite.name + (" (rehearsal)" if rehearsal else "")
    with start_run(EXPERIMENT, run_name=run_name, params=params, tags=tags, resume_run_id=parent_id) as parent:
        mlflow.log_metrics({f"plan_{name}": value for name, value in plan_counts.items()}
                           | ({"bench_seconds": seconds} if seconds is not None else {}))
        mlflow.set_tags({"localctrl.bench.machine": machine or describe_machine(), "localctrl.bench.commit": git_commit() or "none"})
        mlflow.log_text(Path(suite_file).read_text(encoding="utf-8") if Path(suite_file).is_file() else suite_file, "suite.yaml")
        if notes:
            mlflow.log_text("\n".join(notes) + "\n", "notes.txt")
        mlflow.log_artifacts(str(qualitative), "qualitative")
        if comparison is not None:
            mlflow.log_artifacts(str(comparison), "comparison")
        children = {}
        for name, method in methods.items():
            child_id = find_run(f"tags.`localctrl.bench.parent` = '{parent.info.run_id}' and tags.`localctrl.method` = '{name}'")
            child_params = {"method": name, "spec": method.spec.model_dump(mode="json"), "weights": method.weights or "none",
                            **{f"metric.{k}": v for k, v in scorer_names.items()}}
            child_tags = {"localctrl.bench.parent": parent.info.run_id, "localctrl.bench.role": "method", "localctrl.method": name,
                          "localctrl.suite": suite.name, "mlflow.parentRunId": parent.info.run_id, **marks}
            if method.training_run_id:
                child_tags["localctrl.training_run_id"] = method.training_run_id
            with start_run(EXPERIMENT, run_name=name, params=child_params, tags=child_tags, nested=True, resume_run_id=child_id) as child:
                children[name] = {"run_id": child.info.run_id, "label": method.spec.label or name, "kind": method.spec.kind,
                                  "sweep": method.spec.sweep, "training_run_id": method.training_run_id}
                mlflow.log_metrics({key: value for key, value in results[name].items() if value == value})  # NaN: not logged
                mlflow.log_artifact(str(tables[name]), "per-sample")
                if name in grids:
                    mlflow.log_artifact(str(grids[name]), "grids")
        mlflow.log_dict({"methods": children}, "methods.json")  # order, labels, sweeps and child runs for reports
        return parent.info.run_id
