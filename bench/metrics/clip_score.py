"""CLIP score with open_clip directly: 100 · max(cos(image, prompt), 0) per image; the model id is recorded in `.name`.

Not torchmetrics' CLIPScore: it breaks with transformers 5 (get_image_features returns a ModelOutput).
"""

from pathlib import Path

import numpy as np
import open_clip
import torch
from PIL import Image
from torch import Tensor

from localctrl.common.quiet import dropped
from localctrl.models.weights import OPEN_CLIP_FILES, MetricUnavailable, in_hub_cache


def _cached_checkpoint(model_name: str, pretrained: str, tag_cfg: dict) -> str:
    """The checkpoint file of an open_clip tag from the local Hugging Face cache, where open_clip itself would fetch it."""
    repo = tag_cfg.get("hf_hub", "").strip("/")
    path = in_hub_cache(repo, *OPEN_CLIP_FILES)() if repo else None
    if path is None:
        how = "pass the checkpoint file as `checkpoint=`"
        if repo:
            how = f"on a machine with network run `hf download {repo}` and copy the Hugging Face cache here, or {how}"
        raise MetricUnavailable(f"CLIP score ({model_name}/{pretrained})", repo or f"open_clip weights '{pretrained}'", how)
    return str(path)


class ClipScorer:
    """`scores(images_uint8 (N, 3, H, W), prompts)` → (N,) CLIP scores, image i against prompt i.

    `pretrained` is the open_clip tag that says what the weights are (it sets the activation and preprocessing, and
    names the score: "ViT-B-16/openai"); `checkpoint` optionally says where they are. Without it the tag's file is
    looked up in the local Hugging Face cache; missing → MetricUnavailable, never a download. `random_weights=True`
    builds a seeded random model named "<model>/random", for mechanics only. Images go through open_clip's own
    preprocessing (resize, centre crop, normalise) via PIL, as CLIP scores are usually computed.
    """

    def __init__(self, model_name: str = "ViT-B-16", pretrained: str = "openai", device: str | torch.device = "cpu",
                 random_weights: bool = False, checkpoint: str | Path | None = None, batch_size: int = 64, seed: int = 0):
        tag_cfg = open_clip.get_pretrained_cfg(model_name, pretrained) or {}
        # open_clip applies a tag's activation and preprocessing only when it downloads the tag itself; loading a file
        # we pass them explicitly (the openai weights were trained with QuickGELU and score wrongly without it).
        options = {"force_quick_gelu": bool(tag_cfg.get("quick_gelu", False)), "image_mean": tag_cfg.get("mean"),
                   "image_std": tag_cfg.get("std"), "image_interpolation": tag_cfg.get("interpolation"),
                   "image_resize_mode": tag_cfg.get("resize_mode")}
        if random_weights:
            checkpoint, self.name = None, f"{model_name}/random"
        else:
            if checkpoint is not None and not Path(checkpoint).is_file():
                raise MetricUnavailable(f"CLIP score ({model_name}/{pretrained})", str(checkpoint), "pass an existing file")
            checkpoint = str(checkpoint) if checkpoint is not None else _cached_checkpoint(model_name, pretrained, tag_cfg)
            self.name = f"{model_name}/{pretrained}"
        # open_clip logs "No pretrained weights loaded … initialized randomly" for the named random stand-in: it is meant
        with torch.random.fork_rng(devices=[]), dropped(None, "No pretrained weights loaded"):
            torch.manual_seed(seed)
            model, _, self.preprocess = open_clip.create_model_and_transforms(model_name, pretrained=checkpoint, device=device,
                                                                              **options)
        self.model = model.eval().requires_grad_(False)
        self.tokenizer = open_clip.get_tokenizer(model_name)  # the BPE vocabulary ships inside open_clip: works offline
        self.device, self.batch_size = torch.device(device), batch_size

    @torch.no_grad()
    def image_embeddings(self, images_uint8: Tensor) -> Tensor:
        """Unit-norm image embeddings (N, D); each image via PIL through open_clip's preprocessing, as CLIP was evaluated."""
        out = []
        for chunk in images_uint8.split(self.batch_size):
            batch = torch.stack([self.preprocess(Image.fromarray(image.permute(1, 2, 0).cpu().numpy())) for image in chunk])
            out.append(self.model.encode_image(batch.to(self.device), normalize=True).float().cpu())
        return torch.cat(out)

    @torch.no_grad()
    def text_embeddings(self, prompts: list[str]) -> Tensor:
        """Unit-norm text embeddings (N, D)."""
        batches = (self.tokenizer(prompts[i : i + self.batch_size]) for i in range(0, len(prompts), self.batch_size))
        out = [self.model.encode_text(tokens.to(self.device), normalize=True).float().cpu() for tokens in batches]
        return torch.cat(out)

    def scores(self, images_uint8: Tensor, prompts: list[str]) -> np.ndarray:
        if len(images_uint8) != len(prompts):
            raise ValueError(f"one prompt per image: {len(images_uint8)} images, {len(prompts)} prompts")
        cosine = (self.image_embeddings(images_uint8) * self.text_embeddings(list(prompts))).sum(dim=1)
        return (100 * cosine.clamp(min=0)).double().numpy()
