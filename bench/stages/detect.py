"""Detection: read the condition back from each generated image (edges; the shapes world's segmentation), cached.

Detector outputs are PNGs keyed by the image's task key (same key, same image, same detection) under
`<out>/detected/<detector>/`, so rescoring with other metric settings does not rerun detectors; scoring reads
them back a batch at a time (`Detections.load`).
"""

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from rich.progress import Progress

from bench.stages.plan import Task
from localctrl.common.files import png_problem, read_image, read_rgb, write_png
from localctrl.data.conditions import canny, canny_opencv
from localctrl.shapes.segmenter import segment

EDGE_DETECTORS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {"canny": canny, "canny-opencv": canny_opencv}


def shapes_segmentation(images: torch.Tensor) -> torch.Tensor:
    """The shapes world's exact colour segmenter, per image: (N, 1, H, W) float labels."""
    return torch.stack([torch.from_numpy(segment(image.permute(1, 2, 0).numpy())) for image in images]).float()[:, None]


DETECTORS = {**EDGE_DETECTORS, "shapes-seg": shapes_segmentation}
SCALE = {"shapes-seg": 1}  # labels are stored as they are; edge maps in [0, 1] as 0/255


@dataclass
class Detections:
    """Where a detector's outputs are (task key → PNG), read back for the tasks being scored."""

    paths: dict[str, Path]
    scale: int  # stored values ÷ scale: edges as 0/255, labels as they are

    def load(self, tasks: list[Task]) -> torch.Tensor:
        """(N, 1, H, W) float detector outputs of `tasks`."""
        return torch.stack([torch.from_numpy(read_image(self.paths[task.key])).float()[None] / self.scale for task in tasks])


def detect(tasks: list[Task], detector: str, out: Path, say: Callable[[str], None] = print, progress: Progress | None = None,
           batch: int = 64) -> Detections:
    """The detector's output of every task's image, computed for those without an intact cached PNG (`say` names the
    damaged ones)."""
    scale = SCALE.get(detector, 255)
    folder = out / "detected" / detector
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
        maps = DETECTORS[detector](images.float() / 255 if detector in EDGE_DETECTORS else images)
        for task, values in zip(part, maps):
            write_png(paths[task.key], (values[0] * scale).round().to(torch.uint8).numpy())
        if progress:
            progress.advance(bar, len(part))
    return Detections(paths, scale)
