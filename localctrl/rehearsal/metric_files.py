"""Stand-ins of the metric networks' files, where and how their libraries load them.

- open_clip's CLIP ViT-B/16 (openai) repo `timm/vit_base_patch16_clip_224.openai`: `open_clip_model.safetensors`
  (the file open_clip and localctrl try first) and `open_clip_config.json`. open_clip loads it strictly into its own
  ViT-B-16, so the stand-in has the full width (150 M seeded random parameters, 600 MB in fp32 like the real file);
  the repo's pickled `open_clip_pytorch_model.bin` twin is left out (600 MB more, never read when the safetensors is
  there).
- torchvision's ImageNet AlexNet `alexnet-owt-7be5be79.pth` (LPIPS's backbone) under `$TORCH_HOME/hub/checkpoints`:
  the full 16-tensor state dict torchvision saves (233 MB), seeded random.
- clean-fid's Inception: `localctrl.rehearsal.inception`.
"""

import json
from pathlib import Path

import torch
from safetensors.torch import save_file

from localctrl.common.seeding import seeded


def open_clip_repo(folder: Path, seed: int) -> Path:
    import open_clip

    config = open_clip.get_model_config("ViT-B-16")
    with seeded(seed):
        model = open_clip.model.CLIP(**config, quick_gelu=True)
    folder.mkdir(parents=True, exist_ok=True)
    save_file({key: value.contiguous() for key, value in model.state_dict().items()}, folder / "open_clip_model.safetensors")
    preprocess = {"mean": [0.48145466, 0.4578275, 0.40821073], "std": [0.26862954, 0.26130258, 0.27577711],
                  "interpolation": "bicubic", "resize_mode": "shortest"}
    (folder / "open_clip_config.json").write_text(json.dumps({"model_cfg": config | {"quick_gelu": True},
                                                              "preprocess_cfg": preprocess}, indent=2) + "\n")
    return folder


def alexnet_checkpoint(path: Path, seed: int) -> Path:
    from torchvision.models import alexnet

    with seeded(seed):
        state = alexnet(weights=None).state_dict()
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)
    return path
