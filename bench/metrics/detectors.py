"""Depth and segmentation detectors that read generated images (transformers), as the published evaluations use them.

- depth: DPT-large (`Intel/dpt-large`), what ControlNet++ measures depth RMSE with; relative inverse depth,
  nearer is larger, resized back to the image with the processor's own post-processing.
- segmentation: UperNet ConvNeXt-S on ADE20K (`openmmlab/upernet-convnext-small`): 150 labels per pixel.

Weights come from the Hugging Face cache, safetensors only: UperNet's main branch holds a pickled `.bin` only (so
`localctrl convert` it once, or `localctrl fetch`, which converts); DPT-large's has both.
Not yet wired into the bench stages (issue 14's next step).
"""

import torch
from torch import Tensor

from localctrl.models.convert import check_safetensors
from localctrl.models.weights import require

DEPTH_COMPONENT = "DPT large"
SEG_COMPONENT = "UperNet ConvNeXt-S (ADE20K)"


class _Detector:
    """A transformers model and its image processor, from a component's cache folder; one forward per call."""

    def __init__(self, component: str, model_class, processor_class, device: str):
        folder = require(component).parent  # the component's marker is its config.json
        check_safetensors(folder, component, name=str(folder))
        self.processor = processor_class.from_pretrained(folder)
        self.model = model_class.from_pretrained(folder, use_safetensors=True).to(device).eval()
        self.device = device

    @torch.no_grad()
    def outputs(self, images_uint8: Tensor):
        pictures = [image.permute(1, 2, 0).cpu().numpy() for image in images_uint8]  # (H, W, 3) uint8, as processors take
        return self.model(**self.processor(images=pictures, return_tensors="pt").to(self.device))


class DepthDetector(_Detector):
    """(N, 3, H, W) uint8 images → (N, 1, H, W) float32 relative inverse depth."""

    def __init__(self, device: str = "cpu"):
        from transformers import DPTForDepthEstimation, DPTImageProcessor

        super().__init__(DEPTH_COMPONENT, DPTForDepthEstimation, DPTImageProcessor, device)

    def __call__(self, images_uint8: Tensor) -> Tensor:
        sizes = [tuple(images_uint8.shape[-2:])] * len(images_uint8)
        maps = self.processor.post_process_depth_estimation(self.outputs(images_uint8), target_sizes=sizes)
        return torch.stack([m["predicted_depth"] for m in maps])[:, None].float().cpu()


class SegDetector(_Detector):
    """(N, 3, H, W) uint8 images → (N, H, W) int64 ADE20K labels (0..149)."""

    def __init__(self, device: str = "cpu"):
        from transformers import AutoImageProcessor, UperNetForSemanticSegmentation

        super().__init__(SEG_COMPONENT, UperNetForSemanticSegmentation, AutoImageProcessor, device)
        self.num_labels = self.model.config.num_labels

    def __call__(self, images_uint8: Tensor) -> Tensor:
        sizes = [tuple(images_uint8.shape[-2:])] * len(images_uint8)
        labels = self.processor.post_process_semantic_segmentation(self.outputs(images_uint8), target_sizes=sizes)
        return torch.stack(labels).long().cpu()
