"""Metric against λ (the z0 loss weight) with 95% CI bands, one panel per metric.

λ is log-spaced, so λ > 0 is drawn on a log axis; λ = 0 (no z0 term) cannot be, and is drawn as its own marker
one and a half decades left of the smallest λ, with a dotted level line across the panel so the curve can be read
against it, and the axis broken between the two.
"""

import math

import matplotlib.pyplot as plt

from bench.metrics import registry as metrics
from reports.ablations import sweep_value
from reports.figures import MARKERS, colour
from reports.runs import SuiteRun

PANELS = ("edge_f1_in", "edge_leakage_out", "depth_rmse_in", "depth_leakage_out", "seg_miou_in", "seg_leakage_out", "ssim_out",
          "lpips_out", "fid", "align_shapes", "clip_score")
ZERO_OFFSET_DECADES = 1.5
DODGE = 1.12  # multiplicative x offset between compared runs (the axis is logarithmic)


def lambda_points(run: SuiteRun):
    points = []
    for method in run.methods:
        try:
            points.append((float(method.sweep["lambda"]), method))
        except (KeyError, TypeError, ValueError):
            continue
    return sorted(points, key=lambda point: point[0])


def panel_keys(runs: list[SuiteRun], most: int = 4) -> list[str]:
    """Headline metrics measured at two λ or more, fidelity first (random-network variants included, named so)."""
    logged = {key for run in runs for _, m in lambda_points(run) for key in m.metrics}
    own = metrics.group(metrics.fidelity_metric(runs[0].params.get("suite.condition") if runs else None))
    keys = []
    for base in sorted(PANELS, key=lambda base: metrics.group(base) != own):  # the suite condition's fidelity first
        for key in metrics.metric_columns(logged):
            if metrics.base_of(key)[0] == base and key not in keys:
                if max(sum(key in m.metrics for _, m in lambda_points(run)) for run in runs) >= 2:
                    keys.append(key)
    return keys[:most]


def lambda_figure(runs: list[SuiteRun]):
    """None when no run has two λ settings or more."""
    series = [(run, lambda_points(run)) for run in runs if len(lambda_points(run)) >= 2]
    if not series:
        return None
    keys = panel_keys([run for run, _ in series])
    if not keys:
        return None
    positive = [lam for _, points in series for lam, _ in points if lam > 0]
    zero_x = min(positive) / 10**ZERO_OFFSET_DECADES if positive else 1.0
    columns = min(len(keys), 2)
    rows = math.ceil(len(keys) / columns)
    figure, axes = plt.subplots(rows, columns, figsize=(4.6 * columns, 3.3 * rows), squeeze=False)
    for axis in axes.flat[len(keys):]:
        axis.set_visible(False)
    fid_features = runs[0].params.get("metric.fid.features")
    for axis, key in zip(axes.flat, keys):
        for index, (run, points) in enumerate(series):
            tint = colour(index, len(series))
            dodge = DODGE ** (index - (len(series) - 1) / 2)  # compared runs side by side at each λ, not on top of each other
            name = f"run {run.short_id}" if len(series) > 1 else "λ > 0"
            measured = [(lam, m) for lam, m in points if key in m.metrics]
            curve = [(lam, m) for lam, m in measured if lam > 0]
            if curve:
                x = [lam * dodge for lam, _ in curve]
                y = [m.metrics[key] for _, m in curve]
                lo = [m.metrics.get(f"{key}_ci_lo", m.metrics[key]) for _, m in curve]
                hi = [m.metrics.get(f"{key}_ci_hi", m.metrics[key]) for _, m in curve]
                axis.plot(x, y, marker=MARKERS[index % len(MARKERS)], color=tint, label=name)
                axis.fill_between(x, lo, hi, color=tint, alpha=0.2, linewidth=0)
                # bars too: a band needs two λ > 0 to show, and a reader compares single points with λ = 0 by their bars
                axis.errorbar(x, y, yerr=[[v - low for v, low in zip(y, lo)], [high - v for v, high in zip(y, hi)]], fmt="none",
                              ecolor=tint, capsize=3, elinewidth=1)
            for lam, method in measured:
                if lam == 0:
                    value = method.metrics[key]
                    lo, hi = method.metrics.get(f"{key}_ci_lo"), method.metrics.get(f"{key}_ci_hi")
                    error = [[value - lo], [hi - value]] if lo is not None and hi is not None else None
                    axis.errorbar([zero_x * dodge], [value], yerr=error, fmt="s", mfc="white", color=tint, capsize=3,
                                  label=f"λ = 0 ({method.label})" if len(series) == 1 else None)
                    axis.axhline(value, color=tint, linestyle=":", linewidth=1)
        axis.set_xscale("log")
        if any(lam == 0 for _, points in series for lam, _ in points):
            ticks = [zero_x] + sorted(set(positive))
            axis.set_xticks(ticks, ["0"] + [sweep_value(t) for t in ticks[1:]])
            axis.minorticks_off()
            axis.axvline(zero_x * 10 ** (ZERO_OFFSET_DECADES / 2), color="0.6", linewidth=0.8, linestyle=(0, (2, 2)))  # axis break
            axis.set_xlim(zero_x / 3, max(positive) * 3 if positive else zero_x * 3)
        axis.set_title(f"{metrics.label(key, fid_features)} {metrics.arrow(key)}", fontsize=10)
        axis.set_xlabel("λ (z0 loss weight)")
        axis.grid(alpha=0.3)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="lower center", ncol=min(len(labels), 3), fontsize=8, frameon=False, bbox_to_anchor=(0.5, -0.02))
    figure.suptitle("Metrics against λ (95% CI bands)", fontsize=11)
    figure.tight_layout(rect=(0, 0.06, 1, 1))
    return figure
