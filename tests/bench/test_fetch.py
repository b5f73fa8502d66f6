"""`localctrl fetch`: exactly the files localctrl loads, planned from hub listings; nothing else ever downloads."""

import socket
from pathlib import Path

import pytest
import torch
from huggingface_hub import constants
from typer.testing import CliRunner

from bench.fetch import Item, Need, download, needs, plan, plan_repo
from bench.suite import load_suite
from cli import app
from localctrl.models.weights import ALEXNET_URL, CLIP_REPO, INCEPTION_URL, ModelNotAvailableError, resolve_pretrained

runner = CliRunner()
MB = 2**20

SD15_LISTING = {
    ".gitattributes": 1, "README.md": 14, "v1-inference.yaml": 2, "model_index.json": 1,
    "v1-5-pruned.ckpt": 7700 * MB, "v1-5-pruned.safetensors": 7700 * MB, "v1-5-pruned-emaonly.ckpt": 4270 * MB,
    "v1-5-pruned-emaonly.safetensors": 4270 * MB, "v1-5-pruned-emaonly.fp16.safetensors": 2130 * MB,
    "feature_extractor/preprocessor_config.json": 1,
    "safety_checker/config.json": 5, "safety_checker/model.safetensors": 1220 * MB, "safety_checker/pytorch_model.bin": 1220 * MB,
    "safety_checker/model.fp16.safetensors": 608 * MB,
    "scheduler/scheduler_config.json": 1,
    "text_encoder/config.json": 1, "text_encoder/model.safetensors": 492 * MB, "text_encoder/model.fp16.safetensors": 246 * MB,
    "text_encoder/pytorch_model.bin": 492 * MB, "text_encoder/flax_model.msgpack": 492 * MB,
    "tokenizer/merges.txt": 1, "tokenizer/special_tokens_map.json": 1, "tokenizer/tokenizer_config.json": 1, "tokenizer/vocab.json": 1,
    "unet/config.json": 1, "unet/diffusion_pytorch_model.safetensors": 3440 * MB,
    "unet/diffusion_pytorch_model.fp16.safetensors": 1720 * MB, "unet/diffusion_pytorch_model.non_ema.safetensors": 3440 * MB,
    "unet/diffusion_pytorch_model.bin": 3440 * MB, "unet/diffusion_pytorch_model.non_ema.bin": 3440 * MB,
    "unet/diffusion_pytorch_model.fp16.bin": 1720 * MB,
    "vae/config.json": 1, "vae/diffusion_pytorch_model.safetensors": 335 * MB, "vae/diffusion_pytorch_model.fp16.safetensors": 167 * MB,
    "vae/diffusion_pytorch_model.bin": 335 * MB,
}
TENCENTARC_LISTING = {".gitattributes": 1, "README.md": 3, "config.json": 1, "diffusion_pytorch_model.bin": 308 * MB}
CLIP_LISTING = {"open_clip_config.json": 1, "open_clip_model.safetensors": 599 * MB, "open_clip_pytorch_model.bin": 599 * MB,
                "config.json": 1, "model.safetensors": 599 * MB}


SDXL_LISTING = {  # stabilityai/stable-diffusion-xl-base-1.0, abridged: the single-file checkpoint, a LoRA, ONNX and fp16
    "model_index.json": 1, "sd_xl_base_1.0.safetensors": 6940 * MB, "sd_xl_offset_example-lora_1.0.safetensors": 49 * MB,
    "scheduler/scheduler_config.json": 1, "vae_1_0/diffusion_pytorch_model.safetensors": 335 * MB,
    "text_encoder/config.json": 1, "text_encoder/model.safetensors": 492 * MB, "text_encoder/model.fp16.safetensors": 246 * MB,
    "text_encoder/model.onnx": 492 * MB, "text_encoder_2/config.json": 1, "text_encoder_2/model.safetensors": 2780 * MB,
    "text_encoder_2/model.fp16.safetensors": 1390 * MB, "text_encoder_2/model.onnx": 1000 * MB,
    "tokenizer/merges.txt": 1, "tokenizer/special_tokens_map.json": 1, "tokenizer/tokenizer_config.json": 1, "tokenizer/vocab.json": 1,
    "tokenizer_2/merges.txt": 1, "tokenizer_2/special_tokens_map.json": 1, "tokenizer_2/tokenizer_config.json": 1,
    "tokenizer_2/vocab.json": 1, "unet/config.json": 1, "unet/diffusion_pytorch_model.safetensors": 10300 * MB,
    "unet/diffusion_pytorch_model.fp16.safetensors": 5140 * MB, "unet/model.onnx": 1 * MB,
    "vae/config.json": 1, "vae/diffusion_pytorch_model.safetensors": 335 * MB, "vae/diffusion_pytorch_model.fp16.safetensors": 167 * MB,
    "vae_decoder/model.onnx": 198 * MB,
}


def test_the_planner_picks_sdxl_s_second_text_encoder_and_tokenizer_and_nothing_else():
    sdxl = plan_repo(Need("base model", "stabilityai/stable-diffusion-xl-base-1.0"), SDXL_LISTING)
    weights = sorted(path for path in sdxl.files if path.endswith(".safetensors"))
    assert weights == ["text_encoder/model.safetensors", "text_encoder_2/model.safetensors",
                       "unet/diffusion_pytorch_model.safetensors", "vae/diffusion_pytorch_model.safetensors"]
    assert {path.split("/")[0] for path in sdxl.files} == {"model_index.json", "scheduler", "text_encoder", "text_encoder_2",
                                                           "tokenizer", "tokenizer_2", "unet", "vae"}
    assert sdxl.size == (492 + 2780 + 10300 + 335) * MB + 14  # 14 configs and tokenizer files of 1 byte


def test_the_planner_picks_exactly_the_files_localctrl_loads():
    sd15 = plan_repo(Need("base model", "stable-diffusion-v1-5/stable-diffusion-v1-5"), SD15_LISTING)
    assert sorted(sd15.files) == [
        "model_index.json", "scheduler/scheduler_config.json", "text_encoder/config.json", "text_encoder/model.safetensors",
        "tokenizer/merges.txt", "tokenizer/special_tokens_map.json", "tokenizer/tokenizer_config.json", "tokenizer/vocab.json",
        "unet/config.json", "unet/diffusion_pytorch_model.safetensors", "vae/config.json", "vae/diffusion_pytorch_model.safetensors",
    ]
    assert not sd15.convert and sd15.size == (492 + 3440 + 335) * MB + 9  # 9 configs and tokenizer files of 1 byte

    adapter = plan_repo(Need("weights of method(s) global (adapter)", "TencentARC/t2iadapter_canny_sd15v2"), TENCENTARC_LISTING)
    assert adapter.files == {"config.json": 1, "diffusion_pytorch_model.bin": 308 * MB} and adapter.convert

    clip = Need("CLIP score (CLIP ViT-B/16 (openai))", CLIP_REPO, files=("open_clip_model.safetensors", "open_clip_pytorch_model.bin"))
    inception = Need("FID / KID (Inception (clean-fid))", INCEPTION_URL, destination=Path("/w/inception.pt"))
    planned = plan([clip, inception], {CLIP_REPO: CLIP_LISTING}, {INCEPTION_URL: 95 * MB})
    assert [item.files for item in planned] == [{"open_clip_model.safetensors": 599 * MB}, {"/w/inception.pt": 95 * MB}]

    variants_only = {"config.json": 1, "diffusion_pytorch_model.fp16.safetensors": 1, "model.ckpt": 1}
    with pytest.raises(FileNotFoundError, match="has no fp32 weights localctrl can load in its top level"):
        plan_repo(Need("adapter", "org/fp16-only"), variants_only)


@pytest.fixture
def nothing_here(tmp_path, monkeypatch):
    """An empty Hugging Face cache and weights folders, and a test failure on any attempt to open a connection."""
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setenv("LOCALCTRL_WEIGHTS_DIR", str(tmp_path / "no-weights"))
    monkeypatch.setattr("torch.hub.get_dir", lambda: str(tmp_path / "no-torch-hub"))

    def no_network(*args, **kwargs):
        raise AssertionError(f"tried the network: {args}")

    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    monkeypatch.setattr(socket.socket, "connect", no_network)
    return tmp_path


def test_an_uncached_hub_id_is_never_downloaded_even_online(nothing_here, monkeypatch):
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    with pytest.raises(ModelNotAvailableError) as raised:
        resolve_pretrained("TencentARC/t2iadapter_canny_sd15v2", what="adapter")
    message = str(raised.value)
    assert "adapter 'TencentARC/t2iadapter_canny_sd15v2' is not in the Hugging Face cache" in message
    assert "localctrl fetch SUITE" in message and "hf download TencentARC/t2iadapter_canny_sd15v2" in message


def test_a_suite_needing_nothing_says_so(nothing_here):
    result = runner.invoke(app, ["fetch", "smoke", "--dry-run"], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    assert "Nothing to download: suite 'smoke' needs no weights that are not here." in result.output


def test_what_the_paper_suite_lacks_splits_into_downloadable_and_not(nothing_here):
    wanted, others = needs(load_suite("paper-canny-sd15"))
    assert [need.source for need in wanted] == ["stable-diffusion-v1-5/stable-diffusion-v1-5", "TencentARC/t2iadapter_canny_sd15v2",
                                               "lllyasviel/sd-controlnet-canny", "lllyasviel/control_v11p_sd15_inpaint",
                                               INCEPTION_URL, CLIP_REPO, ALEXNET_URL]
    assert wanted[1].what == "weights of method(s) global, global-masked, global-zeroed, global-blended (adapter)"
    assert wanted[4].destination == nothing_here / "no-weights" / "inception-2015-12-05.pt"
    assert wanted[6].destination == nothing_here / "no-torch-hub" / "checkpoints" / "alexnet-owt-7be5be79.pth"
    assert len(others) == 3 and "data/coco-val2017" in others[0] and "localctrl-runs/paper/masked/adapter-best" in others[1]


def test_dry_run_lists_files_sizes_and_total_and_downloads_nothing(nothing_here, monkeypatch):
    listings = {"stable-diffusion-v1-5/stable-diffusion-v1-5": SD15_LISTING, "TencentARC/t2iadapter_canny_sd15v2": TENCENTARC_LISTING,
                "lllyasviel/sd-controlnet-canny": {"config.json": 1, "diffusion_pytorch_model.safetensors": 1445 * MB},
                "lllyasviel/control_v11p_sd15_inpaint": {"config.json": 1, "diffusion_pytorch_model.safetensors": 1445 * MB,
                                                         "diffusion_pytorch_model.fp16.safetensors": 723 * MB},
                CLIP_REPO: CLIP_LISTING}
    monkeypatch.setattr("bench.fetch.repo_listing", listings.__getitem__)
    monkeypatch.setattr("bench.fetch.url_size", lambda url: 95 * MB if url == INCEPTION_URL else None)
    result = runner.invoke(app, ["fetch", "paper-canny-sd15", "--dry-run"], env={"COLUMNS": "400"})  # no cell wraps
    assert result.exit_code == 0, result.output
    for shown in ("unet/diffusion_pytorch_model.safetensors", "3.6 GB", "open_clip_model.safetensors",
                  "diffusion_pytorch_model.bin (pickled: converted to safetensors after download)", "inception-2015-12-05.pt",
                  "alexnet-owt-7be5be79.pth", "21 files", "+ unknown", "Dry run: nothing downloaded.",
                  "missing, not downloadable: data: no manifest.jsonl in data/coco-val2017", "HF_HUB_OFFLINE is set"):
        assert shown in result.output, shown
    assert "safety_checker" not in result.output and ".ckpt" not in result.output and "fp16" not in result.output
    assert constants.HF_HUB_OFFLINE  # lifted only while fetching
    assert not (nothing_here / "empty-cache").exists() and not (nothing_here / "no-weights").exists()


def test_without_network_fetch_is_one_line_saying_nothing_was_downloaded(tmp_path, monkeypatch):
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")  # the discard port: the connection is refused
    result = runner.invoke(app, ["fetch", "paper-canny-sd15", "--yes"], env={"COLUMNS": "250"})
    assert result.exit_code == 2
    assert result.stderr.strip().count("\n") == 0 and "Traceback" not in result.output
    assert "cannot reach the Hugging Face hub (http://127.0.0.1:9) to list stable-diffusion-v1-5/stable-diffusion-v1-5" in result.stderr
    assert "nothing was downloaded" in result.stderr and constants.HF_HUB_OFFLINE


def test_a_pickled_only_download_is_converted_right_after(tmp_path, monkeypatch):
    snapshot = tmp_path / "snapshot"
    snapshot.mkdir()

    calls = []

    def fake_snapshot_download(repo, allow_patterns):  # the hub's side: only org/bin-only has files
        calls.append((repo, allow_patterns, constants.HF_HUB_OFFLINE))
        if repo == "org/bin-only":
            (snapshot / "config.json").write_text("{}")
            torch.save({"weight": torch.arange(4.0)}, snapshot / "diffusion_pytorch_model.bin")
        return str(snapshot)

    monkeypatch.setattr("huggingface_hub.snapshot_download", fake_snapshot_download)
    said = []
    download([Item(Need("adapter", "org/bin-only"), {"config.json": 1, "diffusion_pytorch_model.bin": 1}, convert=True)], said.append)
    assert calls == [("org/bin-only", ["config.json", "diffusion_pytorch_model.bin"], False)]
    assert (snapshot / "diffusion_pytorch_model.safetensors").is_file() and any("converted" in line for line in said)
    with pytest.raises(FileNotFoundError, match=r"did not finish \(unet/config.json missing\); 0 of 1 sources"):
        download([Item(Need("base", "org/partial"), {"unet/config.json": 1})], said.append)
