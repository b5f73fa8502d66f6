"""Trade-off: in-mask control fidelity against outside-mask preservation, with 95% CI bars. Fidelity is the suite
condition's headline metric (edge F1 for edge maps, depth RMSE for depth, seg mIoU for segmentation).

Methods are told apart by colour and marker in a legend beside the axes (labels next to the points overlap as soon
as methods score alike, which is the interesting case). The preservation reference (text-only) has no
preservation score by definition: its in-mask fidelity is drawn as a dashed vertical line instead.
"""

import matplotlib.pyplot as plt

from bench.metrics import registry as metrics
from reports.figures import MARKERS, colour
from reports.main_table import fidelity_key
from reports.runs import MethodRun, SuiteRun

PRESERVATION = ("ssim_out", "lpips_out", "psnr_out")  # the first one logged is used


def preservation_key(methods: list[MethodRun]) -> str | None:
    for key in PRESERVATION:
        if any(key in m.metrics for m in methods):
            return key
    return None


def _errors(method: MethodRun, key: str) -> list[list[float]] | None:
    lo, hi = method.metrics.get(f"{key}_ci_lo"), method.metrics.get(f"{key}_ci_hi")
    if lo is None or hi is None or lo != lo or hi != hi:
        return None
    value = method.metrics[key]
    return [[max(value - lo, 0.0)], [max(hi - value, 0.0)]]


def tradeoff_figure(rows: list[tuple[str, SuiteRun, MethodRun]], runs: list[SuiteRun]):
    """None when no method has both a fidelity and a preservation score."""
    methods = [m for _, _, m in rows]
    y_key, x_key = preservation_key(methods), fidelity_key(methods, runs)
    plotted = [(label, run, m) for label, run, m in rows if y_key and x_key and x_key in m.metrics and y_key in m.metrics]
    if not plotted:
        return None
    names = list(dict.fromkeys(m.name for _, _, m in rows))
    figure, axis = plt.subplots(figsize=(7.5, 4.6))
    for label, run, method in plotted:
        index = names.index(method.name)
        # Marker shape per method (per run when comparing) and translucent faces: methods that score alike stay visible.
        marker = MARKERS[runs.index(run) % len(MARKERS)] if len(runs) > 1 else MARKERS[index % len(MARKERS)]
        tint = colour(index, len(names))
        axis.errorbar(method.metrics[x_key], method.metrics[y_key], xerr=_errors(method, x_key), yerr=_errors(method, y_key),
                      fmt=marker, color=tint, mfc=(*tint[:3], 0.35), mec=tint, mew=1.5, markersize=9, capsize=3, elinewidth=1,
                      label=label)
    for label, run, method in rows:  # methods without a preservation score (the reference): a line at their fidelity
        if x_key in method.metrics and y_key not in method.metrics:
            style = ("--", ":", "-.")[runs.index(run) % 3]  # one style per compared run, so the legend tells the lines apart
            axis.axvline(method.metrics[x_key], color="0.45", linestyle=style, linewidth=1,
                         label=f"{label} ({metrics.label(x_key)} only)")
    axis.set_xlabel(f"{metrics.label(x_key)} {metrics.arrow(x_key)}  (control fidelity inside the mask)")
    axis.set_ylabel(f"{metrics.label(y_key)} {metrics.arrow(y_key)}  (preservation outside)")
    better_up, better_right = metrics.higher_is_better(y_key), metrics.higher_is_better(x_key)
    x_tail, x_head = (0.87, 0.98) if better_right else (0.13, 0.02)
    tail, head = ((x_tail, 0.87), (x_head, 0.98)) if better_up else ((x_tail, 0.13), (x_head, 0.02))
    axis.annotate("", xy=head, xytext=tail, xycoords="axes fraction", arrowprops={"arrowstyle": "->", "color": "0.3"})
    axis.text(tail[0] + (-0.01 if better_right else 0.01), tail[1], "better", transform=axis.transAxes,
              ha="right" if better_right else "left", va="center", fontsize=9, color="0.3")
    axis.grid(alpha=0.3)
    axis.set_title("In-mask control vs outside-mask preservation (95% CI bars)", fontsize=10)
    axis.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=8, frameon=False)
    return figure
