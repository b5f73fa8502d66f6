"""Depth and seg in the bench: detectors cached like edges, known answers through storage, reruns from the cache."""

from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from bench.metrics.detectors import DETECTORS, load_detector
from bench.metrics.fidelity import depth_errors, depth_leakage, depth_rmse, depth_rmse_max_scaled, seg_scores
from bench.run import BenchOptions, run_bench
from bench.stages.detect import read_back, stored
from bench.suite import read_suite
from localctrl.shapes.render import render
from localctrl.shapes.scene import split_scenes

METHODS = {"text-only": {"kind": "text-only"}, "random-masked": {"kind": "adapter", "weights": "random"},
           "trained-masked": {"kind": "adapter", "train": {"z0.weight": 1.0e-3}}}


def suite_file(folder: Path, name: str, **changes) -> str:
    data = read_suite("smoke") | {"name": name, "methods": METHODS} | changes
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return str(path)


def test_the_world_readers_score_real_renders_perfectly_through_the_detection_cache_format():
    rendered = [render(scene, 64) for _, scene in split_scenes(0, "test", 8)]
    images = torch.from_numpy(np.stack([r.image for r in rendered])).permute(0, 3, 1, 2).contiguous()
    depth = torch.from_numpy(np.stack([r.depth for r in rendered])).float()[:, None]
    labels = torch.from_numpy(np.stack([r.semantic for r in rendered])).long()[:, None]
    read_depth = torch.stack([read_back("depth", a) for a in stored("shapes-depth", load_detector("shapes-depth")(images))])
    read_labels = torch.stack([read_back("labels", a) for a in stored("shapes-seg", load_detector("shapes-seg")(images))]).long()
    mask = torch.zeros(8, 1, 64, 64)
    mask[..., 16:48, 16:48] = 1
    # The world's reader is absolute (0-255 disparity), stored as it is: RMSE 0, nothing misread.
    assert torch.equal(read_depth, depth) and torch.equal(read_labels, labels)
    assert torch.equal(depth_rmse(read_depth, depth, mask), torch.zeros(8))
    assert depth_errors(read_depth, depth, mask)["rmse"].max() < 1e-4
    assert torch.allclose(depth_leakage(read_depth, depth, 1 - mask), torch.ones(8))  # an image that copies leaks everything
    assert torch.equal(seg_scores(read_labels, labels, mask, num_classes=4)["pixel_acc"], torch.ones(8))


def test_a_relative_detectors_depth_is_stored_max_scaled_so_the_bench_rmse_is_controlnetpps():
    prediction = torch.linspace(0.5, 37.0, 2 * 64 * 64).reshape(2, 1, 64, 64) ** 1.5  # relative inverse depth, any unit
    back = torch.stack([read_back("depth", array) for array in stored("dpt-large", prediction)])
    assert back.flatten(1).amax(dim=1).tolist() == [255, 255]
    target, region = torch.rand(2, 1, 64, 64) * 255, (torch.rand(2, 1, 64, 64) > 0.5).float()
    assert torch.allclose(depth_rmse(back, target, region), depth_rmse_max_scaled(prediction, target, region), atol=1e-2)


@pytest.mark.parametrize("condition, metric, detector", [("depth", "depth_rmse_in", "shapes-depth"), ("seg", "seg_miou_in", "shapes-seg")])
def test_a_depth_or_seg_suite_trains_measures_and_reruns_from_the_cache(tmp_path, unet_calls, condition, metric, detector):
    metrics = read_suite("smoke")["metrics"] | {"depth": {"detector": "shapes-depth"} if condition == "depth" else None,
                                                "seg": {"detector": "shapes-seg"} if condition == "seg" else None}
    suite = suite_file(tmp_path, f"smoke-{condition}", condition=condition, metrics=metrics)
    options = BenchOptions(out=tmp_path / "out", cache=tmp_path / "cache")
    first = run_bench(suite, options)
    assert first.counts == {"items": 4, "images": 12, "cached": 0, "generated": 12, "trained": 1}
    leakage = {"depth": "depth_leakage_out", "seg": "seg_leakage_out"}[condition]
    assert {metric, leakage, "edge_f1_in"} <= set(first.results["trained-masked"])
    if condition == "depth":
        assert {"depth_rmse_aligned_in", "depth_absrel_in"} <= set(first.results["text-only"])
    assert len(list((tmp_path / "out" / "detected" / DETECTORS[detector].folder(detector)).glob("*.png"))) == 12
    unet_calls.clear()
    second = run_bench(suite, options)
    assert len(unet_calls) == 0 and second.counts["cached"] == 12 and second.counts["trained"] == 0
    assert second.results == first.results and second.run_id == first.run_id
