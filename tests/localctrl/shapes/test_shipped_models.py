"""The shapes models shipped in the package: they load with stock tools and `world check` reports on them."""

import json

import numpy as np
import torch
from diffusers import StableDiffusionPipeline
from typer.testing import CliRunner

from cli import app
from localctrl.models.stacks import load_stack
from localctrl.models.weights import SHAPES_BASE_DIR, SHAPES_NET_DIR
from localctrl.shapes.check import CheckSettings, held_out_scenes, judge
from localctrl.shapes.net import load_shapes_net, scene_correct
from localctrl.shapes.render import render_images


def folder_megabytes(folder) -> float:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file()) / 2**20


def test_shipped_shapes_base_runs_in_stock_diffusers_at_64px():
    assert folder_megabytes(SHAPES_BASE_DIR) <= 20
    assert not list(SHAPES_BASE_DIR.rglob("*.bin")), "weights must be safetensors"
    pipeline = StableDiffusionPipeline.from_pretrained(SHAPES_BASE_DIR)
    images = pipeline(["a red circle on a grey background"] * 2, num_inference_steps=4, output_type="np",
                      generator=[torch.Generator().manual_seed(k) for k in range(2)]).images
    assert images.shape == (2, 64, 64, 3) and np.isfinite(images).all()
    assert load_stack("shapes-base").image_size == 64


def test_shipped_shapes_net_is_small_and_recognises_held_out_scenes():
    assert folder_megabytes(SHAPES_NET_DIR) <= 2
    scenes = held_out_scenes(CheckSettings(samples=64), "test")
    correct = scene_correct(judge(load_shapes_net(SHAPES_NET_DIR), render_images(scenes, 64)), scenes)
    assert correct.float().mean() >= 0.95


def test_world_check_json_reports_every_measurement():
    result = CliRunner().invoke(app, ["world", "check", "--json", "--samples", "8"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)  # progress bars and warnings go to stderr
    for key in ("vae_psnr_db", "net_accuracy_reconstructions", "net_accuracy_real", "fid_shapes_samples_vs_real", "fid_shapes_real_vs_real"):
        assert isinstance(report[key], float), key
    for source in ("align_real", "align_samples"):
        assert set(report[source]) == {"all", "one_object", "two_object"}
        assert all(0 <= value <= 1 for value in report[source].values())
    assert report["counts"]["images"] == 8 == report["counts"]["one_object"] + report["counts"]["two_object"]
    assert report["vae_psnr_db"] > 25 and report["net_accuracy_real"] >= 0.85
