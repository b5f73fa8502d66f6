"""Metrics of the benchmark: set metrics (FID, KID, CLIP score), per-sample masked metrics and control fidelity, CIs.

Every network-backed metric takes its weights from disk only (bench.pretrained lists where) and raises
MetricUnavailable otherwise; stand-ins with random weights say so in their names.
"""

from bench.metrics.bootstrap import mean_ci, paired_diff_ci
from bench.metrics.clip_score import ClipScorer
from bench.metrics.errors import MetricUnavailable
from bench.metrics.features import FeatureExtractor, inception_features, random_inception_features, shapes_net_features
from bench.metrics.fidelity import align_scale_shift, depth_errors, edge_fidelity, edge_leakage, seg_scores
from bench.metrics.frechet import feature_stats, fid_bootstrap_ci, fid_from_features, kid_from_features
from bench.metrics.masked import PSNR_CAP_DB, exclude_band, load_lpips, masked_lpips, masked_psnr, masked_ssim
from bench.metrics.metric_objects import EdgeF1, MaskedPSNR, MaskedSSIM

__all__ = [
    "PSNR_CAP_DB", "ClipScorer", "EdgeF1", "FeatureExtractor", "MaskedPSNR", "MaskedSSIM", "MetricUnavailable",
    "align_scale_shift", "depth_errors", "edge_fidelity", "edge_leakage", "exclude_band", "feature_stats",
    "fid_bootstrap_ci", "fid_from_features", "inception_features", "kid_from_features", "load_lpips", "masked_lpips",
    "masked_psnr", "masked_ssim", "mean_ci", "paired_diff_ci", "random_inception_features", "seg_scores",
    "shapes_net_features",
]
