"""Detection: read the condition back from each generated image (edges, depth, labels: bench.metrics.detectors), cached.

Detector outputs are PNGs keyed by the image's task key (same key, same image, same detection) under
`<out>/detected/<detector>/`, so rescoring with other metric settings does not rerun detectors; scoring reads
them back a batch at a time (`Detections.load`).
"""

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import torch
from rich.progress import Progress

from bench.metrics.detectors import DETECTORS, load_detector
from bench.metrics.fidelity import scaled_by_max
from bench.stages.plan import Task
from localctrl.common.files import png_problem, read_image, read_rgb, write_png

DEPTH_UNIT = 257  # depth maps are stored as 16-bit PNGs in units of 1/257 of the 0-255 scale (255 → 65535)


def stored(detector: str, maps: torch.Tensor) -> list[np.ndarray]:
    """Detector outputs (N, 1, H, W) as the arrays written: edges 0/255, labels as they are, depth as 16 bits — a
    relative detector's (DPT) scaled by its own maximum to 255 first, as ControlNet++ scales it; an absolute one's
    (the shapes world's, already in 0-255 disparity) as it is."""
    spec = DETECTORS[detector]
    if spec.kind == "edges":
        return [(m[0] * 255).round().to(torch.uint8).numpy() for m in maps]
    if spec.kind == "labels":
        return [m[0].round().to(torch.uint8).numpy() for m in maps]
    maps = maps.float().clamp(min=0)
    if spec.relative:
        maps = scaled_by_max(maps)
    return [(m[0].clamp(max=255) * DEPTH_UNIT).round().numpy().astype(np.uint16) for m in maps]


def read_back(kind: str, array: np.ndarray) -> torch.Tensor:
    """A stored map as (1, H, W) float: edges in {0, 1}, labels, depth in 0-255."""
    values = torch.from_numpy(array.astype(np.float32))[None]
    return values / 255 if kind == "edges" else values / DEPTH_UNIT if kind == "depth" else values


@cache
def _detector(name: str, device: str):
    return load_detector(name, device)


@dataclass
class Detections:
    """Where a detector's outputs are (task key → PNG), read back for the tasks being scored."""

    paths: dict[str, Path]
    kind: str  # edges, depth or labels (bench.metrics.detectors)

    def load(self, tasks: list[Task]) -> torch.Tensor:
        """(N, 1, H, W) float detector outputs of `tasks` (read_back's units)."""
        return torch.stack([read_back(self.kind, read_image(self.paths[task.key])) for task in tasks])


def detect(tasks: list[Task], detector: str, out: Path, say: Callable[[str], None] = print, progress: Progress | None = None,
           batch: int = 64, device: str = "cpu", name: str | None = None) -> Detections:
    """The detector's output of every task's image, computed for those without an intact cached PNG (`say` names the
    damaged ones); the detector is loaded only when some image needs it. `name` (default: the detector's) names the
    cache folder: a stand-in's outputs are never taken for the real network's."""
    kind = DETECTORS[detector].kind
    folder = out / "detected" / DETECTORS[detector].folder(name or detector)
    paths = {task.key: folder / f"{task.key}.png" for task in tasks}
    problems = {task.key: problem for task in tasks if (problem := png_problem(paths[task.key])) is not None}
    for key, problem in problems.items():
        if problem != "missing":
            say(f"{paths[key]} is {problem}: detected again")
    missing = [task for task in tasks if task.key in problems]
    bar = progress.add_task(f"detect {detector}", total=len(missing)) if progress else None
    for start in range(0, len(missing), batch):
        part = missing[start : start + batch]
        images = torch.stack([read_rgb(task.path) for task in part])
        for task, array in zip(part, stored(detector, _detector(detector, device)(images))):
            write_png(paths[task.key], array)
        if progress:
            progress.advance(bar, len(part))
    return Detections(paths, kind)
