"""Control fidelity per sample: how well the detector's reading of a generated image matches the condition in a region.

Measured inside the mask M (fidelity, `_in`) and outside it (`_out`: leakage, the same comparison where control
should not reach). Every function takes a region (N, 1, H, W) in {0, 1} and returns (N,) tensors, NaN where a
value is undefined for a sample (an empty region).
"""

import torch
from torch import Tensor

from bench.metrics.masked import masked_ssim
from localctrl.data.conditions import IGNORE_LABEL
from localctrl.validation import dilate, edge_scores


def edge_fidelity(detected: Tensor, reference: Tensor, region: Tensor, tolerance: int = 1) -> dict[str, Tensor]:
    """Edge maps (N, 1, H, W) in {0, 1}: precision, recall, F1 (a match may be `tolerance` px off), density, edge_ssim.

    Follows localctrl.validation: an empty set scores 1 (nothing missed / nothing wrong), so with no condition
    edges and no detected edges in the region F1 is 1. That is right for fidelity and wrong for leakage: outside the
    mask use `edge_leakage`. edge_ssim is the masked SSIM of the two maps as 1-channel images.
    """
    scores = edge_scores(detected, reference, region, tolerance)
    return {"precision": scores.precision, "recall": scores.recall, "f1": scores.f1, "density": scores.density,
            "edge_ssim": masked_ssim(detected.float(), reference.float(), region)}


def edge_leakage(detected: Tensor, condition: Tensor, outside: Tensor, tolerance: int = 1) -> Tensor:
    """Leakage: the fraction of the condition's edges in `outside` (normally 1 - M) that the image reproduces.

    This is recall measured outside the mask, with one change: where the condition has no edges outside, nothing can
    leak and the value is 0 (edge_scores would say 1). 0 = no control spilled; 1 = every condition edge outside M is
    in the image (within `tolerance` px). An image dense with its own edges also hits condition edges by chance, so
    read it beside edge density outside and against the text-only method, which gives the chance level.
    """
    condition, outside = condition.float() * outside.float(), outside.float()
    n_condition = condition.sum(dim=(1, 2, 3))
    found = (condition * dilate(detected.float() * outside, tolerance)).sum(dim=(1, 2, 3))
    return torch.where(n_condition > 0, found / n_condition.clamp(min=1), torch.zeros_like(n_condition))


def align_scale_shift(pred: Tensor, target: Tensor, region: Tensor) -> tuple[Tensor, Tensor]:
    """Per sample (s, t), each (N,), minimising Σ_region (s·pred + t - target)²: depth is only known up to an affine map.

    Hand-written because it is the closed form of a 2-parameter least-squares fit (MiDaS's compute_scale_and_shift):
    s = cov(pred, target) / var(pred), t = mean(target) - s·mean(pred), over the region. A constant prediction gives s = 0.
    """
    pred, target, w = pred.double().flatten(1), target.double().flatten(1), region.double().flatten(1)
    n = w.sum(dim=1)
    mean_pred, mean_target = (w * pred).sum(1) / n, (w * target).sum(1) / n
    centred = pred - mean_pred[:, None]
    var = (w * centred**2).sum(1)
    cov = (w * centred * (target - mean_target[:, None])).sum(1)
    scale = torch.where(var > 1e-12, cov / var.clamp(min=1e-12), torch.zeros_like(var))
    return scale, mean_target - scale * mean_pred


def depth_errors(pred: Tensor, target: Tensor, region: Tensor) -> dict[str, Tensor]:
    """RMSE and AbsRel inside the region after aligning pred to target (align_scale_shift); maps (N, 1, H, W).

    AbsRel = mean |aligned - target| / target over region pixels with target > 0: a MiDaS-style map (nearer is
    brighter, the shapes world's background is 0) has no finite relative error where the target is 0.
    """
    scale, shift = align_scale_shift(pred, target, region)
    aligned = scale[:, None, None, None] * pred.double() + shift[:, None, None, None]
    target, region = target.double(), region.double()
    error = aligned - target
    rmse = ((error**2 * region).sum(dim=(1, 2, 3)) / region.sum(dim=(1, 2, 3))).sqrt()
    positive = region * (target > 0)
    relative = (error.abs() / target.clamp(min=1e-12) * positive).sum(dim=(1, 2, 3)) / positive.sum(dim=(1, 2, 3))
    return {"rmse": rmse.float(), "absrel": relative.float()}


def depth_rmse(pred: Tensor, target: Tensor, region: Tensor) -> Tensor:
    """Per-sample RMSE over the region of two depth maps (N, 1, H, W) in the same units, no alignment."""
    error = (pred.double() - target.double()) ** 2 * region.double()
    return (error.sum(dim=(1, 2, 3)) / region.double().sum(dim=(1, 2, 3))).sqrt().float()


def scaled_by_max(pred: Tensor) -> Tensor:
    """Depth maps (N, 1, H, W) in a detector's own units scaled to 0-255 by each map's maximum, as ControlNet++ does."""
    peak = pred.double().flatten(1).amax(dim=1).clamp(min=1e-12)[:, None, None, None]
    return pred.double() * 255 / peak


def depth_rmse_max_scaled(pred: Tensor, target: Tensor, region: Tensor) -> Tensor:
    """ControlNet++'s depth RMSE, per sample, over the region: the prediction scaled to 0-255 by its own maximum over
    the whole image (`pred * 255 / pred.max()`), against the condition map in 0-255, no alignment.

    As ControlNet++'s evaluation (and ControlAR's `evaluations/depth_rmse.py`) computes it with the whole image as the
    region; maps (N, 1, H, W), pred in the detector's units (DPT: relative inverse depth, nearer is larger).
    """
    return depth_rmse(scaled_by_max(pred), target, region)


def depth_leakage(pred: Tensor, condition: Tensor, outside: Tensor) -> Tensor:
    """How much of the condition's depth structure outside the mask the image reproduces: the fraction of the
    condition's variance there that the best affine map of the predicted depth explains (R² of align_scale_shift,
    clipped to [0, 1]); 0 where the condition is flat outside (nothing to leak). Read against text-only (chance)."""
    scale, shift = align_scale_shift(pred, condition, outside)
    aligned = scale[:, None, None, None] * pred.double() + shift[:, None, None, None]
    target, w = condition.double(), outside.double()
    n = w.sum(dim=(1, 2, 3)).clamp(min=1)
    mean = (w * target).sum(dim=(1, 2, 3)) / n
    total = (w * (target - mean[:, None, None, None]) ** 2).sum(dim=(1, 2, 3))
    residual = (w * (aligned - target) ** 2).sum(dim=(1, 2, 3))
    explained = (1 - residual / total.clamp(min=1e-12)).clamp(0, 1)
    return torch.where(total > 1e-12, explained, torch.zeros_like(explained)).float()


def seg_leakage(pred_labels: Tensor, condition_labels: Tensor, outside: Tensor, background: int = 0) -> Tensor:
    """The fraction of the condition's labelled (non-`background`) pixels outside the mask whose label the image
    reproduces: seg's analogue of edge_leakage (recall outside), 0 where the condition labels nothing outside.
    Unlabelled pixels (IGNORE_LABEL) are not labelled."""
    pred, condition = pred_labels.long().flatten(1), condition_labels.long().flatten(1)
    labelled = (outside.flatten(1) > 0) & (condition != background) & (condition != IGNORE_LABEL)
    found = (labelled & (pred == condition)).sum(dim=1).double()
    count = labelled.sum(dim=1).double()
    return torch.where(count > 0, found / count.clamp(min=1), torch.zeros_like(count)).float()


def class_areas(pred: Tensor, target: Tensor, num_classes: int) -> tuple[Tensor, Tensor]:
    """Per class (num_classes,) of flat label vectors: pixels both give the class (intersection) and either does
    (union), as mmseg's intersect_and_union counts them."""
    intersection = torch.bincount(target[pred == target], minlength=num_classes)[:num_classes]
    union = (torch.bincount(pred, minlength=num_classes)[:num_classes] + torch.bincount(target, minlength=num_classes)[:num_classes]
             - intersection)
    return intersection.double(), union.double()


def seg_scores(pred_labels: Tensor, target_labels: Tensor, region: Tensor, num_classes: int,
               ignore_index: int | None = None) -> dict[str, Tensor]:
    """Label maps (N, H, W) or (N, 1, H, W): mIoU and pixel accuracy inside the region, per sample.

    mIoU averages IoU over the classes present in the target or the prediction inside the region (a class absent from
    both says nothing); pixels whose target is `ignore_index` are left out of both. Hand-written with bincount because
    torchmetrics' segmentation metrics neither take a region nor average per sample over the classes present.
    """
    pred, target = pred_labels.long().flatten(1), target_labels.long().flatten(1)
    for name, labels in (("pred_labels", pred), ("target_labels", target)):
        outside = (labels < 0) | (labels >= num_classes)
        if ignore_index is not None and name == "target_labels":
            outside &= labels != ignore_index
        if outside.any():
            raise ValueError(f"{name} holds labels outside 0..{num_classes - 1}: {sorted(labels[outside].unique().tolist())[:5]}")
    valid = region.flatten(1) > 0
    if ignore_index is not None:
        valid &= target != ignore_index
    miou, accuracy = [], []
    for p, t, v in zip(pred, target, valid):
        p, t = p[v], t[v]
        intersection, union = class_areas(p, t, num_classes)
        present = union > 0
        miou.append((intersection[present] / union[present]).mean() if present.any() else torch.tensor(float("nan")))
        accuracy.append(intersection.sum() / len(t) if len(t) else torch.tensor(float("nan")))
    return {"miou": torch.stack(miou).float(), "pixel_acc": torch.stack(accuracy).float()}
