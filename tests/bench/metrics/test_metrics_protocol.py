"""ControlNet++'s protocol metrics against hand computations and the torchmetrics classes its code calls."""

import numpy as np
import pandas as pd
import pytest
import torch
from torchmetrics.classification import BinaryF1Score, MulticlassJaccardIndex
from torchmetrics.image import MultiScaleStructuralSimilarityIndexMeasure

from bench.metrics.frechet import fid_from_features
from bench.metrics.protocol import (
    dataset_class_areas,
    dataset_miou,
    dataset_miou_ci,
    edge_ms_ssim,
    pooled_edge_f1,
    whole_image_depth_rmse,
)
from bench.stages.score import aggregates
from bench.suite import load_suite


def test_edge_f1_pools_a_prompts_images_as_controlnetpp_flattens_them():
    condition = torch.zeros(2, 1, 4, 4)
    condition[:, 0, 1, :] = 1  # 4 edge pixels per image, 8 in all
    detected = torch.zeros(2, 1, 4, 4)
    detected[0, 0, 1, :3] = 1  # image 0: 3 hits
    detected[1, 0, 2, :] = 1  # image 1: 4 misses (one row off: 0 px tolerance) and 4 false alarms
    # pooled: TP 3, FP 4, FN 5 → F1 = 2·3 / (2·3 + 4 + 5) = 0.4; the mean of per-image F1s would be (6/7 + 0) / 2
    assert pooled_edge_f1(detected, condition) == pytest.approx(0.4)
    assert pooled_edge_f1(detected, condition) == pytest.approx(float(BinaryF1Score()(detected.flatten(), condition.flatten())))
    assert pooled_edge_f1(torch.zeros(1, 1, 4, 4), torch.zeros(1, 1, 4, 4)) == 0.0  # nothing on either side: torchmetrics' 0


def test_edge_ms_ssim_is_torchmetrics_per_image_and_nan_below_its_size():
    generator = torch.Generator().manual_seed(0)
    a, b = (torch.rand(3, 1, 192, 192, generator=generator) > 0.8).float(), (torch.rand(3, 1, 192, 192, generator=generator) > 0.8).float()
    b[0] = a[0]
    ours = edge_ms_ssim(a, b)
    assert ours[0] == pytest.approx(1.0)
    for k in range(3):
        assert float(ours[k]) == pytest.approx(float(MultiScaleStructuralSimilarityIndexMeasure(data_range=1.0)(a[k : k + 1], b[k : k + 1])), abs=1e-6)
    assert float(ours.mean()) == pytest.approx(float(MultiScaleStructuralSimilarityIndexMeasure(data_range=1.0)(a, b)), abs=1e-6)
    assert torch.isnan(edge_ms_ssim(a[:, :, :64, :64], b[:, :, :64, :64])).all()


def test_fid_seed_mean_is_each_groups_fid_averaged():
    suite = load_suite("controlnetpp-canny-sd15")
    rng = np.random.default_rng(0)
    reference = rng.normal(size=(40, 3))
    seeds = [0, 1, 2, 3] * 10
    generated = rng.normal(size=(40, 3)) + 0.5 * np.array(seeds)[:, None]  # each seed group shifted by its own amount
    scorers = type("Scorers", (), {"fid_name": "inception", "key": staticmethod(lambda metric, name: metric)})()
    frame = pd.DataFrame({"item_id": [f"i{k // 4}" for k in range(40)], "seed": seeds, "key": [str(k) for k in range(40)]})
    result = aggregates(frame, generated, reference, suite, scorers, seeds=seeds)
    by_group = [fid_from_features(generated[np.array(seeds) == s], reference) for s in range(4)]
    assert result["fid"] == pytest.approx(np.mean(by_group)) and np.isnan(result["fid_ci_lo"])
    assert result["fid"] != pytest.approx(fid_from_features(generated, reference))  # not the pooled FID


def test_whole_image_depth_rmse_normalises_the_label_as_controlnetpp_does():
    label = torch.linspace(10, 60, 16).reshape(1, 1, 4, 4)  # a dataset map spanning 10-60, stretched to 0-255 first
    stretched = (label - 10) / 50 * 255
    assert whole_image_depth_rmse(stretched, label)[0] == pytest.approx(0.0, abs=1e-5)
    assert whole_image_depth_rmse(stretched + 12.0, label)[0] == pytest.approx(12.0)
    assert whole_image_depth_rmse(torch.zeros(1, 1, 4, 4), label)[0] == pytest.approx(float((stretched**2).mean().sqrt()))


def test_dataset_miou_sums_areas_over_images_before_dividing_as_mmseg_does():
    # image 0: class 0 everywhere in the label, predicted right on 3 of 4 pixels (the 4th as class 1);
    # image 1: class 1 on 2 pixels (both right), 2 pixels unlabelled (predicted 0: left out).
    labels = torch.tensor([[[[0, 0], [0, 0]]], [[[1, 1], [255, 255]]]])
    predicted = torch.tensor([[[[0, 0], [0, 1]]], [[[1, 1], [0, 0]]]])
    intersection, union = dataset_class_areas(predicted, labels, classes=3)
    assert intersection.tolist() == [3, 2, 0] and union.tolist() == [4, 3, 0]  # class 2: in neither, left out
    assert dataset_miou(intersection, union) == pytest.approx((3 / 4 + 2 / 3) / 2)
    # not the mean of per-image mIoUs: image 0 alone is (3/4 + 0/1) / 2, image 1 alone 2/2
    assert dataset_miou(intersection, union) != pytest.approx(((3 / 4 + 0) / 2 + 1) / 2)


def test_dataset_miou_is_torchmetrics_macro_jaccard_when_every_class_occurs():
    generator = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 5, (6, 1, 16, 16), generator=generator)
    labels[:, :, :2] = 255  # unlabelled rows
    predicted = torch.where(torch.rand(6, 1, 16, 16, generator=generator) < 0.6, labels.clamp(max=4),
                            torch.randint(0, 5, (6, 1, 16, 16), generator=generator))
    ours = dataset_miou(*dataset_class_areas(predicted, labels, classes=5))
    jaccard = MulticlassJaccardIndex(num_classes=5, average="macro", ignore_index=255)
    for k in range(6):  # one image at a time: torchmetrics sums its confusion matrix over updates, as mmseg does
        jaccard.update(predicted[k], labels[k])
    assert ours == pytest.approx(float(jaccard.compute()), abs=1e-6)


def test_dataset_miou_interval_resamples_prompts_and_brackets_the_estimate():
    rng = np.random.default_rng(0)
    intersections = rng.integers(0, 50, size=(30, 4)).astype(float)
    unions = intersections + rng.integers(1, 50, size=(30, 4))
    estimate, lo, hi = dataset_miou_ci(intersections, unions, n_boot=200, seed=0)
    assert estimate == pytest.approx(float(np.mean(intersections.sum(0) / unions.sum(0))))
    assert lo < estimate < hi and (lo, hi) == dataset_miou_ci(intersections, unions, n_boot=200, seed=0)[1:]
    assert np.isnan(dataset_miou_ci(intersections[:1], unions[:1])[1])  # one prompt: no interval
