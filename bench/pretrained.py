"""Pretrained networks the metrics need, and where each is looked for (see localctrl.models.pretrained)."""

from pathlib import Path

import torch

from localctrl.models.pretrained import Pretrained, first_existing, hub_component, in_hub_cache, weights_dir

INCEPTION_URL = "https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/metrics/inception-2015-12-05.pt"
INCEPTION_FILE = "inception-2015-12-05.pt"
CLEANFID_DOWNLOAD_DIR = Path("/tmp")  # where clean-fid itself saves the Inception file on Linux
ALEXNET_FILE = "alexnet-owt-7be5be79.pth"  # torchvision's ImageNet AlexNet, LPIPS's default backbone
CLIP_REPO = "timm/vit_base_patch16_clip_224.openai"  # open_clip's source for ViT-B-16 / openai


def torch_hub_checkpoints() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints"


METRIC_COMPONENTS = [
    Pretrained(
        "Inception (clean-fid)",
        "FID / KID",
        INCEPTION_URL,
        first_existing(lambda: weights_dir() / INCEPTION_FILE, lambda: CLEANFID_DOWNLOAD_DIR / INCEPTION_FILE),
        f"download {INCEPTION_URL} into {weights_dir()} (or set LOCALCTRL_WEIGHTS_DIR)",
    ),
    Pretrained(
        "CLIP ViT-B/16 (openai)",
        "CLIP score",
        CLIP_REPO,
        in_hub_cache(CLIP_REPO, "open_clip_model.safetensors", "open_clip_pytorch_model.bin"),
        f"on a machine with network run `hf download {CLIP_REPO}`, then copy the Hugging Face cache here",
    ),
    Pretrained(
        "LPIPS AlexNet backbone",
        "LPIPS (outside-mask preservation)",
        "torchvision AlexNet_Weights.IMAGENET1K_V1",
        first_existing(lambda: torch_hub_checkpoints() / ALEXNET_FILE),
        f"put {ALEXNET_FILE} (download.pytorch.org/models) into {torch_hub_checkpoints()}",
    ),
    hub_component("DPT hybrid MiDaS", "depth fidelity", "Intel/dpt-hybrid-midas", "config.json"),
    hub_component("UperNet ConvNeXt-S (ADE20K)", "segmentation fidelity", "openmmlab/upernet-convnext-small", "config.json"),
]
