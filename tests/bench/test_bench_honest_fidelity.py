"""Honest in-mask fidelity: masks drawn to hold the condition's structure, and no "perfect" score where a mask holds none."""

from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml

from bench.run import BenchOptions, run_bench
from bench.stages.generate import request
from bench.stages.items import ItemTensors
from bench.stages.methods import Method
from bench.suite import MethodSpec, load_suite, read_suite
from localctrl.data.conditions import canny
from localctrl.local_adapter import LocalAdapter
from localctrl.models.adapters import build_adapter
from localctrl.models.architectures import TINY
from localctrl.shapes.render import render
from localctrl.shapes.scene import WorldConfig, sample_scene

METHODS = {"text-only": {"kind": "text-only"}, "random-masked": {"kind": "adapter", "weights": "random"}}


def run(folder: Path, name: str, masks: dict) -> pd.DataFrame:
    data = read_suite("smoke") | {"name": name, "methods": METHODS, "data": {"source": "shapes", "split": "test", "items": 12},
                                  "masks": {"kind": "box", "seed": 0, **masks}}
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    result = run_bench(str(path), BenchOptions(out=folder / name, cache=folder / "cache"))
    frame = pd.read_parquet(next((folder / name / "scores").glob("random-masked-*.parquet")))
    return frame, result.results["random-masked"]


def test_a_mask_without_structure_has_no_in_mask_fidelity_and_is_counted(tmp_path):
    frame, aggregates = run(tmp_path, "tiny-boxes", {"min_area": 0.03, "max_area": 0.05, "min_structure": 0.0})
    empty = frame["structure_in"] == 0
    assert 0 < empty.sum() < len(frame)  # small random boxes: some miss every object
    fidelity = [c for c in frame.columns if c.startswith(("edge_", "seg_")) and c.endswith("_in")]
    assert {"edge_f1_in", "edge_precision_in", "seg_miou_in", "seg_acc_in"} <= set(fidelity)
    assert frame.loc[empty, fidelity].isna().all().all()  # not F1 = 1 for "nothing there, nothing drawn"
    assert frame.loc[~empty, fidelity].notna().all().all()
    assert frame.loc[empty, ["ssim_out", "edge_leakage_out", "mask_area"]].notna().all().all()  # outside is still measured
    assert aggregates["unmeasured_in"] == empty.sum()
    assert aggregates["edge_f1_in"] == pytest.approx(frame.loc[~empty, "edge_f1_in"].mean())
    assert frame["mask_area"].between(0.03, 0.05 + 1e-9).all()


def test_boxes_are_drawn_to_hold_a_share_of_the_structure(tmp_path):
    frame, aggregates = run(tmp_path, "holding", {"min_area": 0.1, "max_area": 0.5, "min_structure": 0.25})
    blank = frame["structure_in"] == 0
    assert (frame.loc[~blank, "structure_in"] >= 0.25).all() and aggregates["unmeasured_in"] == blank.sum() <= 1
    for item_id in frame.loc[blank, "item_id"]:  # only a scene whose condition is blank: Canny finds no edge in it
        scene = sample_scene(0, int(item_id.removeprefix("scene-")), WorldConfig(size=64))
        image = torch.from_numpy(render(scene, 64).image).permute(2, 0, 1)[None].float() / 255
        assert canny(image).sum() == 0, scene.caption


def item_row(mask: torch.Tensor) -> ItemTensors:
    condition = torch.ones(1, 1, 8, 8)
    return ItemTensors([0], ["a red circle"], condition, mask, condition, None, None, condition)


@pytest.mark.parametrize("local", ["mask-features", "zero-condition", "blend-latents"])
def test_each_local_mode_hands_the_sampler_what_it_says(local):
    spec = MethodSpec(kind="adapter", weights="random", local=local)
    adapter = LocalAdapter(build_adapter(TINY, "full", in_channels=1, seed=0))
    mask = torch.zeros(1, 1, 8, 8)
    mask[..., :4] = 1
    got = request(type("Task", (), {"seed": 3})(), item_row(mask), 0, Method("m", spec, adapter, "key"))
    if local == "mask-features":
        assert torch.equal(got.mask, mask[0]) and torch.equal(got.condition, torch.ones(1, 8, 8)) and got.blend is None
    if local == "zero-condition":  # the reference code's baseline: the condition is blank outside, the features unmasked
        assert got.mask is None and torch.equal(got.condition, mask[0]) and got.blend is None
    if local == "blend-latents":
        assert got.mask is None and torch.equal(got.condition, torch.ones(1, 8, 8)) and torch.equal(got.blend, mask[0])


def test_a_local_mode_without_a_mask_at_inference_is_refused():
    with pytest.raises(ValueError, match="local 'blend-latents' keeps control inside the mask: it needs mask_at_inference true"):
        MethodSpec(kind="adapter", weights="random", local="blend-latents", mask_at_inference=False)


def test_every_shapes_suite_compares_the_training_free_local_baselines():
    for name in ("shapes-quick", "shapes-depth-quick", "shapes-seg-quick", "shapes"):
        suite = load_suite(name)
        local = {spec.local for spec in suite.methods.values() if spec.train == {"masked": False} and spec.mask_at_inference}
        assert local == {"mask-features", "zero-condition", "blend-latents"}, name
        assert suite.masks.min_structure > 0
