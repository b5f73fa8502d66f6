"""Bootstrap intervals: contain the mean, reproducible, degenerate cases, and NaN / inf conventions."""

import numpy as np
import pytest

from bench.metrics.bootstrap import mean_ci, paired_diff_ci
from bench.metrics.registry import PSNR_CAP_DB


def test_mean_ci_contains_the_mean_and_is_deterministic_for_a_seed():
    values = np.random.default_rng(0).normal(2.0, 1.0, size=200)
    mean, lo, hi = mean_ci(values, seed=3)
    assert mean == pytest.approx(values.mean()) and lo < mean < hi
    assert hi - lo == pytest.approx(2 * 1.96 / np.sqrt(200), rel=0.25)  # the normal-theory width, roughly
    assert mean_ci(values, seed=3) == (mean, lo, hi)
    assert mean_ci(values, seed=4) != (mean, lo, hi)


def test_constant_data_gives_a_zero_width_interval():
    assert mean_ci(np.full(50, 0.7)) == pytest.approx((0.7, 0.7, 0.7))


def test_nan_is_left_out_and_a_single_value_has_no_interval():
    mean, lo, hi = mean_ci(np.array([1.0, np.nan, 3.0, np.nan]))
    assert mean == 2.0 and 1.0 <= lo <= hi <= 3.0
    mean, lo, hi = mean_ci(np.array([4.0, np.nan]))
    assert mean == 4.0 and np.isnan(lo) and np.isnan(hi)


def test_infinite_values_need_an_explicit_cap():
    psnr = np.array([30.0, np.inf, 40.0])
    with pytest.raises(ValueError, match="cap="):
        mean_ci(psnr)
    mean, _, _ = mean_ci(psnr, cap=PSNR_CAP_DB)
    assert mean == pytest.approx((30 + 100 + 40) / 3)


def test_paired_diff_ci_excludes_zero_for_a_clear_shift_and_includes_it_for_noise():
    rng = np.random.default_rng(1)
    difficulty = rng.normal(0, 5, size=100)  # large per-item variation that pairing cancels
    a = difficulty + rng.normal(0, 0.1, size=100)
    diff, lo, hi = paired_diff_ci(difficulty + 0.5 + rng.normal(0, 0.1, size=100), a)
    assert diff == pytest.approx(0.5, abs=0.05) and 0 < lo < diff < hi
    _, lo, hi = paired_diff_ci(difficulty + rng.normal(0, 0.1, size=100), a)
    assert lo < 0 < hi


def test_paired_diff_ci_drops_pairs_with_a_nan_side_and_rejects_unpaired_shapes():
    diff, _, _ = paired_diff_ci(np.array([1.0, 2.0, np.nan]), np.array([0.0, 0.0, 5.0]))
    assert diff == 1.5
    with pytest.raises(ValueError, match="same items"):
        paired_diff_ci(np.zeros(3), np.zeros(4))


def test_groups_resample_prompts_not_images():
    """4 images per prompt that agree with each other: resampling the 400 images as if independent gives an interval
    half as wide as resampling the 100 prompts, which is the honest one (equal to bootstrapping the prompt means)."""
    rng = np.random.default_rng(0)
    prompt_effect = rng.normal(0, 1, size=100)
    values = np.repeat(prompt_effect, 4) + rng.normal(0, 0.1, size=400)
    groups = np.repeat([f"item-{k:03d}" for k in range(100)], 4)
    mean, lo, hi = mean_ci(values, groups=groups)
    assert (mean, lo, hi) == pytest.approx(mean_ci(values.reshape(100, 4).mean(axis=1)), abs=1e-12)
    _, naive_lo, naive_hi = mean_ci(values)
    assert (hi - lo) > 1.7 * (naive_hi - naive_lo)
    values[[0, 1, 2, 3, 4]] = np.nan  # a prompt with no value left is left out; the others average what they have
    mean, _, _ = mean_ci(values, groups=groups)
    assert mean == pytest.approx(np.mean([values[5:8].mean(), *values[8:].reshape(98, 4).mean(axis=1)]))
    diff, _, _ = paired_diff_ci(values, np.zeros(400), groups=groups)
    assert diff == mean
