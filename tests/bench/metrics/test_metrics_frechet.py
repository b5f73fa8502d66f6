"""FID and KID against independent computations, and the FID bootstrap against clean-fid on the same resamples."""

import warnings

import numpy as np
import pytest
from scipy import linalg

from bench.metrics.bootstrap import bootstrap_indices
from bench.metrics.frechet import feature_stats, fid_bootstrap_ci, fid_from_features, kid_from_features


def reference_fid(a: np.ndarray, b: np.ndarray) -> float:
    """‖μ1 − μ2‖² + tr(Σ1 + Σ2 − 2(Σ1Σ2)^½), written out with scipy's sqrtm."""
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * linalg.sqrtm(s1 @ s2).real))


def reference_unbiased_mmd2(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD² with k(u, v) = (u·v/d + 1)³, by explicit double loops."""
    d, m = x.shape[1], len(x)
    k = lambda u, v: (u @ v / d + 1) ** 3
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / (m * m)
    return xx + yy - 2 * xy


def test_feature_stats_are_float64_mean_and_sample_covariance():
    features = np.random.default_rng(0).normal(size=(30, 4)).astype(np.float32)
    mu, sigma = feature_stats(features)
    assert mu.dtype == sigma.dtype == np.float64 and sigma.shape == (4, 4)
    centred = features.astype(np.float64) - features.astype(np.float64).mean(0)
    np.testing.assert_allclose(sigma, centred.T @ centred / 29, rtol=1e-12)


def test_fid_of_a_set_with_itself_is_zero():
    a = np.random.default_rng(1).normal(size=(200, 8))
    assert abs(fid_from_features(a, a)) < 1e-6


def test_fid_equals_the_formula_computed_independently():
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(300, 6)), rng.normal(0.5, 1.3, size=(250, 6)) @ rng.normal(size=(6, 6))
    expected = reference_fid(a, b)
    assert expected > 1  # a clearly different pair, so relative agreement is meaningful
    assert fid_from_features(a, b) == pytest.approx(expected, rel=1e-6)


def test_fid_of_few_images_on_wide_features_equals_clean_fids_value_both_ways_round():
    # 6 and 40 images on 1024-d features: the low-rank path (no D² sqrtm), against clean-fid's frechet_distance
    from cleanfid.fid import frechet_distance
    from scipy.linalg import LinAlgWarning

    rng = np.random.default_rng(5)
    mixing = rng.normal(size=(1024, 1024)) / 32
    a, b = rng.normal(size=(6, 1024)) @ mixing, rng.normal(0.3, 1.1, size=(40, 1024)) @ mixing
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LinAlgWarning)
        expected = frechet_distance(*feature_stats(a), *feature_stats(b))
    assert fid_from_features(a, b) == pytest.approx(expected, rel=1e-6)
    assert fid_from_features(b, a) == pytest.approx(expected, rel=1e-6)


def test_the_reference_statistics_kept_between_calls_follow_the_arrays_contents():
    # the low-rank path keeps the larger set's Σ^½ between calls: an array changed in place must not get stale ones
    from cleanfid.fid import frechet_distance
    from scipy.linalg import LinAlgWarning

    rng = np.random.default_rng(7)
    a, b = rng.normal(size=(5, 1024)), rng.normal(0.2, 1.0, size=(30, 1024))
    first = fid_from_features(a, b)
    b[:, :10] += 3.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LinAlgWarning)
        expected = frechet_distance(*feature_stats(a), *feature_stats(b))
    assert fid_from_features(a, b) == pytest.approx(expected, rel=1e-6) and abs(first - expected) > 1.0


def test_kid_with_full_size_subsets_is_the_exact_unbiased_mmd2():
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(7, 3)), rng.normal(0.4, 1.0, size=(7, 3))
    # subset size = set size: every subset is a permutation of the whole set, so any seed gives the exact value
    for seed in (0, 5):
        assert kid_from_features(x, y, num_subsets=3, seed=seed) == pytest.approx(reference_unbiased_mmd2(x, y), rel=1e-9)


def test_kid_is_near_zero_for_one_distribution_and_clearly_positive_for_a_shift():
    rng = np.random.default_rng(4)
    a, b = rng.normal(size=(400, 16)), rng.normal(size=(400, 16))
    same = kid_from_features(a, b, num_subsets=20, max_subset_size=200)
    shifted = kid_from_features(a, b + 1.0, num_subsets=20, max_subset_size=200)
    assert abs(same) < 0.01 and shifted > 0.5
    assert kid_from_features(a, b, num_subsets=20, max_subset_size=200, seed=9) == pytest.approx(
        kid_from_features(a, b, num_subsets=20, max_subset_size=200, seed=9))


def test_kid_leaves_numpys_global_random_state_alone():
    np.random.seed(123)
    expected = np.random.rand()
    np.random.seed(123)
    kid_from_features(np.ones((5, 2)), np.zeros((5, 2)), num_subsets=2)
    assert np.random.rand() == expected


@pytest.mark.parametrize("n", [40, 12])  # N > D (D×D Gram) and N < D (N×N Gram)
def test_fid_bootstrap_ci_is_clean_fids_percentile_interval_shifted_by_the_bootstrap_bias(n):
    rng = np.random.default_rng(5)
    a, b = rng.normal(size=(n, 16)), rng.normal(0.3, 1.0, size=(60, 16))
    replicates = [fid_from_features(a[rows], b) for rows in bootstrap_indices(n, 25, seed=7)]
    estimate = fid_from_features(a, b)
    bias = np.mean(replicates) - estimate
    lo, hi = fid_bootstrap_ci(a, b, n_boot=25, seed=7, level=0.9)
    assert (lo, hi) == pytest.approx(tuple(np.percentile(replicates, [5, 95]) - bias), rel=1e-6)
    assert lo < estimate < hi and fid_bootstrap_ci(a, b, n_boot=25, seed=7, level=0.9) == (lo, hi)
