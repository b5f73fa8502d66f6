"""In-mask fidelity by mask size: a method's mean over small, medium and large masks (EditBench's bins of the image's
area: up to 21.5 %, 21.5-36.9 %, above 36.9 %), so a mean that mixes easy and hard masks can be read apart.

Read from the per-sample scores (`mask_area`, and the condition's fidelity metric, NaN where the mask held none of
the condition's structure); intervals resample prompts, as the main table's do.
"""

import pandas as pd

from bench.metrics import registry as metrics
from bench.metrics.bootstrap import mean_ci
from reports.main_table import fidelity_key, rows
from reports.runs import SuiteRun, per_sample
from reports.tables import MetricTable

BINS = (("small", 0.0, 0.215), ("medium", 0.215, 0.369), ("large", 0.369, 1.0))  # (name, above, up to) share of the image


def bin_of(area: float) -> str:
    return next(name for name, _, high in BINS if area <= high)  # bins in order: the first whose bound holds it


def mask_bin_table(runs: list[SuiteRun], ci: str = "pm", n_boot: int = 1000) -> MetricTable | None:
    """Rows: methods with per-sample scores; columns: the fidelity metric in each bin, then each bin's sample count
    (samples with structure in the mask). None when no method has per-sample mask areas."""
    found = rows(runs)
    key = fidelity_key([method for _, _, method in found], runs)
    if key is None:
        return None
    means, lows, highs, index = [], [], [], []
    for label, _, method in found:
        frame = per_sample(method)
        if frame is None or "mask_area" not in frame or key not in frame:
            continue
        bins = frame["mask_area"].map(bin_of)
        row_mean, row_lo, row_hi = {}, {}, {}
        for name, _, _ in BINS:
            part = frame[bins == name]
            mean, lo, hi = mean_ci(part[key].to_numpy(float), n_boot=n_boot, seed=0, cap=metrics.cap(key),
                                   groups=part["item_id"].to_numpy())
            column = f"{key}_{name}"  # the metric's key with a suffix: its digits, direction and ranking (registry)
            row_mean[column], row_lo[column], row_hi[column] = mean, lo, hi
            row_mean[f"samples_{name}"] = float(part[key].notna().sum())
        index.append(label)
        means.append(row_mean), lows.append(row_lo), highs.append(row_hi)
    if not index:
        return None
    columns = list(means[0])

    def frame_of(values: list[dict]) -> pd.DataFrame:
        return pd.DataFrame(values, index=index, dtype=float).reindex(columns=columns)

    label = metrics.label(key, runs[0].params.get("metric.fid.features"))
    headers = {f"{key}_{name}": f"{label}, {name}" for name, _, _ in BINS}
    headers |= {f"samples_{name}": f"n, {name}" for name, _, _ in BINS}
    bounds = ", ".join(f"{name} ≤ {high:.1%}" if low == 0 else f"{name} > {low:.1%}" if high == 1 else
                       f"{name} {low:.1%}–{high:.1%}" for name, low, high in BINS)
    caption = (f"{label} by mask size ({bounds} of the image, EditBench's bins); n: samples whose mask holds some of the "
               "condition's structure (the others have no in-mask fidelity). Mean and 95% CI over prompts; small bins "
               "have wide intervals.")
    return MetricTable(frame_of(means), frame_of(lows), frame_of(highs), headers=headers, caption=caption, ci=ci)
