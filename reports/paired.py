"""Paired comparisons: every method against a reference method on the same items and seeds.

The per-sample parquets are joined on (item_id, seed), so per-item difficulty cancels; the 95% interval of the
mean difference is a paired bootstrap (bench.metrics.bootstrap.paired_diff_ci). A difference is "real" here when
its interval excludes 0 — one test per cell, without a multiple-comparison correction (the caption says so).
Set metrics (FID, KID) have no per-sample values and are not compared this way.
"""

import math
from dataclasses import dataclass

import pandas as pd

from bench.metrics import registry
from bench.metrics.bootstrap import paired_diff_ci
from bench.metrics.registry import metric_columns
from localctrl.config import Z0Settings
from reports.runs import MethodRun, ReportError, SuiteRun, per_sample

JOIN = ["item_id", "seed"]


@dataclass
class Paired:
    run: SuiteRun
    reference: MethodRun
    diffs: pd.DataFrame  # rows: method names (reference left out); columns: metric keys; values: mean difference
    lo: pd.DataFrame
    hi: pd.DataFrame
    pairs: dict[str, int]  # method → number of (item, seed) pairs joined

    @property
    def significant(self) -> pd.DataFrame:
        """True where the 95% interval of method − reference excludes 0."""
        return (self.lo > 0) | (self.hi < 0)


def default_reference(run: SuiteRun) -> MethodRun:
    """The z0-loss method: named or labelled z0, with λ > 0 when it has a λ sweep coordinate.

    Among several (a λ sweep), the one trained with the default λ (localctrl's Z0Settings, the paper's value), then
    one with no sweep coordinate besides λ (the plain z0 method, not a filter or weighting ablation), then suite order.
    """
    def is_z0(method: MethodRun) -> bool:
        named = "z0" in method.name.lower() or "z0" in method.label.lower()
        weight = method.sweep.get("lambda")
        return named and method.kind == "adapter" and (weight is None or _number(weight) > 0)

    candidates = [m for m in run.methods if is_z0(m)]
    if not candidates:
        raise ReportError(f"run {run.short_id} ({run.suite}) has no z0 method to compare with "
                          f"(methods: {', '.join(m.name for m in run.methods)}); choose one with --reference NAME")
    default_weight = Z0Settings().weight
    return min(candidates, key=lambda m: (not math.isclose(_number(m.sweep.get("lambda", default_weight)), default_weight),
                                          len(set(m.sweep) - {"lambda"}), run.methods.index(m)))


def _number(value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def paired_comparisons(run: SuiteRun, reference: str | None = None, n_boot: int = 1000, seed: int = 0) -> Paired:
    chosen = run.method(reference) if reference else default_reference(run)
    frames = {m.name: per_sample(m) for m in run.methods}
    base = frames[chosen.name]
    if base is None:
        raise ReportError(f"reference method '{chosen.name}' of run {run.short_id} has no per-sample scores to pair with")
    diffs, lo, hi, pairs = {}, {}, {}, {}
    for method in run.methods:
        frame = frames[method.name]
        if method is chosen or frame is None:
            continue
        joined = frame.merge(base, on=JOIN, suffixes=("", "@ref"))
        pairs[method.name] = len(joined)
        columns = metric_columns([c for c in frame.columns if f"{c}@ref" in joined.columns], headline_only=False)
        diffs[method.name], lo[method.name], hi[method.name] = {}, {}, {}
        for column in columns:
            mine, theirs = joined[column].to_numpy(float), joined[f"{column}@ref"].to_numpy(float)
            if (~(pd.isna(mine) | pd.isna(theirs))).sum() < 2:
                continue  # e.g. preservation metrics of the text-only method: nothing to pair
            diff, low, high = paired_diff_ci(mine, theirs, n_boot=n_boot, seed=seed, cap=registry.cap(column),
                                             groups=joined["item_id"].to_numpy())  # prompts resampled, with all their seeds
            diffs[method.name][column], lo[method.name][column], hi[method.name][column] = diff, low, high

    def frame_of(values: dict) -> pd.DataFrame:
        table = pd.DataFrame.from_dict(values, orient="index", dtype=float)
        return table.reindex(columns=metric_columns(list(table.columns), headline_only=False))

    return Paired(run, chosen, frame_of(diffs), frame_of(lo), frame_of(hi), pairs)
