"""The rehearsal: stand-ins in the real on-disk formats, loaded by the unmodified code, and the paper run on them.

One rehearsal folder is written for the module (about a GB, half a minute); the end-to-end test runs its script's
steps (`localctrl.rehearsal.write.STEPS`, the lines of rehearse.sh) through the real CLI, in process.
"""

import os
import re
import shlex

import mlflow
import pytest
import torch
from typer.testing import CliRunner

from bench.doctor import component_statuses
from bench.suite import load_suite
from cli import app
from localctrl.errors import InputError
from localctrl.models.weights import components
from localctrl.rehearsal import MARKER, stand_in_root
from localctrl.rehearsal.write import REPOS, STEPS, using_rehearsal, write_rehearsal
from suites import available_suites


@pytest.fixture(scope="module")
def rehearsal(tmp_path_factory):
    return write_rehearsal(tmp_path_factory.mktemp("rehearsal") / "r", say=lambda text: None)


def hub_ids(names) -> set[str]:
    return {n for n in names if n and n.count("/") == 1 and not n.startswith((".", "/", "~", "localctrl-runs", "data/"))}


def test_every_hub_repo_localctrl_names_has_a_stand_in_that_doctor_finds(rehearsal):
    named = hub_ids(c.source for c in components())
    for name in available_suites():
        suite = load_suite(name)
        named |= hub_ids([suite.base, *(m.weights for m in suite.methods.values())])
    assert named <= set(REPOS), named - set(REPOS)
    with using_rehearsal(rehearsal):
        statuses = component_statuses()
    assert all(s.location for s in statuses), [s.component.name for s in statuses if not s.location]
    shipped = {"shapes-base", "shapes-net"}  # shipped inside the package: real, not stand-ins
    assert {s.component.name for s in statuses if not s.stand_in} == shipped


def test_a_folder_with_other_files_is_never_overwritten(tmp_path):
    (tmp_path / "results.csv").write_text("mine")
    with pytest.raises(InputError, match="not a rehearsal folder"):
        write_rehearsal(tmp_path, say=lambda text: None)
    assert (tmp_path / "results.csv").read_text() == "mine"


def test_the_hub_cache_is_laid_out_as_hf_download_leaves_it(rehearsal):
    repo = rehearsal / "hub" / "models--stable-diffusion-v1-5--stable-diffusion-v1-5"
    commit = (repo / "refs" / "main").read_text()
    assert re.fullmatch(r"[0-9a-f]{40}", commit)  # no newline: huggingface_hub does not strip it
    snapshot = repo / "snapshots" / commit
    unet = snapshot / "unet" / "diffusion_pytorch_model.safetensors"
    assert unet.is_symlink() and unet.resolve().parent == (repo / "blobs").resolve()
    files = {p.relative_to(snapshot).as_posix() for p in snapshot.rglob("*") if p.is_file()}
    for expected in ("model_index.json", "unet/config.json", "unet/diffusion_pytorch_model.bin", "unet/diffusion_pytorch_model.fp16.safetensors",
                     "vae/diffusion_pytorch_model.safetensors", "text_encoder/model.safetensors", "text_encoder/pytorch_model.bin",
                     "tokenizer/vocab.json", "tokenizer/merges.txt", "tokenizer/tokenizer_config.json", "tokenizer/special_tokens_map.json",
                     "scheduler/scheduler_config.json", "safety_checker/model.safetensors", "safety_checker/pytorch_model.bin",
                     "feature_extractor/preprocessor_config.json"):
        assert expected in files, expected
    adapter = rehearsal / "hub" / "models--TencentARC--t2iadapter_canny_sd15v2" / "snapshots"
    assert sorted(p.name for p in adapter.glob("*/*")) == ["config.json", "diffusion_pytorch_model.bin"]  # the real repo's two
    for repo in ("Intel--dpt-hybrid-midas", "openmmlab--upernet-convnext-small"):  # pickles only, like their main branches
        snapshot_files = sorted(p.name for p in (rehearsal / "hub" / f"models--{repo}" / "snapshots").glob("*/*"))
        assert snapshot_files == ["config.json", "preprocessor_config.json", "pytorch_model.bin"], repo
    assert stand_in_root(snapshot) == rehearsal and stand_in_root(rehearsal.parent) is None
    assert (rehearsal / MARKER).is_file()


def test_stock_diffusers_loads_the_stand_in_pipeline_and_ours_gets_the_same_weights(rehearsal):
    from diffusers import StableDiffusionPipeline

    from localctrl.models.stacks import load_stack

    with using_rehearsal(rehearsal):
        stack = load_stack("stable-diffusion-v1-5/stable-diffusion-v1-5")
        from localctrl.models.weights import resolve_pretrained

        folder = resolve_pretrained("stable-diffusion-v1-5/stable-diffusion-v1-5")
    stock = StableDiffusionPipeline.from_pretrained(folder, use_safetensors=True)  # safety checker and feature extractor too
    assert type(stock.safety_checker).__name__ == "StableDiffusionSafetyChecker" and stock.feature_extractor.crop_size["height"] == 224
    assert len(stack.tokenizer) == 49408 and stack.tokenizer("a red circle").input_ids == stock.tokenizer("a red circle").input_ids
    assert stack.image_size == 64 and type(stack.scheduler).__name__ == "PNDMScheduler"
    for ours, theirs in ((stack.unet, stock.unet), (stack.vae, stock.vae), (stack.text_encoder, stock.text_encoder)):
        for (name, a), (_, b) in zip(ours.state_dict().items(), theirs.state_dict().items(), strict=True):
            assert torch.equal(a, b), name


def test_stock_diffusers_loads_the_sdxl_stand_in_and_our_sampler_draws_its_images(rehearsal):
    """SDXL base's layout (two encoders, tokenizer_2 padding with "!", Euler, the fp32-upcast VAE): stock
    StableDiffusionXLAdapterPipeline and localctrl's sampler give the same images with the SDXL adapter stand-in."""
    import numpy as np
    from diffusers import StableDiffusionXLAdapterPipeline

    from localctrl.local_adapter import LocalAdapter
    from localctrl.models.stacks import load_stack
    from localctrl.models.weights import resolve_pretrained
    from localctrl.sampling import Request, SamplerSettings, sample

    with using_rehearsal(rehearsal):
        stack = load_stack("stabilityai/stable-diffusion-xl-base-1.0")
        folder = resolve_pretrained("stabilityai/stable-diffusion-xl-base-1.0")
        adapter = LocalAdapter.from_pretrained(resolve_pretrained("TencentARC/t2i-adapter-canny-sdxl-1.0"))
    assert stack.is_xl and stack.image_size == 64 and stack.vae.config.force_upcast and stack.force_zeros_for_empty_prompt
    assert stack.tokenizer_2.pad_token == "!" and stack.tokenizer.pad_token == "<|endoftext|>"
    # its text encoders' configs say float16, as SDXL's do: loaded as they are, they would not meet the fp32 UNet
    assert {module.dtype for module in stack.modules().values()} == {torch.float32}
    stock = StableDiffusionXLAdapterPipeline.from_pretrained(folder, adapter=adapter.adapter, use_safetensors=True,
                                                             torch_dtype=torch.float32)
    stock.set_progress_bar_config(disable=True)
    condition = (torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0)) > 0.8).float()
    prompts = ["a red circle", "two green triangles"]
    expected = stock(prompt=prompts, image=condition, num_inference_steps=3, height=64, width=64, output_type="np",
                     generator=[torch.Generator().manual_seed(s) for s in (0, 1)]).images
    settings = SamplerSettings(steps=3, guidance=5.0, scheduler="euler")  # the pipeline's own defaults
    got = sample(stack, [Request(p, s, c) for p, s, c in zip(prompts, (0, 1), condition)], adapter, settings, progress=False)
    assert np.abs(got.permute(0, 2, 3, 1).numpy() - expected).max() <= 1 / 255


def test_the_depth_and_seg_detectors_load_their_stand_ins_through_the_real_loaders(rehearsal):
    from localctrl.models.convert import PickledWeightsError, convert_to_safetensors
    from localctrl.models.detectors import TransformersDetector

    with using_rehearsal(rehearsal):
        with pytest.raises(PickledWeightsError, match="pytorch_model.bin"):  # UperNet's repo: a pickle only
            TransformersDetector.named("upernet-ade20k")
        for repo in ("openmmlab/upernet-convnext-small", "facebook/mask2former-swin-large-ade-semantic"):
            convert_to_safetensors(repo, say=lambda text: None)
        depth, seg = TransformersDetector.named("dpt-large"), TransformersDetector.named("upernet-ade20k")
        mask2former = TransformersDetector.named("mask2former-ade20k")
    images = torch.randint(0, 256, (2, 3, 64, 64), dtype=torch.uint8)
    maps = depth(images)
    assert maps.shape == (2, 1, 64, 64) and torch.isfinite(maps).all() and torch.equal(maps, depth(images))
    labels = seg(images)
    assert labels.shape == (2, 1, 64, 64) and torch.equal(labels, labels.round()) and 0 <= labels.min() and labels.max() < 150
    assert seg.model.config.num_labels == 150
    labels = mask2former(images)  # at mmseg's test size, whatever the repo's processor says, and back at the image's
    assert labels.shape == (2, 1, 64, 64) and labels.max() < 150 and mask2former.processor.size["shortest_edge"] == 640


def test_data_prepare_computes_depth_and_seg_with_the_networks_and_records_them(rehearsal, tmp_path):
    import json

    import numpy as np

    from localctrl.common.files import read_image
    from localctrl.data.prepare import prepare_dataset
    from localctrl.models.convert import PickledWeightsError, convert_to_safetensors

    images, captions = rehearsal / "coco" / "val2017", rehearsal / "coco" / "annotations" / "captions_val2017.json"
    with using_rehearsal(rehearsal):
        with pytest.raises(PickledWeightsError, match="localctrl convert Intel/dpt-hybrid-midas"):  # before any image is read
            prepare_dataset(images, captions, tmp_path / "data", size=64, conditions=("depth",))
        assert not (tmp_path / "data" / "manifest.jsonl").exists()
        for repo in ("Intel/dpt-hybrid-midas", "openmmlab/upernet-convnext-small"):
            convert_to_safetensors(repo, say=lambda text: None)
        report = prepare_dataset(images, captions, tmp_path / "data", size=64, conditions=("depth", "seg"))
    assert report.written == 32 and report.condition_models == {"depth": "Intel/dpt-hybrid-midas",
                                                                  "seg": "openmmlab/upernet-convnext-small"}
    rows = [json.loads(line) for line in (tmp_path / "data" / "manifest.jsonl").read_text().splitlines()]
    assert all(row["condition_models"] == report.condition_models and row["seg_palette"] == "ade20k" for row in rows)
    depth = read_image(tmp_path / "data" / rows[0]["conditions"]["depth"])
    labels = np.stack([read_image(tmp_path / "data" / row["conditions"]["seg"]) for row in rows])
    assert depth.shape == (64, 64) and depth.min() == 0 and depth.max() == 255  # min-max normalised, as the annotators do
    assert labels.dtype == np.uint8 and labels.max() < 150


def run(arguments: list[str]) -> str:
    result = CliRunner().invoke(app, arguments[1:], env={"COLUMNS": "250"}, catch_exceptions=False)  # [0] is "localctrl"
    assert result.exit_code == 0, f"{shlex.join(arguments)} → exit {result.exit_code}:\n{result.output[-3000:]}"
    return result.output


def test_the_paper_run_rehearses_end_to_end_and_says_its_numbers_are_meaningless(rehearsal, monkeypatch):
    script = (rehearsal / "rehearse.sh").read_text()
    assert all(shlex.join(step) in script for step in STEPS)  # the test runs exactly the documented steps
    monkeypatch.chdir(rehearsal)
    outputs = {}
    with using_rehearsal(rehearsal):
        for step in STEPS:
            if step == ["localctrl", "convert", "TencentARC/t2iadapter_canny_sd15v2"]:  # a pickled .bin only: refused up front until then
                bench = next(s for s in STEPS if s[1] == "bench")
                refused = CliRunner().invoke(app, bench[1:], env={"COLUMNS": "250"})
                assert refused.exit_code == 2 and "`localctrl convert TencentARC/t2iadapter_canny_sd15v2`" in refused.output
                assert "diffusion_pytorch_model.bin holds pickled weights" in refused.output
            outputs[step[1]] = run(step)
        client = mlflow.MlflowClient(os.environ["MLFLOW_TRACKING_URI"])
        every = [(experiment.name, run) for experiment in client.search_experiments() for run in client.search_runs([experiment.experiment_id])]
    protocols = ("controlnetpp-canny-sd15", "controlnetpp-seg-sd15")
    runs = {(experiment, run.info.run_name): run for experiment, run in every if run.data.tags.get("localctrl.suite") not in protocols}
    assert "rehearsal stand-in" in outputs["doctor"]
    parent = runs["bench", "paper-canny-sd15 (rehearsal)"]
    assert parent.data.tags["localctrl.rehearsal"] == "true"
    methods = {name: r for (_, name), r in runs.items() if r.data.tags.get("localctrl.bench.role") == "method"}
    assert set(methods) == set(load_suite("paper-canny-sd15").methods)
    for name, child in methods.items():
        assert child.data.tags["localctrl.rehearsal"] == "true", name
        keys = set(child.data.metrics)
        assert {"fid_rehearsal-inception", "clip_score_ViT-B-16-rehearsal", "edge_f1_in"} <= keys, name
        assert not keys & {"fid", "kid", "clip_score", "lpips_out"}, name  # never under the real metrics' names
    assert "lpips_out_lpips-rehearsal-alexnet" in methods["masked"].data.metrics
    for name in ("masked", "masked-z0"):  # trained with `localctrl train` on the stand-in SD 1.5, tagged so
        assert runs["train", name].data.tags["localctrl.rehearsal"] == "true"
    caption = next((rehearsal / "localctrl-runs" / "report" / "paper-canny-sd15").glob("main-table.md")).read_text()
    assert "every number is meaningless" in caption and "rehearsal-inception" in caption
    protocol = {run.info.run_name: run for _, run in every if run.data.tags.get("localctrl.suite") == "controlnetpp-canny-sd15"
                and run.data.tags.get("localctrl.bench.role") == "method"}
    assert set(protocol) == set(load_suite("controlnetpp-canny-sd15").methods)
    assert all({"edge_f1_all", "fid_rehearsal-inception"} <= set(r.data.metrics) for r in protocol.values())
    table = (rehearsal / "localctrl-runs" / "report" / "controlnetpp-canny-sd15" / "main-table.md").read_text()
    assert "| T2I-Adapter SD 1.5 (published) |" in table and "0.2365" in table and "Rows marked (published) are not ours" in table
    seg = {run.info.run_name: run for _, run in every if run.data.tags.get("localctrl.suite") == "controlnetpp-seg-sd15"
           and run.data.tags.get("localctrl.bench.role") == "method"}
    assert set(seg) == {"text-only", "global", "controlnet", "masked-z0"}  # masked-z0: a seg adapter trained on the ADE20K layout
    assert all({"seg_miou_all_rehearsal-mask2former-ade20k", "seg_miou_in_rehearsal-mask2former-ade20k"} <= set(r.data.metrics)
               for r in seg.values())
    table = (rehearsal / "localctrl-runs" / "report" / "controlnetpp-seg-sd15" / "main-table.md").read_text()
    assert "ControlNet++'s ADE20K mIoU" in table and "JPEG-saved label maps and are wrong" in table
