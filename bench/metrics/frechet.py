"""FID and KID between two feature sets, with clean-fid's conventions, and a bootstrap CI for FID.

Features come from bench.metrics.features (one row per image); the caller records which extractor made them.
"""

import hashlib

import numpy as np
from cleanfid.fid import frechet_distance, kernel_distance

from bench.metrics.bootstrap import bootstrap_indices


def feature_stats(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mean, covariance) in float64, covariance with rows as observations and ddof=1, exactly as clean-fid computes them."""
    features = np.asarray(features, dtype=np.float64)
    return features.mean(axis=0), np.cov(features, rowvar=False)


LOW_RANK_MIN_DIM = 1024  # from here on scipy's sqrtm of a D² product takes seconds (12 s at Inception's 2048 on 2 cores)


def fid_from_features(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance between the Gaussians fitted to feature sets a (N, D) and b (M, D): clean-fid's frechet_distance.

    With fewer images than dimensions in a set and D ≥ LOW_RANK_MIN_DIM (a few items of a rehearsal or a smoke run on
    2048-d Inception features), the same quantity comes exactly from the low-rank form of `_fid_to_fixed` instead
    (FID is symmetric: the smaller set goes first); a real 5,000-image FID always takes clean-fid's path.
    """
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape[1] >= LOW_RANK_MIN_DIM and min(len(a), len(b)) < a.shape[1]:
        small, large = (a, b) if len(a) <= len(b) else (b, a)
        return _fid_to_fixed(small, *_fixed_stats(large))
    return float(frechet_distance(*feature_stats(a), *feature_stats(b)))


# The reference set's (μ, Σ^½, tr Σ) by its features' digest: every method of a suite, every seed group and every
# bootstrap interval is measured against the same reference, and its D² eigh takes a second at Inception's 2048.
_FIXED_STATS: dict[bytes, tuple[np.ndarray, np.ndarray, float]] = {}
_FIXED_STATS_KEPT = 4


def _fixed_stats(b: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """(μb, Σb^½, tr Σb): Σb is symmetric PSD, so its square root via eigh is exact and stable. Kept by content (a
    digest of b's bytes and shape), so a changed array is never served stale statistics."""
    digest = hashlib.blake2b(f"{b.dtype} {b.shape}".encode(), digest_size=16)
    digest.update(memoryview(np.ascontiguousarray(b)).cast("B"))
    key = digest.digest()
    if key not in _FIXED_STATS:
        mu_b, sigma_b = feature_stats(b)
        eigenvalues, eigenvectors = np.linalg.eigh(sigma_b)
        if len(_FIXED_STATS) >= _FIXED_STATS_KEPT:
            _FIXED_STATS.clear()
        _FIXED_STATS[key] = mu_b, (eigenvectors * np.sqrt(np.clip(eigenvalues, 0, None))) @ eigenvectors.T, float(np.trace(sigma_b))
    return _FIXED_STATS[key]


def kid_from_features(a: np.ndarray, b: np.ndarray, num_subsets: int = 100, max_subset_size: int = 1000, seed: int = 0) -> float:
    """clean-fid's KID: unbiased MMD² with the kernel (x·y/D + 1)³, averaged over random subsets of min(N, M, max) rows.

    clean-fid draws its subsets from numpy's global generator; it is seeded here for reproducibility and restored after,
    so calling this never changes anyone else's random stream.
    """
    state = np.random.get_state()
    try:
        np.random.seed(seed)
        return float(kernel_distance(np.asarray(a, np.float64), np.asarray(b, np.float64), num_subsets, max_subset_size))
    finally:
        np.random.set_state(state)


def _fid_to_fixed(a: np.ndarray, mu_b: np.ndarray, sigma_b_sqrt: np.ndarray, trace_b: float) -> float:
    """FID of a against fixed statistics of b, given Σb^½: the same quantity as frechet_distance, computed faster.

    Why not frechet_distance in the loop: scipy's sqrtm of a 2048² non-symmetric product takes seconds, times n_boot.
    Here tr((Σa Σb)^½) = Σ √λ(Σb^½ Σa Σb^½), and Σb^½ Σa Σb^½ = CᵀC/(N-1) with C = (a - ā) Σb^½, whose nonzero
    eigenvalues are those of the smaller of CᵀC and CCᵀ: one symmetric eigvalsh of size min(N, D).
    """
    centred = a - a.mean(axis=0)
    c = centred @ sigma_b_sqrt
    gram = (c @ c.T if len(c) < c.shape[1] else c.T @ c) / (len(a) - 1)
    trace_sqrt = np.sqrt(np.clip(np.linalg.eigvalsh(gram), 0, None)).sum()
    diff = a.mean(axis=0) - mu_b
    return float(diff @ diff + (centred**2).sum() / (len(a) - 1) + trace_b - 2 * trace_sqrt)


def fid_bootstrap_ci(a: np.ndarray, b: np.ndarray, n_boot: int = 200, seed: int = 0, level: float = 0.95,
                     estimate: float | None = None) -> tuple[float, float]:
    """Bias-corrected bootstrap interval of FID, resampling the generated set a with replacement; b is fixed.

    Only a's sampling noise is captured: the reference statistics are treated as given (they are cached and shared by
    every method of a suite). Resampling with replacement repeats rows, which shrinks the covariance's rank and pushes
    every resampled FID up (N=1000, D=2048 Gaussians: FID 1799, plain percentile interval [2135, 2162]); the interval
    is therefore shifted by that bootstrap bias (mean of the resamples − the estimate), so it brackets the estimate.
    `estimate`: fid_from_features(a, b), when the caller has it already.
    """
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    fixed = _fixed_stats(b)
    values = [_fid_to_fixed(a[rows], *fixed) for rows in bootstrap_indices(len(a), n_boot, seed)]
    tail = 100 * (1 - level) / 2
    bias = float(np.mean(values)) - (fid_from_features(a, b) if estimate is None else estimate)
    lo, hi = np.percentile(values, [tail, 100 - tail]) - bias
    return float(lo), float(hi)
