"""The main table: one row per method (per run when comparing), the headline metrics as columns."""

import pandas as pd

from bench.metrics import registry as metrics
from reports.anchors import Anchor
from reports.paired import Paired
from reports.runs import MethodRun, ReportError, SuiteRun
from reports.tables import MetricTable


def rows(runs: list[SuiteRun]) -> list[tuple[str, SuiteRun, MethodRun]]:
    """(row label, run, method). Comparing runs interleaves them method by method, so each method's runs sit side by side."""
    if len(runs) == 1:
        run = runs[0]
        labels = [m.label for m in run.methods]
        return [(m.label if labels.count(m.label) == 1 else f"{m.label} [{m.name}]", run, m) for m in run.methods]
    names = list(dict.fromkeys(m.name for run in runs for m in run.methods))
    found = []
    for name in names:
        for run in runs:
            for method in run.methods:
                if method.name == name:
                    found.append((f"{method.label} ({run.short_id})", run, method))
    return found


def fidelity_key(methods: list[MethodRun], runs: list[SuiteRun]) -> str | None:
    """The logged key of the runs' condition's fidelity metric (a random-network variant included, named so)."""
    wanted = metrics.fidelity_metric(runs[0].params.get("suite.condition") if runs else None)
    logged = {key for m in methods for key in m.metrics}
    return next((key for key in metrics.metric_columns(logged, headline_only=False) if metrics.base_of(key)[0] == wanted), None)


def columns(runs: list[SuiteRun], wanted: list[str] | None = None, every_metric: bool = False) -> list[str]:
    logged = {key for run in runs for m in run.methods for key in m.metrics}
    if wanted:
        unknown = [key for key in wanted if key not in logged]
        if unknown:
            raise ReportError(f"--metric: {', '.join(unknown)} not logged by these runs; they have "
                              f"{', '.join(metrics.metric_columns(logged, headline_only=False))}")
        return wanted
    return metrics.metric_columns(logged, headline_only=not every_metric)


def check_same_implementations(runs: list[SuiteRun], keys: list[str]) -> None:
    """Never mix FID implementations in one column: `fid` from shapes-net and from Inception are different numbers."""
    if any(key in ("fid", "kid") for key in keys):
        features = {run.params.get("metric.fid.features") for run in runs if any("fid" in m.metrics for m in run.methods)}
        if len(features) > 1:
            raise ReportError(f"the compared runs computed FID with different features ({', '.join(sorted(map(str, features)))}); "
                              "compare runs that share their metric implementations")


def headers(runs: list[SuiteRun], keys: list[str], prefix: str = "") -> dict[str, str]:
    features = runs[0].params.get("metric.fid.features")
    return {key: prefix + metrics.label(key, features) for key in keys}


def metric_table(runs: list[SuiteRun], keys: list[str], paired: list[Paired] | None = None, ci: str = "pm",
                 caption: str = "", published: list[Anchor] = ()) -> MetricTable:
    """Means and CI bounds exactly as logged; a dagger where the paired CI against the run's reference excludes 0;
    then the `published` anchor rows (reports.anchors), shown without intervals and never ranked."""
    found = rows(runs)
    index = [label for label, _, _ in found] + [anchor.label for anchor in published]

    def frame(suffix: str) -> pd.DataFrame:
        values = [[method.metrics.get(key + suffix, float("nan")) for key in keys] for _, _, method in found]
        values += [[anchor.metrics.get(key, float("nan")) if not suffix else float("nan") for key in keys] for anchor in published]
        return pd.DataFrame(values, index=index, columns=keys, dtype=float)

    marked = None
    if paired:
        by_run = {p.run.run_id: p for p in paired}
        significant = {run_id: p.significant for run_id, p in by_run.items()}
        marked = pd.DataFrame(False, index=index, columns=keys)
        for label, run, method in found:
            table = significant.get(run.run_id)
            if table is None or method.name not in table.index:
                continue
            for key in keys:
                if key in table.columns and bool(table.at[method.name, key]):
                    marked.at[label, key] = True
    return MetricTable(frame(""), frame("_ci_lo"), frame("_ci_hi"), marked, headers=headers(runs, keys), caption=caption, ci=ci,
                       unranked=[anchor.label for anchor in published])


def paired_table(paired: list[Paired], keys: list[str], ci: str = "pm") -> MetricTable | None:
    """Differences method − reference with their paired 95% CIs (no ranking: a difference is not a score)."""
    runs = [p.run for p in paired]
    compare = len(runs) > 1
    means, los, his, marks = [], [], [], []
    index = []
    for p in paired:
        keep = [key for key in keys if key in p.diffs.columns]
        for method in p.run.methods:
            if method.name not in p.diffs.index:
                continue
            index.append(f"{method.label} ({p.run.short_id})" if compare else method.label)
            for target, source in ((means, p.diffs), (los, p.lo), (his, p.hi), (marks, p.significant)):
                target.append(source.loc[method.name, keep].reindex(keys))
    if not index:
        return None
    shown = [key for key in keys if key not in ("fid", "kid") and not key.startswith(("fid_", "kid_"))]

    def frame(parts: list[pd.Series]) -> pd.DataFrame:
        return pd.DataFrame([part.to_numpy() for part in parts], index=index, columns=keys)[shown]

    references = sorted({f"{p.reference.label}" + (f" ({p.run.short_id})" if compare else "") for p in paired})
    caption = (f"Paired differences to {', '.join(references)}: mean of (method − reference) over the same items and seeds, "
               f"{'± half the width of' if ci == 'pm' else 'with'} the paired-bootstrap 95% CI; †: the CI excludes 0. "
               "Read each column with its arrow: a positive difference is better for ↑ metrics, a negative one for ↓ metrics.")
    return MetricTable(frame(means).astype(float), frame(los).astype(float), frame(his).astype(float), frame(marks),
                       ranked=False, headers=headers(runs, shown, prefix="Δ "), caption=caption, signed=True, ci=ci)
