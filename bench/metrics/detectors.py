"""Depth and segmentation detectors that read generated images (transformers), as the published evaluations use them.

- depth: DPT-large (`Intel/dpt-large`), what ControlNet++ measures depth RMSE with; relative inverse depth,
  nearer is larger, resized back to the image with the processor's own post-processing.
- segmentation: UperNet ConvNeXt-S on ADE20K (`openmmlab/upernet-convnext-small`): 150 labels per pixel.

Weights come from the Hugging Face cache, safetensors only: UperNet's main branch holds a pickled `.bin` only (so
`localctrl convert` it once, or `localctrl fetch`, which converts); DPT-large's has both.
Not yet wired into the bench stages (issue 14's next step).
"""

import numpy as np
import torch
from torch import Tensor

from localctrl.models.convert import check_safetensors
from localctrl.models.weights import require

DEPTH_COMPONENT = "DPT large"
SEG_COMPONENT = "UperNet ConvNeXt-S (ADE20K)"


def _folder(component: str):
    folder = require(component).parent  # the component's marker is its config.json
    check_safetensors(folder, component, name=str(folder))
    return folder


def _pictures(images_uint8: Tensor) -> list[np.ndarray]:
    return [image.permute(1, 2, 0).cpu().numpy() for image in images_uint8]  # (H, W, 3) uint8, as the processors take them


class DepthDetector:
    """(N, 3, H, W) uint8 images → (N, 1, H, W) float32 relative inverse depth."""

    def __init__(self, device: str = "cpu"):
        from transformers import DPTForDepthEstimation, DPTImageProcessor

        folder = _folder(DEPTH_COMPONENT)
        self.processor = DPTImageProcessor.from_pretrained(folder)
        self.model = DPTForDepthEstimation.from_pretrained(folder, use_safetensors=True).to(device).eval()
        self.device = device

    @torch.no_grad()
    def __call__(self, images_uint8: Tensor) -> Tensor:
        size = tuple(images_uint8.shape[-2:])
        inputs = self.processor(images=_pictures(images_uint8), return_tensors="pt").to(self.device)
        outputs = self.model(**inputs)
        maps = self.processor.post_process_depth_estimation(outputs, target_sizes=[size] * len(images_uint8))
        return torch.stack([m["predicted_depth"] for m in maps])[:, None].float().cpu()


class SegDetector:
    """(N, 3, H, W) uint8 images → (N, H, W) int64 ADE20K labels (0..149)."""

    def __init__(self, device: str = "cpu"):
        from transformers import AutoImageProcessor, UperNetForSemanticSegmentation

        folder = _folder(SEG_COMPONENT)
        self.processor = AutoImageProcessor.from_pretrained(folder)
        self.model = UperNetForSemanticSegmentation.from_pretrained(folder, use_safetensors=True).to(device).eval()
        self.num_labels, self.device = self.model.config.num_labels, device

    @torch.no_grad()
    def __call__(self, images_uint8: Tensor) -> Tensor:
        size = tuple(images_uint8.shape[-2:])
        inputs = self.processor(images=_pictures(images_uint8), return_tensors="pt").to(self.device)
        outputs = self.model(**inputs)
        labels = self.processor.post_process_semantic_segmentation(outputs, target_sizes=[size] * len(images_uint8))
        return torch.stack(labels).long().cpu()
