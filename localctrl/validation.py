"""Validation during training: in-mask edge fidelity of images sampled with the adapter being trained.

`edge_scores` (precision / recall / F1 of detected edges against reference edges, with a tolerance) is shared with
the benchmark's edge metrics (bench.metrics.fidelity), so training and benchmark measure edges the same way.
"""

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from localctrl.config import SamplerSettings
from localctrl.data.conditions import canny
from localctrl.data.examples import Batch
from localctrl.local_adapter import LocalAdapter
from localctrl.models.stacks import Stack
from localctrl.sampling import Request, sample


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


@torch.no_grad()
def validate(stack: Stack, adapter: LocalAdapter, batch: Batch, steps: int, seed: int, masked: bool) -> tuple[dict, Tensor]:
    """In-mask edge F1 against the reference edges and out-of-mask edge density of images sampled for `batch`."""
    requests = [Request(caption, seed + k, condition, mask if masked else None)
                for k, (caption, condition, mask) in enumerate(zip(batch.captions, batch.conditions, batch.masks))]
    images = sample(stack, requests, adapter, SamplerSettings(steps=steps, guidance=VALIDATION_GUIDANCE, batch_size=16),
                    progress=False)
    detected = canny(images)
    inside = edge_scores(detected, batch.reference_edges, batch.masks)
    outside = edge_scores(detected, batch.reference_edges, 1 - batch.masks)
    return {"val_edge_f1_in": float(inside.f1.mean()), "val_edge_density_out": float(outside.density.mean())}, images
