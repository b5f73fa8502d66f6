"""The paper suite: without its weights and data it stops up front listing all of them; `--base tiny` runs its plan."""

import math

import mlflow
import pytest

from bench.requirements import MissingRequirements
from bench.run import BenchOptions, run_bench


@pytest.fixture
def no_weights(tmp_path, monkeypatch):
    """Nothing pretrained anywhere localctrl looks."""
    monkeypatch.setenv("LOCALCTRL_WEIGHTS_DIR", str(tmp_path / "no-weights"))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setattr("torch.hub.get_dir", lambda: str(tmp_path / "no-torch-hub"))


def test_the_paper_suite_lists_everything_it_is_missing_before_any_work(tmp_path, no_weights):
    with pytest.raises(MissingRequirements) as raised:
        run_bench("paper-canny-sd15", BenchOptions(out=tmp_path / "out", cache=tmp_path / "cache"))
    message = str(raised.value)
    for needed in ("stable-diffusion-v1-5/stable-diffusion-v1-5", "data/coco-val2017", "localctrl-runs/paper/masked/adapter-best",
                   "localctrl-runs/paper/masked-z0/adapter-best", "TencentARC/t2iadapter_canny_sd15v2", "lllyasviel/sd-controlnet-canny",
                   "lllyasviel/control_v11p_sd15_inpaint", "inception-2015-12-05.pt", "CLIP ViT-B/16", "LPIPS"):
        assert needed in message, needed
    assert len(raised.value.missing) == 10  # each once, though the ControlNet and global adapter serve two methods each
    assert not (tmp_path / "out").exists()


def test_with_base_tiny_the_paper_plan_runs_as_mechanics_and_says_so(tmp_path):
    result = run_bench("paper-canny-sd15", BenchOptions(out=tmp_path / "out", cache=tmp_path / "cache", base="tiny", limit=2))
    assert result.counts["images"] == 2 * 10 and result.counts["generated"] == 20
    assert set(result.results) == {"text-only", "global", "global-masked", "global-zeroed", "global-blended", "masked", "masked-z0",
                                   "controlnet-zeroed", "controlnet-masked", "controlnet-inpaint"}
    for values in result.results.values():
        assert "fid_random-inception" in values and "clip_score_ViT-B-16-random" in values and "fid" not in values
    controlnet = result.results["controlnet-masked"]
    assert {"edge_f1_in", "edge_leakage_out", "ssim_out", "lpips_out_lpips-random-alexnet"} <= set(controlnet)
    notes = mlflow.artifacts.load_text(f"runs:/{result.run_id}/notes.txt")
    assert "shapes world instead of data/coco-val2017" in notes and "seeded random controlnet instead of lllyasviel" in notes


@pytest.mark.parametrize("suite, needed", [
    ("paper-depth-sd15", ("data/coco-val2017-depth", "localctrl-runs/paper-depth/masked/adapter-best", "TencentARC/t2iadapter_depth_sd15v2",
                          "lllyasviel/sd-controlnet-depth", "DPT large")),
    ("paper-seg-sd15", ("data/coco-val2017-seg", "localctrl-runs/paper-seg/masked-z0/adapter-best", "TencentARC/t2iadapter_seg_sd14v1",
                        "lllyasviel/sd-controlnet-seg", "UperNet ConvNeXt-S (ADE20K)")),
])
def test_the_depth_and_seg_paper_suites_list_their_detectors_with_the_rest_up_front(tmp_path, no_weights, suite, needed):
    with pytest.raises(MissingRequirements) as raised:
        run_bench(suite, BenchOptions(out=tmp_path / "out", cache=tmp_path / "cache"))
    for name in needed:
        assert name in str(raised.value), name
    assert len(raised.value.missing) == 11 and not (tmp_path / "out").exists()  # the canny suite's ten and its detector


@pytest.mark.parametrize("suite, metric, detector", [("paper-depth-sd15", "depth_rmse_in_random-dpt", "random-dpt"),
                                                     ("paper-seg-sd15", "seg_miou_in_random-upernet", "random-upernet")])
def test_with_base_tiny_the_depth_and_seg_paper_plans_run_with_named_random_detectors(tmp_path, suite, metric, detector):
    result = run_bench(suite, BenchOptions(out=tmp_path / "out", cache=tmp_path / "cache", base="tiny", limit=2, methods=["global"]))
    assert metric in result.results["global"] and metric in result.results["text-only"]
    notes = mlflow.artifacts.load_text(f"runs:/{result.run_id}/notes.txt")
    assert f"read with {detector} instead of" in notes
    assert mlflow.get_run(result.run_id).data.params[f"metric.detector.{'depth' if 'depth' in suite else 'labels'}"] == detector


@pytest.mark.parametrize("suite, protocol_metrics", [
    ("controlnetpp-canny-sd15", {"edge_f1_all", "edge_msssim_all"}),
    ("controlnetpp-depth-sd15", {"depth_rmse_all_random-dpt"})])
def test_the_controlnetpp_presets_run_as_mechanics_with_their_protocol_metrics(tmp_path, suite, protocol_metrics):
    """4 images per prompt, the ControlNet under UniPC and the adapters under PNDM, FID per seed group averaged; one
    method of each kind (the others differ from them in settings only, which the params test below reads)."""
    methods = ["global", "controlnet", "controlnet-inpaint"]  # and text-only, the preservation reference, with them
    result = run_bench(suite, BenchOptions(out=tmp_path / "out", cache=tmp_path / "cache", base="tiny", limit=2, steps=4,
                                           methods=methods))
    assert result.counts["images"] == 2 * 4 * 4 and set(result.results) == {"text-only", *methods}
    for name, values in result.results.items():
        assert protocol_metrics | {"edge_f1_in", "fid_random-inception"} <= set(values), name
        assert math.isnan(values["fid_random-inception_ci_lo"])  # a mean of per-group FIDs claims no interval
        if "edge_msssim_all" in values:
            assert math.isnan(values["edge_msssim_all"])  # 64² mechanics images are too small for five MS-SSIM scales
    params = mlflow.get_run(result.run_id).data.params
    assert params["suite.protocol"] == "controlnetpp" and params["suite.methods.controlnet.scheduler"] == "unipc"
    assert params["suite.methods.controlnet.steps"] == "None"  # --steps 4 is every method's: its own 20 is set aside
    assert {"ssim_out", "psnr_out", "edge_f1_in"} <= set(result.results["controlnet-inpaint"])  # the preservation bound


@pytest.mark.parametrize("suite, needed", [
    ("paper-canny-sdxl", ("data/coco-val2017-1024", "localctrl-runs/paper-sdxl/masked/adapter-best",
                          "TencentARC/t2i-adapter-canny-sdxl-1.0", "diffusers/controlnet-canny-sdxl-1.0")),
    ("paper-depth-sdxl", ("data/coco-val2017-depth-1024", "localctrl-runs/paper-depth-sdxl/masked-z0/adapter-best",
                          "TencentARC/t2i-adapter-depth-midas-sdxl-1.0", "diffusers/controlnet-depth-sdxl-1.0", "DPT large")),
])
def test_the_sdxl_paper_suites_list_their_sdxl_models_up_front(tmp_path, no_weights, suite, needed):
    with pytest.raises(MissingRequirements) as raised:
        run_bench(suite, BenchOptions(out=tmp_path / "out", cache=tmp_path / "cache"))
    for name in ("stabilityai/stable-diffusion-xl-base-1.0", "--base tiny-xl", *needed):
        assert name in str(raised.value), name
    # the SD 1.5 suites' lines but the inpainting ControlNet's (no standard SDXL one), and the depth detector
    assert len(raised.value.missing) == (9 if "canny" in suite else 10) and not (tmp_path / "out").exists()


def test_with_base_tiny_xl_the_sdxl_depth_plan_runs_with_a_named_random_detector(tmp_path):
    result = run_bench("paper-depth-sdxl", BenchOptions(out=tmp_path / "out", cache=tmp_path / "cache", base="tiny-xl", limit=2,
                                                         steps=2, methods=["global"]))
    assert "depth_rmse_in_random-dpt" in result.results["global"] and set(result.results) == {"text-only", "global"}


def test_with_base_tiny_xl_the_sdxl_paper_plan_runs_as_mechanics_on_an_sdxl_stack(tmp_path):
    result = run_bench("paper-canny-sdxl", BenchOptions(out=tmp_path / "out", cache=tmp_path / "cache", base="tiny-xl", limit=2,
                                                         steps=4))
    assert result.counts["images"] == result.counts["generated"] == 2 * 9
    assert {"edge_f1_in", "edge_leakage_out", "ssim_out"} <= set(result.results["controlnet-masked"])
    assert result.results["global"]["edge_f1_in"] != result.results["text-only"]["edge_f1_in"]  # the SDXL adapter controls
    params = mlflow.get_run(result.run_id).data.params
    assert params["suite.base"] == "tiny-xl" and params["suite.sampler.scheduler"] == "euler-a"
    notes = mlflow.artifacts.load_text(f"runs:/{result.run_id}/notes.txt")
    assert "mechanics mode (base tiny-xl): shapes world instead of data/coco-val2017-1024" in notes
