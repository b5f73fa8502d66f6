"""The detectors that read a condition back from an image, by name: edges, depth and segmentation.

Every detector takes uint8 images (N, 3, H, W) and returns (N, 1, H, W) float maps of one kind:
- edges (0/1): `canny` (kornia 0.1/0.2, ControlNet++'s) and `canny-opencv` (OpenCV 100/200, the reference's);
- depth (disparity, nearer is larger): `shapes-depth` (the shapes world's exact reader, 0-255 as the world's maps);
  and, as relative inverse depth in the network's own units that the bench scales by its maximum, `dpt-large`
  (Intel/dpt-large, what ControlNet++ measures depth RMSE with), `dpt-hybrid` (Intel/dpt-hybrid-midas, what
  T2I-Adapter's depth adapter was trained on) and `random-dpt`;
- labels: `shapes-seg` (the shapes world's exact segmenter, 4 classes), `upernet-ade20k` (UperNet ConvNeXt-S,
  openmmlab/upernet-convnext-small, 150 ADE20K classes) and `mask2former-ade20k` (Mask2Former Swin-L,
  facebook/mask2former-swin-large-ade-semantic: ControlNet++'s ADE20K segmenter), `random-upernet`, `random-mask2former`.

The transformers networks are localctrl.models.detectors' (data preparation computes depth and seg conditions with
the same ones). `random-*` are seeded random stand-ins with the real architecture cut small (mechanics only:
`--base tiny` asks for them), built in memory.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from torch import Tensor

from localctrl.data.conditions import canny, canny_opencv
from localctrl.models.detectors import NETWORKS, TransformersDetector
from localctrl.shapes.depth_reader import read_depth
from localctrl.shapes.render import GROUND_TRUTH_VERSIONS
from localctrl.shapes.scene import SHAPES
from localctrl.shapes.segmenter import VERSION as SEGMENTER_VERSION
from localctrl.shapes.segmenter import segment

Kind = Literal["edges", "depth", "labels"]


@dataclass(frozen=True)
class DetectorSpec:
    kind: Kind
    component: str | None = None  # localctrl.models.weights component whose weights it loads (None: none needed)
    classes: int | None = None  # label detectors: how many classes they tell apart
    background: int | None = None  # label detectors: the class that means "nothing here" (ADE20K has none)
    relative: bool = False  # depth detectors: relative inverse depth in arbitrary units (DPT), not 0-255 disparity
    version: int = 1  # bumped when what it outputs changes: cached detections of another version are not reused

    def folder(self, name: str) -> str:
        """The name of its cache folder (bench.stages.detect): the name, and the version after the first."""
        return name if self.version == 1 else f"{name}-v{self.version}"


DETECTORS: dict[str, DetectorSpec] = {
    "canny": DetectorSpec("edges"),
    "canny-opencv": DetectorSpec("edges"),
    "shapes-depth": DetectorSpec("depth", version=GROUND_TRUTH_VERSIONS["depth"]),  # it reads the world's depth
    "dpt-large": DetectorSpec("depth", NETWORKS["dpt-large"].component, relative=True),
    "dpt-hybrid": DetectorSpec("depth", NETWORKS["dpt-hybrid"].component, relative=True),
    "random-dpt": DetectorSpec("depth", relative=True),
    "shapes-seg": DetectorSpec("labels", classes=1 + len(SHAPES), background=0, version=SEGMENTER_VERSION),
    "upernet-ade20k": DetectorSpec("labels", NETWORKS["upernet-ade20k"].component, classes=150),
    "random-upernet": DetectorSpec("labels", classes=150),
    "mask2former-ade20k": DetectorSpec("labels", NETWORKS["mask2former-ade20k"].component, classes=150),
    "random-mask2former": DetectorSpec("labels", classes=150),
}
RANDOM = {"dpt-large": "random-dpt", "dpt-hybrid": "random-dpt", "upernet-ade20k": "random-upernet",  # --base tiny
          "mask2former-ade20k": "random-mask2former"}
STAND_INS = {"random-dpt": "dpt_large_model", "random-upernet": "upernet_convnext_model",
             "random-mask2former": "mask2former_model"}  # localctrl.rehearsal.models, built in memory


def _per_image(read: Callable[[np.ndarray], np.ndarray]) -> Callable[[Tensor], Tensor]:
    return lambda images: torch.stack([torch.from_numpy(read(image.permute(1, 2, 0).numpy())) for image in images]).float()[:, None]


def load_detector(name: str, device: str = "cpu") -> Callable[[Tensor], Tensor]:
    """The detector called `name`: uint8 (N, 3, H, W) → (N, 1, H, W) float (see the module docstring)."""
    spec = DETECTORS[name]
    if name == "canny":
        return lambda images: canny(images.float() / 255)
    if name == "canny-opencv":
        return lambda images: canny_opencv(images.float() / 255)
    if name == "shapes-depth":
        return _per_image(read_depth)
    if name == "shapes-seg":
        return _per_image(segment)
    if name in STAND_INS:
        from localctrl.rehearsal import models

        model, processor = getattr(models, STAND_INS[name])(seed=0)
        return TransformersDetector(model, processor, spec.kind, device)
    return TransformersDetector.named(name, device)
