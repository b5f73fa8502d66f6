"""Control conditions: computed from images (canny, colour grid) or read from a dataset (edges, seg, depth).

Each condition has a fixed channel count (the adapter's `in_channels`) and values in [0, 1]. Depth is a grey
disparity map (nearer is brighter) repeated to 3 channels and segmentation a label map shown in a palette, the
way the published depth and seg adapters and ControlNets take them. A dataset stores seg as labels (what the
metrics compare) and names its palette: `ade20k` (150 classes, ControlNet's seg annotator colours) for real data,
`shapes` for the shapes world's four classes.
"""

import json
from functools import cache
from pathlib import Path

import cv2
import kornia
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from localctrl.config import Condition
from localctrl.errors import InputError

CHANNELS: dict[Condition, int] = {"canny": 1, "canny-opencv": 1, "colour-grid": 3, "edges": 1, "seg": 3, "depth": 3}
FROM_MANIFEST = ("edges", "seg", "depth")  # read from the item's `conditions` (exact ground truth in the shapes world)
SHAPES_PALETTE = [[0, 0, 0], [230, 25, 75], [60, 180, 75], [0, 130, 200]]  # background, circle, square, triangle
PALETTES = ("shapes", "ade20k")
# The label of pixels no class covers: ADE20K's "other" (its annotations' 0, which mmseg's reduce_zero_label, as
# ControlNet++'s evaluation uses it, turns into 255). Metrics leave them out; conditions show them black.
IGNORE_LABEL = 255


@cache
def palette(name: str) -> Tensor:
    """(classes, 3) colours in [0, 1] of a named palette."""
    if name == "shapes":
        return torch.tensor(SHAPES_PALETTE, dtype=torch.float32) / 255
    if name == "ade20k":
        colours = json.loads((Path(__file__).with_name("ade20k-palette.json")).read_text(encoding="utf-8"))["colours"]
        return torch.tensor(colours, dtype=torch.float32) / 255
    raise InputError(f"unknown seg palette '{name}'; known: {', '.join(PALETTES)}")


def canny(images: Tensor, low: float = 0.1, high: float = 0.2) -> Tensor:
    """Binary edges (N, 1, H, W) of images (N, 3, H, W) in [0, 1]: kornia's Canny (ControlNet++'s detector)."""
    return (kornia.filters.canny(images.float(), low_threshold=low, high_threshold=high)[1] > 0).float()


def canny_opencv(images: Tensor, low: int = 100, high: int = 200) -> Tensor:
    """Binary edges with OpenCV's Canny on uint8 RGB, thresholds 100/200 (the paper's training condition)."""
    uint8 = (images.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    edges = [cv2.Canny(np.ascontiguousarray(image), low, high) for image in uint8]
    return torch.from_numpy(np.stack(edges)).float().div(255).unsqueeze(1)


def colour_grid(images: Tensor, cells: int = 8) -> Tensor:
    """T2I-Adapter's colour condition: the image averaged over a cells×cells grid, shown at full size."""
    small = F.adaptive_avg_pool2d(images.float(), cells)
    return F.interpolate(small, size=images.shape[-2:], mode="nearest")


def seg_to_colour(semantic: Tensor, palette_name: str = "shapes") -> Tensor:
    """Class map (N, H, W) of small ints → palette colours (N, 3, H, W); IGNORE_LABEL pixels are black."""
    colours = palette(palette_name)
    labelled = semantic.long()[semantic.long() != IGNORE_LABEL]
    if labelled.numel() and labelled.max() >= len(colours):
        raise InputError(f"segmentation class {int(labelled.max())} has no colour in the '{palette_name}' palette "
                         f"(classes 0..{len(colours) - 1}, and {IGNORE_LABEL} for unlabelled pixels)")
    with_black = torch.cat([colours, torch.zeros(1, 3)])
    index = torch.where(semantic.long() == IGNORE_LABEL, len(colours), semantic.long())
    return with_black[index].permute(0, 3, 1, 2)


def depth_to_condition(depth: Tensor) -> Tensor:
    """Disparity maps (N, 1, H, W) in [0, 1] → the 3-channel grey condition depth adapters and ControlNets take."""
    return depth.float().expand(-1, 3, -1, -1).contiguous()


def structure(conditions: Tensor) -> Tensor:
    """Where conditions (N, C, H, W) have structure, (N, 1, H, W) in {0, 1}: an edge map's edges, the outlines of a
    depth or label map (Canny on it). Evaluation masks are drawn to hold it; where a mask holds none there is
    nothing to control, and in-mask fidelity is undefined (bench.stages.score)."""
    if conditions.shape[1] == 1:
        return (conditions > 0.5).float()
    return canny(conditions)


COMPUTED = {"canny": canny, "canny-opencv": canny_opencv, "colour-grid": colour_grid}  # the others: FROM_MANIFEST


def compute_condition(name: Condition, images: Tensor) -> Tensor:
    if name not in COMPUTED:
        raise InputError(f"condition '{name}' is not computed from images; computed: {', '.join(COMPUTED)}; "
                         f"read from the manifest: {', '.join(FROM_MANIFEST)}")
    return COMPUTED[name](images)


def manifest_condition(name: str, array: np.ndarray, seg_palette: str = "shapes") -> Tensor:
    """A condition PNG from the manifest (H, W) or (H, W, 3) → (C, H, W) in [0, 1]; seg PNGs hold labels."""
    tensor = torch.from_numpy(np.asarray(array))
    if name == "seg":
        if tensor.ndim != 2:
            raise InputError("a seg condition PNG must hold one label per pixel (a grey PNG), not colours")
        return seg_to_colour(tensor[None], seg_palette)[0]
    single = (tensor.float() / 255)[None] if tensor.ndim == 2 else tensor.float().permute(2, 0, 1)[:1] / 255
    if name == "edges":
        return single
    if name == "depth":
        return depth_to_condition(single[None])[0]
    raise InputError(f"condition '{name}' is not read from the manifest; known: {', '.join(FROM_MANIFEST)}")
