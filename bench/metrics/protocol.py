"""ControlNet++'s evaluation metrics, as its code computes them (liming-ai/ControlNet_Plus_Plus, eval/eval_edge.py),
for suites with `protocol: controlnetpp`. They differ from localctrl's own in-mask metrics, which stay beside them:

- edge F1: torchmetrics `BinaryF1Score` over the whole image at 0 px tolerance, the condition's edges against the
  edges detected in the generated image, on a prompt's images pooled (its code flattens the 4 group images of a
  prompt into one call), then averaged over prompts;
- the column its tables call "SSIM" is torchmetrics `MultiScaleStructuralSimilarityIndexMeasure(data_range=1.0)` of
  the two edge maps, per image. It needs images larger than 160 px (five scales of an 11 px window); smaller ones
  (the tiny stack, the shapes world) get NaN;
- depth RMSE (eval/eval_depth.py): over the whole image, the prediction scaled by its maximum (as bench's detect
  stage stores it) against the condition min-max normalised to 0-255, per image, averaged;
- ADE20K mIoU (eval/eval_ade20k.sh, mmseg's IoUMetric): the segmenter's labels against the dataset's over every
  generated image at once (a prompt's 4 images all count), unlabelled pixels left out: per class, the pixels both
  give it over the pixels either does, summed over the dataset; mIoU is the mean over the classes that occur in
  either (mmseg's nanmean); the interval resamples prompts;
- FID: each seed group's FID against the real images, averaged over the groups (bench.stages.score).
"""

import numpy as np
import torch
from torch import Tensor

from bench.metrics.bootstrap import bootstrap_indices
from bench.metrics.fidelity import class_areas, depth_rmse
from localctrl.data.conditions import IGNORE_LABEL

MS_SSIM_MIN_SIZE = 161  # (window 11 - 1) · 2^(5 scales - 1) must be smaller than the image


def pooled_edge_f1(detected: Tensor, condition: Tensor) -> float:
    """F1 of a prompt's edge maps (k, 1, H, W) in {0, 1}, all its images' pixels pooled (0 when neither has an edge)."""
    from torchmetrics.functional.classification import binary_f1_score  # lazily: torchmetrics takes a second to import

    return float(binary_f1_score(detected.flatten(), condition.flatten().long()))


def edge_ms_ssim(detected: Tensor, condition: Tensor) -> Tensor:
    """Per image (N,): MS-SSIM of the edge maps (N, 1, H, W) in [0, 1]; NaN for images too small for five scales."""
    if min(detected.shape[-2:]) < MS_SSIM_MIN_SIZE:
        return torch.full((len(detected),), float("nan"), dtype=torch.float64)
    from torchmetrics.functional.image import multiscale_structural_similarity_index_measure  # lazily, as above

    return multiscale_structural_similarity_index_measure(detected.float(), condition.float(), data_range=1.0,
                                                          reduction="none").double()


def whole_image_depth_rmse(predicted: Tensor, condition: Tensor) -> Tensor:
    """Per image (N,): RMSE of max-scaled predictions (N, 1, H, W) in 0-255 against the condition's depth maps
    (N, 1, H, W), each min-max normalised to 0-255 first, as ControlNet++ normalises its labels."""
    flat = condition.double().flatten(1)
    low, high = flat.amin(dim=1)[:, None, None, None], flat.amax(dim=1)[:, None, None, None]
    label = (condition.double() - low) / (high - low).clamp(min=1e-12) * 255
    return depth_rmse(predicted, label, torch.ones_like(label))


def dataset_class_areas(predicted: Tensor, labels: Tensor, classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Per class (classes,): intersection and union (bench.metrics.fidelity.class_areas) over all pixels of label maps
    (N, 1, H, W) at once, IGNORE_LABEL pixels of the labels left out."""
    keep = labels != IGNORE_LABEL
    intersection, union = class_areas(predicted[keep].long(), labels[keep].long(), classes)
    return intersection.numpy(), union.numpy()


def dataset_miou(intersections: np.ndarray, unions: np.ndarray) -> float:
    """mIoU of summed areas (…, classes): classes no image and no prediction has (union 0) are left out."""
    intersection, union = intersections.reshape(-1, intersections.shape[-1]).sum(0), unions.reshape(-1, unions.shape[-1]).sum(0)
    present = union > 0
    return float((intersection[present] / union[present]).mean()) if present.any() else float("nan")


def dataset_miou_ci(intersections: np.ndarray, unions: np.ndarray, n_boot: int = 200, seed: int = 0,
                    level: float = 0.95) -> tuple[float, float, float]:
    """(mIoU, lo, hi) of per-prompt areas (prompts, classes): the percentile interval over resampled prompts."""
    estimate = dataset_miou(intersections, unions)
    if len(intersections) < 2:
        return estimate, float("nan"), float("nan")
    values = [dataset_miou(intersections[rows], unions[rows]) for rows in bootstrap_indices(len(intersections), n_boot, seed)]
    tail = 100 * (1 - level) / 2
    lo, hi = np.nanpercentile(values, [tail, 100 - tail])
    return estimate, float(lo), float(hi)
