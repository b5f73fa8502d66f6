"""95% intervals for per-sample metrics: percentile bootstrap of a mean, and of a paired difference of means.

Conventions shared by every aggregate:
- NaN means "nothing to measure" for that sample (e.g. an empty region) and is left out.
- ±inf is never averaged silently: pass `cap` (values above it are set to it; PSNR uses `PSNR_CAP_DB` from
  bench.metrics.registry, so a perfect match counts as 100 dB) or get a ValueError naming the problem.
- Fewer than two values: the mean is returned with a NaN interval (one value says nothing about its spread).
- With `groups` (a suite's k images per prompt: the prompt's item id per value) the unit resampled is the prompt: the
  values are first averaged within each prompt (NaN left out), then the prompts' means are bootstrapped. Images of
  one prompt are not independent, so resampling them would give intervals that are too narrow.
"""

import numpy as np
import pandas as pd
from scipy import stats


def _clean(values: np.ndarray, cap: float | None) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    if cap is not None:
        values = np.minimum(values, cap)
    finite_or_nan = np.isfinite(values) | np.isnan(values)
    if not finite_or_nan.all():
        count = int((~finite_or_nan).sum())
        raise ValueError(f"{count} infinite value(s): pass cap= to say what they count as (e.g. PSNR_CAP_DB)")
    return values


def bootstrap_indices(n: int, n_boot: int, seed: int) -> np.ndarray:
    """(n_boot, n) row indices drawn with replacement: the resamples of the set metrics' intervals (FID, dataset mIoU)."""
    return np.random.default_rng(seed).integers(0, n, size=(n_boot, n))


def _percentile_ci(values: np.ndarray, n_boot: int, seed: int, level: float) -> tuple[float, float, float]:
    """(mean, lo, hi) of NaN-free values; scipy's percentile bootstrap (it is exact for constant data: lo = hi = mean)."""
    mean = float(values.mean()) if len(values) else float("nan")
    if len(values) < 2:
        return mean, float("nan"), float("nan")
    result = stats.bootstrap((values,), np.mean, n_resamples=n_boot, confidence_level=level, method="percentile", rng=seed)
    return mean, float(result.confidence_interval.low), float(result.confidence_interval.high)


def group_means(values: np.ndarray, groups: np.ndarray | None) -> np.ndarray:
    """The non-NaN values, or with `groups` the mean of each group's non-NaN values (groups with none left out)."""
    if groups is None:
        return values[~np.isnan(values)]
    groups = np.asarray(groups)
    if groups.shape != values.shape:
        raise ValueError(f"groups must label every value: shapes {groups.shape} and {values.shape}")
    frame = pd.DataFrame({"value": values, "group": groups})
    return frame.groupby("group", sort=True)["value"].mean().dropna().to_numpy()  # pandas' mean skips NaN


def mean_ci(values: np.ndarray, n_boot: int = 1000, seed: int = 0, level: float = 0.95,
            cap: float | None = None, groups: np.ndarray | None = None) -> tuple[float, float, float]:
    """(mean, lo, hi) over the non-NaN values (with `groups`: over the groups' means); the same seed gives the same
    interval."""
    return _percentile_ci(group_means(_clean(values, cap), groups), n_boot, seed, level)


def paired_diff_ci(a: np.ndarray, b: np.ndarray, n_boot: int = 1000, seed: int = 0, level: float = 0.95,
                   cap: float | None = None, groups: np.ndarray | None = None) -> tuple[float, float, float]:
    """(mean of a - b, lo, hi): items resampled together, so per-item difficulty cancels (a and b score the same items).

    For a mean, resampling pairs and differencing equals resampling the per-item differences. Pairs with a NaN side are
    left out.
    """
    a, b = _clean(a, cap), _clean(b, cap)
    if a.shape != b.shape:
        raise ValueError(f"paired values must score the same items: shapes {a.shape} and {b.shape}")
    return _percentile_ci(group_means(a - b, groups), n_boot, seed, level)
