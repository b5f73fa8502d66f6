"""Image grids with captions and the mask outlined, for looking at samples (model cards, validation, sample)."""

import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display on servers and CI
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

OUTLINE_COLOUR = torch.tensor([255, 0, 255], dtype=torch.uint8)  # magenta: rare in the shapes world and in photos
UPSCALE = 4  # outline drawn at 4× so it stays one thin line instead of hiding a whole pixel row of the image


def outline_mask(image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """uint8 image (3, H, W) upscaled 4× with the boundary of mask (1, H, W) drawn on it."""
    big = image.repeat_interleave(UPSCALE, 1).repeat_interleave(UPSCALE, 2).clone()
    region = (mask > 0.5).float().repeat_interleave(UPSCALE, 1).repeat_interleave(UPSCALE, 2)[None]
    boundary = (F.max_pool2d(region, 5, stride=1, padding=2) - region)[0, 0] > 0  # a 2-px line just outside the region
    big[:, boundary] = OUTLINE_COLOUR[:, None]
    return big


def save_captioned_grid(images: torch.Tensor, captions: list[str], path: str | Path, masks: torch.Tensor | None = None,
                        columns: int = 6) -> Path:
    """uint8 images (N, 3, H, W) in a grid, each with its prompt underneath and, if given, its mask outlined."""
    columns = max(1, min(columns, len(images)))
    rows = (len(images) + columns - 1) // columns
    figure, axes = plt.subplots(rows, columns, figsize=(columns * 1.9, rows * 2.6), squeeze=False)
    for axis in axes.flat:
        axis.axis("off")
    for k, (axis, image, caption) in enumerate(zip(axes.flat, images, captions)):
        shown = outline_mask(image, masks[k]) if masks is not None else image
        axis.imshow(shown.permute(1, 2, 0).numpy(), interpolation="nearest")
        axis.set_title(textwrap.fill(caption, 22), fontsize=7)  # wrapped so neighbouring captions never overlap
    figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
