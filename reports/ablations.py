"""Ablation tables: one per sweep coordinate the suite's methods carry (λ, z0 filter, weighting, mask resize mode).

A method's `sweep` ({lambda: 1e-3}, {filter: laplacian}, …) says which ablation it belongs to. The reference (z0)
method is the default point of the other ablations: it joins their tables, named by the default value.
"""

import math

import numpy as np
import pandas as pd

from localctrl.config import MaskSettings, Z0Settings
from reports.main_table import headers
from reports.runs import MethodRun, SuiteRun
from reports.tables import MetricTable

SWEEP_NAMES = {"lambda": "λ", "filter": "z0 filter", "weighting": "z0 weighting", "resize": "mask resize"}
DEFAULTS = {"lambda": Z0Settings().weight, "filter": Z0Settings().filter, "weighting": Z0Settings().weighting,
            "resize": MaskSettings().resize}


def sweep_keys(run: SuiteRun) -> list[str]:
    return list(dict.fromkeys(key for method in run.methods for key in method.sweep))


def sweep_value(value) -> str:
    """1e-3 → "1e-3", 0 → "0", 2 → "2", "laplacian" → "laplacian"."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if value == 0 or abs(value) >= 1:
            return f"{value:g}"
        return np.format_float_scientific(value, trim="-", exp_digits=1)
    return str(value)


def _order(value) -> tuple:
    return (0, float(value), "") if isinstance(value, (int, float)) and not math.isnan(float(value)) else (1, 0.0, str(value))


def ablation_rows(run: SuiteRun, key: str, reference: MethodRun | None) -> list[tuple[str, MethodRun]]:
    carrying = sorted((m for m in run.methods if key in m.sweep), key=lambda m: _order(m.sweep[key]))
    found = [(f"{sweep_value(m.sweep[key])} — {m.label}", m) for m in carrying]
    if reference is not None and key not in reference.sweep and key in DEFAULTS:
        found.insert(0, (f"{sweep_value(DEFAULTS[key])} (default) — {reference.label}", reference))
    return found


def ablation_table(run: SuiteRun, key: str, keys: list[str], reference: MethodRun | None, ci: str = "pm") -> MetricTable | None:
    """Rows: the sweep's settings in order; None when fewer than two settings (nothing to compare)."""
    found = ablation_rows(run, key, reference)
    if len(found) < 2:
        return None
    index = [label for label, _ in found]

    def frame(suffix: str) -> pd.DataFrame:
        return pd.DataFrame([[m.metrics.get(k + suffix, float("nan")) for k in keys] for _, m in found], index=index, columns=keys,
                            dtype=float)

    name = SWEEP_NAMES.get(key, key)
    caption = (f"Ablation over {name} ({run.suite} run {run.short_id}); cells as in the main table, best in bold and second "
               "underlined within this ablation.")
    return MetricTable(frame(""), frame("_ci_lo"), frame("_ci_hi"), headers=headers([run], keys), caption=caption,
                       row_title=f"{name} — method", ci=ci)
