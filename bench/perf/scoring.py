"""Scoring throughput: images/s of each per-sample metric as bench.stages.score computes it.

Networks are built before timing (a bench run builds each once); each metric is warmed up on a few images, then
timed on all of them, repeated until steady (bench.perf.timing). Networks with random weights are named so: their numbers are speed only.
"""

from collections.abc import Callable

import torch

from bench.metrics.clip_score import ClipScorer
from bench.metrics.detectors import load_detector
from bench.metrics.features import random_inception_features, shapes_net_features
from bench.metrics.fidelity import edge_fidelity, edge_leakage, seg_scores
from bench.metrics.masked import load_lpips, masked_lpips, masked_psnr, masked_ssim
from bench.perf.timing import measure
from localctrl.data.conditions import canny
from localctrl.models.weights import SHAPES_NET_DIR
from localctrl.shapes.net import align_shapes, load_shapes_net
from localctrl.shapes.scene import SHAPES


def metric_functions(prompts: list[str]) -> dict[str, Callable]:
    """Metric name → f(images uint8, others uint8, masks, reference edges, row indices), as bench.stages.score.per_sample."""
    lpips_net, clip = load_lpips(random_weights=True), ClipScorer(random_weights=True)
    shapes_net = load_shapes_net(SHAPES_NET_DIR).eval()
    shapes_features, inception_random = shapes_net_features(shapes_net), random_inception_features()

    def edges(images, others, masks, reference, rows):
        detected = canny(images.float() / 255)
        edge_fidelity(detected, reference, masks)
        edge_leakage(detected, reference, 1 - masks)

    segment = load_detector("shapes-seg")

    def seg(images, others, masks, reference, rows):
        labels = segment(images).long()
        seg_scores(labels, labels.flip(0), masks, num_classes=1 + len(SHAPES))

    @torch.no_grad()
    def align(images, others, masks, reference, rows):
        align_shapes(shapes_net(images.float() / 255), [prompts[r] for r in rows])

    return {
        "edge fidelity (kornia canny; P/R/F1, edge SSIM, leakage)": edges,
        "masked SSIM (outside)": lambda images, others, masks, *_: masked_ssim(images / 255, others / 255, 1 - masks),
        "masked PSNR (outside)": lambda images, others, masks, *_: masked_psnr(images / 255, others / 255, 1 - masks),
        f"masked LPIPS ({lpips_net.name}, random weights)": lambda images, others, masks, *_: masked_lpips(
            images / 255, others / 255, 1 - masks, lpips_net),
        "seg (shapes-world segmenter; mIoU, pixel acc.)": seg,
        "align-shapes (shapes-net)": align,
        "FID-shapes features (shapes-net)": lambda images, *_: shapes_features(images),
        "FID features (random-inception, smoke only)": lambda images, *_: inception_random(images),
        f"CLIP score ({clip.name}, random weights)": lambda images, others, masks, reference, rows: clip.scores(
            images, [prompts[r] for r in rows]),
    }


def metric_throughput(images: torch.Tensor, masks: torch.Tensor, reference_edges: torch.Tensor, prompts: list[str],
                      **repeats) -> list[dict]:
    """images uint8 (N, 3, H, W); masks and reference edges (N, 1, H, W); one prompt per image. Rows: metric, images/s."""
    warmup = min(4, max(1, len(images) // 4))
    others = images.roll(1, dims=0)  # the "text-only" image each is compared with outside the mask
    rows = list(range(len(images)))
    results = []
    for name, function in metric_functions(prompts).items():
        timing = measure(lambda: function(images, others, masks, reference_edges, rows),
                         lambda: function(images[:warmup], others[:warmup], masks[:warmup], reference_edges[:warmup], rows[:warmup]),
                         **repeats)
        results.append({"metric": name, "images": len(images), **timing.summary(), "images_per_s": len(images) / timing.median})
    return results
