"""Validation during training: in-mask fidelity of images sampled with the adapter being trained.

Edge F1 in the mask is always measured (against exact edges in the shapes world, canny of the real image on a
manifest). A depth or seg adapter on the shapes world is also read back with the world's own readers: mean absolute
depth error and label accuracy in the mask, and that is what picks the best checkpoint; on real data, which has no
cheap exact reader, edge F1 is the proxy for structure.

`edge_scores` (precision / recall / F1 of detected edges against reference edges, with a tolerance) is shared with
the benchmark's edge metrics (bench.metrics.fidelity), so training and benchmark measure edges the same way.
"""

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from localctrl.config import SamplerSettings
from localctrl.data.conditions import canny
from localctrl.data.examples import Batch
from localctrl.local_adapter import LocalAdapter
from localctrl.models.stacks import Stack
from localctrl.sampling import Request, sample, to_uint8
from localctrl.shapes.depth_reader import read_depth
from localctrl.shapes.segmenter import segment


def dilate(edges: Tensor, tolerance: int) -> Tensor:
    """Binary maps (N, 1, H, W) grown by `tolerance` px (a (2t+1)² square): a match may be that far off."""
    return F.max_pool2d(edges.float(), 2 * tolerance + 1, stride=1, padding=tolerance) if tolerance else edges.float()


@dataclass
class EdgeScores:
    precision: Tensor  # (N,) detected edge pixels in the region that lie near a reference edge
    recall: Tensor  # (N,) reference edge pixels in the region that lie near a detected edge
    f1: Tensor  # (N,)
    density: Tensor  # (N,) fraction of the region's pixels that are detected edges


def edge_scores(detected: Tensor, reference: Tensor, region: Tensor, tolerance: int = 1) -> EdgeScores:
    """Per-sample scores inside `region` (N, 1, H, W) in {0, 1}. Empty sets score 1 (nothing missed / nothing wrong)."""
    detected, reference, region = detected.float() * region, reference.float() * region, region.float()
    true_detected = (detected * dilate(reference, tolerance)).sum(dim=(1, 2, 3))
    found_reference = (reference * dilate(detected, tolerance)).sum(dim=(1, 2, 3))
    n_detected, n_reference = detected.sum(dim=(1, 2, 3)), reference.sum(dim=(1, 2, 3))
    precision = torch.where(n_detected > 0, true_detected / n_detected.clamp(min=1), torch.ones_like(n_detected))
    recall = torch.where(n_reference > 0, found_reference / n_reference.clamp(min=1), torch.ones_like(n_reference))
    f1 = torch.where(precision + recall > 0, 2 * precision * recall / (precision + recall).clamp(min=1e-8), torch.zeros_like(recall))
    density = n_detected / region.sum(dim=(1, 2, 3)).clamp(min=1)
    return EdgeScores(precision, recall, f1, density)


VALIDATION_GUIDANCE = 4.0  # fixed (the shapes world's CFG): validations compare one run's steps with each other


# The metric that picks the best checkpoint, per condition read back in the shapes world, and whether higher is better.
SELECTION = {"depth": ("val_depth_mae_in", False), "seg": ("val_seg_acc_in", True)}
EDGE_SELECTION = ("val_edge_f1_in", True)


def selection(condition: str, world: bool) -> tuple[str, bool]:
    """(validation metric that picks the best checkpoint, higher is better) for a condition; world: the shapes world."""
    return SELECTION.get(condition, EDGE_SELECTION) if world else EDGE_SELECTION


def _read(images: Tensor, reader) -> Tensor:
    pictures = to_uint8(images).permute(0, 2, 3, 1).cpu().numpy()
    return torch.from_numpy(np.stack([reader(picture) for picture in pictures])).float()[:, None]


def _in_mask_mean(values: Tensor, masks: Tensor) -> float:
    return float(((values * masks).sum(dim=(1, 2, 3)) / masks.sum(dim=(1, 2, 3)).clamp(min=1)).mean())


@torch.no_grad()
def validate(stack: Stack, adapter: LocalAdapter, batch: Batch, steps: int, seed: int, masked: bool,
             condition: str = "canny", world: bool = True, scale: float = 1.0) -> tuple[dict, Tensor]:
    """In-mask fidelity (edge F1; depth error / label accuracy for depth / seg in the shapes world) and out-of-mask
    edge density of images sampled for `batch`."""
    requests = [Request(caption, seed + k, condition_map, mask if masked else None)
                for k, (caption, condition_map, mask) in enumerate(zip(batch.captions, batch.conditions, batch.masks))]
    images = sample(stack, requests, adapter, SamplerSettings(steps=steps, guidance=VALIDATION_GUIDANCE, batch_size=16, scale=scale),
                    progress=False)
    detected = canny(images)
    inside = edge_scores(detected, batch.reference_edges, batch.masks)
    outside = edge_scores(detected, batch.reference_edges, 1 - batch.masks)
    metrics = {"val_edge_f1_in": float(inside.f1.mean()), "val_edge_density_out": float(outside.density.mean())}
    if world and condition == "depth" and batch.reference_depth is not None:
        error = (_read(images, read_depth) - batch.reference_depth).abs()
        metrics["val_depth_mae_in"] = _in_mask_mean(error, batch.masks)
    if world and condition == "seg" and batch.reference_labels is not None:
        hits = (_read(images, segment) == batch.reference_labels[:, None].float()).float()
        metrics["val_seg_acc_in"] = _in_mask_mean(hits, batch.masks)
    return metrics, images
