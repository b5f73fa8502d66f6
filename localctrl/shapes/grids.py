"""Image grids with captions, for looking at samples (model cards, validation)."""

import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display on servers and CI
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402


def save_captioned_grid(images: torch.Tensor, captions: list[str], path: str | Path, columns: int = 6) -> Path:
    """uint8 images (N, 3, H, W) in a grid, each with its prompt wrapped underneath."""
    rows = (len(images) + columns - 1) // columns
    figure, axes = plt.subplots(rows, columns, figsize=(columns * 1.9, rows * 2.6), squeeze=False)
    for axis in axes.flat:
        axis.axis("off")
    for axis, image, caption in zip(axes.flat, images, captions):
        axis.imshow(image.permute(1, 2, 0).numpy(), interpolation="nearest")
        axis.set_title(textwrap.fill(caption, 22), fontsize=7)  # wrapped so neighbouring captions never overlap
    figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
