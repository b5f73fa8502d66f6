"""Training curves of the adapters behind the methods: `loss_simple` and `loss_z0` per step (and validation edge F1).

Methods sharing one training run (e.g. the global adapter with and without the mask at inference) share one line,
named by all of them. Per-step losses are noisy: the raw values are drawn faintly, a centred moving average on top
(an exponential one lags a falling loss). A run whose `loss_z0` is all zeros trained without the z0 term: it is left
out of that panel, and the panel says so.
"""

import textwrap

import matplotlib.pyplot as plt
import pandas as pd

from reports.figures import colour
from reports.runs import MethodRun, SuiteRun, training_history

STYLES = ("-", "--", "-.", ":")
PANELS = {"loss_simple": "loss_simple (ε-MSE, masked)", "loss_z0": "loss_z0 (edge loss on ẑ0)", "val_edge_f1_in": "validation edge F1 in ↑"}


def linked_training_runs(runs: list[SuiteRun]) -> dict[str, list[MethodRun]]:
    linked: dict[str, list[MethodRun]] = {}
    for run in runs:
        for method in run.methods:
            if method.training_run_id:
                linked.setdefault(method.training_run_id, []).append(method)
    return linked


def _smooth(values: pd.Series) -> pd.Series:
    # Centred: a trailing average (EMA) lags a falling loss and drew the smooth curve above every raw point.
    return values.rolling(max(3, len(values) // 6) | 1, center=True, min_periods=1).mean()


def training_figure(runs: list[SuiteRun]):
    """None when no method links to a training run with logged losses."""
    histories = {}
    for run_id, methods in linked_training_runs(runs).items():
        history = training_history(run_id, tuple(PANELS))
        if history:
            names = list(dict.fromkeys(m.label for m in methods))
            histories[run_id] = (" / ".join(names), history)
    keys = [key for key in PANELS if any(key in h for _, h in histories.values())]
    if not keys:
        return None
    figure, axes = plt.subplots(1, len(keys), figsize=(4.4 * len(keys), 3.4), squeeze=False)
    for axis, key in zip(axes[0], keys):
        skipped, drawn = [], []
        for index, (run_id, (name, history)) in enumerate(histories.items()):
            if key not in history:
                continue
            frame = history[key]
            if key == "loss_z0" and (frame.value == 0).all():
                skipped.append(name)
                continue
            tint, style = colour(index, len(histories)), STYLES[index % len(STYLES)]  # styles: identical curves stay visible
            drawn.append(frame)
            if key.startswith("loss"):
                axis.plot(frame.step, frame.value, color=tint, alpha=0.25, linewidth=0.8)
                axis.plot(frame.step, _smooth(frame.value), color=tint, linewidth=1.6, linestyle=style, label=name)
            else:
                axis.plot(frame.step, frame.value, color=tint, linestyle=style, marker="o", markersize=3, label=name)
        if key.startswith("loss") and drawn and all((frame.value > 0).all() for frame in drawn):
            axis.set_yscale("log")
        axis.set_title(PANELS[key], fontsize=10)
        axis.set_xlabel("training step")
        if skipped:  # below the axis, wrapped: inside it the note covered the curves and ran into the next panel
            axis.set_xlabel("training step\n" + textwrap.fill("not drawn (trained without z0): " + "; ".join(skipped), 50), fontsize=8)
        axis.grid(alpha=0.3)
    handles = {}
    for axis in axes[0]:
        for handle, label in zip(*axis.get_legend_handles_labels()):
            handles.setdefault(label, handle)
    figure.legend(list(handles.values()), list(handles), loc="lower center", ncol=min(len(handles), 3), fontsize=8, frameon=False,
                  bbox_to_anchor=(0.5, -0.02))
    figure.suptitle("Training curves of the linked training runs (faint: as logged; bold: centred moving average)", fontsize=10)
    figure.tight_layout(rect=(0, 0.1, 1, 1))
    return figure
