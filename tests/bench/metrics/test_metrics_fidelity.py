"""Control fidelity: edge scores and leakage, depth alignment and errors, segmentation mIoU — hand-computed answers."""

import math

import pytest
import torch

from bench.metrics.fidelity import (
    align_scale_shift,
    depth_errors,
    depth_leakage,
    depth_rmse_max_scaled,
    edge_fidelity,
    edge_leakage,
    seg_leakage,
    seg_scores,
)
from localctrl.validation import edge_scores


def square_outline(size=16, lo=4, hi=11):
    edges = torch.zeros(1, 1, size, size)
    edges[..., lo, lo : hi + 1] = edges[..., hi, lo : hi + 1] = edges[..., lo : hi + 1, lo] = edges[..., lo : hi + 1, hi] = 1
    return edges


def test_edge_fidelity_returns_edge_scores_and_edge_ssim():
    reference = square_outline()
    detected = torch.roll(reference, 1, dims=3)  # 1 px off: all within tolerance 1; at 0 only the rows' 14-px overlap
    region = torch.ones_like(reference)
    scores = edge_fidelity(detected, reference, region, tolerance=1)
    expected = edge_scores(detected, reference, region, 1)
    for key in ("precision", "recall", "f1", "density"):
        torch.testing.assert_close(scores[key], getattr(expected, key))
    assert scores["f1"].item() == 1.0 and edge_fidelity(detected, reference, region, tolerance=0)["f1"].item() == 0.5
    assert scores["density"].item() == pytest.approx(28 / 256)
    assert edge_fidelity(reference, reference, region)["edge_ssim"].item() == pytest.approx(1.0, abs=1e-6)
    assert scores["edge_ssim"].item() < 0.9


def test_leakage_is_zero_when_nothing_of_the_condition_lies_outside():
    condition = square_outline()
    mask = torch.zeros_like(condition)
    mask[..., 2:14, 2:14] = 1  # the square lies inside the mask
    detected = condition.clone()  # the image follows the condition inside, and has no edges outside
    assert edge_leakage(detected, condition, 1 - mask).item() == 0.0
    # with no condition edges outside, even an image full of its own edges outside does not leak
    busy = torch.ones_like(condition)
    assert edge_leakage(busy, condition, 1 - mask).item() == 0.0
    # where edge_scores (fidelity's convention) would report F1 = 1 for the empty / empty case
    assert edge_fidelity(detected, condition, 1 - mask)["f1"].item() == 1.0


def test_leakage_is_the_fraction_of_outside_condition_edges_reproduced():
    condition = square_outline()
    mask = torch.zeros_like(condition)
    mask[..., :, :8] = 1  # the left half of the square (columns 4..7) is inside, the right half (8..11) outside
    outside = 1 - mask
    n_outside = int((condition * outside).sum())  # 4 + 4 on the top and bottom rows, 6 more on the right column
    assert n_outside == 14
    right_column = torch.zeros_like(condition)
    right_column[..., 4:12, 11] = 1
    assert edge_leakage(right_column, condition, outside, tolerance=0).item() == pytest.approx(8 / 14)
    assert edge_leakage(condition, condition, outside).item() == 1.0
    # detected edges inside the mask do not count as leakage, even within tolerance of an outside condition edge
    assert edge_leakage(condition * mask, condition, outside, tolerance=0).item() == 0.0


def test_align_scale_shift_recovers_a_known_affine_map_inside_the_region():
    generator = torch.Generator().manual_seed(0)
    pred = torch.rand(2, 1, 8, 8, generator=generator)
    target = torch.stack([3.0 * pred[0] + 0.5, -0.25 * pred[1] + 2.0])
    region = torch.ones_like(pred)
    region[..., :, 6:] = 0
    target[..., :, 6:] = 100.0  # outside the region: must not influence the fit
    scale, shift = align_scale_shift(pred, target, region)
    torch.testing.assert_close(scale, torch.tensor([3.0, -0.25], dtype=torch.float64))
    torch.testing.assert_close(shift, torch.tensor([0.5, 2.0], dtype=torch.float64))
    errors = depth_errors(pred, target, region)
    assert errors["rmse"].abs().max() < 1e-6 and errors["absrel"].abs().max() < 1e-6


def test_depth_errors_known_values_and_zero_targets_skipped_by_absrel():
    pred = torch.tensor([0.0, 0.0, 1.0, 1.0]).reshape(1, 1, 2, 2)  # fit: mean target per pred value
    target = torch.tensor([0.0, 2.0, 4.0, 4.0]).reshape(1, 1, 2, 2)  # s = 3, t = 1; residuals -1, 1, 0, 0
    errors = depth_errors(pred, target, torch.ones_like(pred))
    assert errors["rmse"].item() == pytest.approx(math.sqrt(0.5))
    assert errors["absrel"].item() == pytest.approx((1 / 2 + 0 + 0) / 3)  # the target-0 pixel has no relative error
    constant = depth_errors(torch.ones_like(pred), target, torch.ones_like(pred))  # no information: predicts the mean
    assert constant["rmse"].item() == pytest.approx(target.std(unbiased=False).item())


def test_depth_rmse_scales_the_prediction_by_its_own_max_as_controlnetpp_does():
    pred = torch.tensor([1.0, 2.0, 4.0, 0.0]).reshape(1, 1, 2, 2)  # scaled: 63.75, 127.5, 255, 0
    target = torch.tensor([63.75, 127.5, 255.0, 0.0]).reshape(1, 1, 2, 2)
    everywhere = torch.ones_like(pred)
    assert depth_rmse_max_scaled(pred, target, everywhere).item() == pytest.approx(0.0, abs=1e-6)
    assert depth_rmse_max_scaled(10 * pred, target, everywhere).item() == pytest.approx(0.0, abs=1e-6)  # any unit
    shifted = target + torch.tensor([10.0, 0.0, 0.0, -20.0]).reshape(1, 1, 2, 2)
    assert depth_rmse_max_scaled(pred, shifted, everywhere).item() == pytest.approx(math.sqrt((100 + 400) / 4))
    corner = torch.tensor([1.0, 0.0, 0.0, 0.0]).reshape(1, 1, 2, 2)  # the region picks pixels; the max stays global
    assert depth_rmse_max_scaled(pred, shifted, corner).item() == pytest.approx(10.0)


def test_depth_leakage_is_one_for_an_affine_copy_zero_for_nothing_and_for_a_flat_condition():
    condition = torch.arange(16.0).reshape(1, 1, 4, 4)
    outside = torch.ones_like(condition)
    assert depth_leakage(3 * condition + 7, condition, outside).item() == pytest.approx(1.0)  # depth up to an affine map
    assert depth_leakage(torch.ones_like(condition), condition, outside).item() == pytest.approx(0.0)
    assert depth_leakage(condition, torch.full_like(condition, 5.0), outside).item() == 0.0  # nothing to leak
    half = condition.clone()
    half[..., :2, :] = 0  # a prediction that copies half the rows: R² by hand
    residual_fit = depth_leakage(half, condition, outside).item()
    scale, shift = align_scale_shift(half, condition, outside)
    fitted = scale * half + shift
    expected = 1 - ((fitted - condition) ** 2).sum() / ((condition - condition.mean()) ** 2).sum()
    assert residual_fit == pytest.approx(expected.item(), rel=1e-5) and 0 < residual_fit < 1


def test_seg_leakage_counts_reproduced_labelled_pixels_outside_only():
    condition = torch.tensor([[0, 1, 1, 2]])[:, None, None, :]  # (1, 1, 1, 4): background, two 1s, one 2
    outside = torch.tensor([[1, 1, 1, 0]])[:, None, None, :]  # the last pixel is inside the mask
    pred = torch.tensor([[3, 1, 0, 2]])[:, None, None, :]  # one of the two labelled outside pixels reproduced
    assert seg_leakage(pred, condition, outside).item() == pytest.approx(0.5)
    assert seg_leakage(condition, condition, outside).item() == pytest.approx(1.0)
    assert seg_leakage(pred, torch.zeros_like(condition), outside).item() == 0.0  # nothing labelled outside
    unlabelled = torch.tensor([[255, 1, 1, 2]])[:, None, None, :]  # ADE20K's "other" (IGNORE_LABEL) is not labelled
    assert seg_leakage(pred, unlabelled, outside, background=-1).item() == pytest.approx(0.5)


def test_seg_scores_on_hand_built_label_maps():
    target = torch.tensor([[0, 0, 1, 1],
                           [0, 0, 1, 1],
                           [2, 2, 2, 2],
                           [2, 2, 2, 2]])[None]  # fmt: skip
    pred = torch.tensor([[0, 0, 1, 1],
                         [0, 1, 1, 1],
                         [2, 2, 2, 0],
                         [3, 3, 3, 3]])[None]  # fmt: skip
    region = torch.ones(1, 1, 4, 4)
    # IoU: class 0: 3 / (4 + 4 - 3) = 3/5; class 1: 4 / (4 + 5 - 4) = 4/5; class 2: 3 / 8; class 3: 0 / 4
    scores = seg_scores(pred, target, region, num_classes=5)
    assert scores["miou"].item() == pytest.approx((3 / 5 + 4 / 5 + 3 / 8 + 0) / 4)  # class 4, absent from both, not averaged
    assert scores["pixel_acc"].item() == pytest.approx(10 / 16)
    top = torch.zeros_like(region)
    top[..., :2, :] = 1  # rows 0-1 only: class 0 IoU 3/4, class 1 IoU 4/5
    in_top = seg_scores(pred, target, top, num_classes=5)
    assert in_top["miou"].item() == pytest.approx((3 / 4 + 4 / 5) / 2) and in_top["pixel_acc"].item() == pytest.approx(7 / 8)
    ignored = seg_scores(pred, target, region, num_classes=5, ignore_index=2)  # rows 2-3 left out: as the top region
    torch.testing.assert_close(ignored["miou"], in_top["miou"])
    assert torch.isnan(seg_scores(pred, target, torch.zeros_like(region), num_classes=5)["miou"]).all()
