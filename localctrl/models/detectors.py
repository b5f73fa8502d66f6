"""The depth and segmentation networks (transformers) that data preparation and the fidelity metrics share.

- depth: DPT (`Intel/dpt-large`, ControlNet++'s depth detector; `Intel/dpt-hybrid-midas`, MiDaS-style, what
  T2I-Adapter's depth adapter was trained on): relative inverse depth, nearer is larger, resized back to the image
  with the processor's own post-processing;
- segmentation: one of 150 ADE20K labels per pixel: UperNet ConvNeXt-S (`openmmlab/upernet-convnext-small`), or
  Mask2Former Swin-L (`facebook/mask2former-swin-large-ade-semantic`, the model ControlNet++ measures ADE20K mIoU
  with; it uses mmseg's copy), run at mmseg's test size (shorter side 640).

Weights come from the Hugging Face cache, safetensors only: UperNet's and DPT hybrid's repos hold pickled `.bin`
files only (so `localctrl convert` them once, or `localctrl fetch`, which converts); DPT-large's has both.
"""

from typing import Literal, NamedTuple

import torch
from torch import Tensor

from localctrl.models.convert import check_safetensors
from localctrl.models.weights import require

Task = Literal["depth", "labels"]


class Network(NamedTuple):
    component: str  # localctrl.models.weights component (where its weights are looked for)
    task: Task
    repo: str  # its hub repo, as the manifest and MLflow record it
    model: str  # its transformers class
    processor: dict | None = None  # image processor settings over the repo's own (None: as the repo has them)


# The networks by the names data preparation and the suites use.
NETWORKS: dict[str, Network] = {
    "dpt-large": Network("DPT large", "depth", "Intel/dpt-large", "DPTForDepthEstimation"),
    "dpt-hybrid": Network("DPT hybrid MiDaS", "depth", "Intel/dpt-hybrid-midas", "DPTForDepthEstimation"),
    "upernet-ade20k": Network("UperNet ConvNeXt-S (ADE20K)", "labels", "openmmlab/upernet-convnext-small",
                              "UperNetForSemanticSegmentation"),
    # mmseg's test pipeline for its ADE20K Mask2Former (ControlNet++'s eval config): Resize keep_ratio to (2560, 640).
    "mask2former-ade20k": Network("Mask2Former Swin-L (ADE20K)", "labels", "facebook/mask2former-swin-large-ade-semantic",
                                  "Mask2FormerForUniversalSegmentation", {"size": {"shortest_edge": 640, "longest_edge": 2560}}),
}


def check_network(name: str) -> None:
    """Fail fast, before any work, unless the network's weights are here as safetensors (the error says how)."""
    folder = require(NETWORKS[name].component).parent  # the component's marker is its config.json
    check_safetensors(folder, NETWORKS[name].component, name=NETWORKS[name].repo)  # the error says `localctrl convert <repo>`


class TransformersDetector:
    """A transformers depth or segmentation model and its image processor: uint8 (N, 3, H, W) images → (N, 1, H, W)
    float maps (depth, or labels as floats); one forward per call."""

    def __init__(self, model, processor, task: Task, device: str = "cpu"):
        self.model, self.processor, self.task, self.device = model.to(device).eval(), processor, task, device

    @classmethod
    def named(cls, name: str, device: str = "cpu") -> "TransformersDetector":
        import transformers

        network = NETWORKS[name]
        check_network(name)
        folder = require(network.component).parent
        model_class = getattr(transformers, network.model)
        return cls(model_class.from_pretrained(folder, use_safetensors=True),
                   transformers.AutoImageProcessor.from_pretrained(folder, **(network.processor or {})), network.task, device)

    @torch.no_grad()
    def __call__(self, images_uint8: Tensor) -> Tensor:
        pictures = [image.permute(1, 2, 0).cpu().numpy() for image in images_uint8]  # (H, W, 3) uint8, as processors take
        outputs = self.model(**self.processor(images=pictures, return_tensors="pt").to(self.device))
        sizes = [tuple(images_uint8.shape[-2:])] * len(images_uint8)
        if self.task == "depth":
            maps = self.processor.post_process_depth_estimation(outputs, target_sizes=sizes)
            return torch.stack([m["predicted_depth"] for m in maps])[:, None].float().cpu()
        labels = self.processor.post_process_semantic_segmentation(outputs, target_sizes=sizes)
        return torch.stack(labels)[:, None].float().cpu()
