"""Qualitative grid from a suite run's `qualitative/` artifacts: one row per item (same prompt and seed across the row).

Columns: the condition with the mask tinted and outlined, then each method's image with the mask outlined, so a
reader can check control inside the mask and preservation outside it at a glance. Pixels are shown unsmoothed.
"""

import json
import textwrap
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import ListedColormap
from PIL import Image

from reports.figures import MASK_COLOUR


def _outline(axis, mask: np.ndarray) -> None:
    # A dark halo under the magenta line keeps it visible on light and on magenta-ish backgrounds alike.
    axis.contour(mask, levels=[0.5], colors=["black"], linewidths=2.4)
    axis.contour(mask, levels=[0.5], colors=[MASK_COLOUR], linewidths=1.2)


def qualitative_figure(folder: Path, order: list[str] | None = None, max_items: int = 4):
    """None when the folder has no qualitative.json (runs logged before bench wrote it)."""
    index = folder / "qualitative.json"
    if not index.is_file():
        return None
    data = json.loads(index.read_text())
    labels = data["methods"]
    methods = [m for m in (order or labels) if m in labels]
    items = data["items"][:max_items]
    if not items or not methods:
        return None
    columns = 1 + len(methods)
    figure, axes = plt.subplots(len(items), columns, figsize=(1.55 * columns + 1.6, 1.75 * len(items) + 0.5), squeeze=False)
    tint = ListedColormap([(0, 0, 0, 0), (1.0, 0.0, 1.0, 0.28)])  # transparent outside, translucent magenta inside
    for row, item in enumerate(items):
        mask = np.asarray(Image.open(folder / item["mask"])) > 127
        condition = np.asarray(Image.open(folder / item["condition"]))
        axis = axes[row, 0]
        axis.imshow(condition, cmap="gray" if condition.ndim == 2 else None, vmin=0, vmax=255, interpolation="nearest")
        axis.imshow(mask.astype(float), cmap=tint, vmin=0, vmax=1, interpolation="nearest")
        _outline(axis, mask)
        for column, method in enumerate(methods, start=1):
            axis = axes[row, column]
            if method in item["images"]:
                axis.imshow(np.asarray(Image.open(folder / item["images"][method]).convert("RGB")), interpolation="nearest")
                _outline(axis, mask)
            else:
                axis.text(0.5, 0.5, "n/a", ha="center", va="center", transform=axis.transAxes)
        prompt = textwrap.fill(item["prompt"], 24)
        axes[row, 0].text(-0.08, 0.5, f"{prompt}\n(seed {item['seed']})", transform=axes[row, 0].transAxes, ha="right", va="center",
                          fontsize=7)
    titles = ["condition\n(mask tinted)"] + [textwrap.fill(labels[m], 18) for m in methods]
    for column, title in enumerate(titles):
        axes[0, column].set_title(title, fontsize=8)
    for axis in axes.flat:
        axis.set_xticks([]), axis.set_yticks([])
        for spine in axis.spines.values():
            spine.set_visible(False)
    figure.suptitle("Same prompt and seed across each row; mask outlined in magenta", fontsize=9)
    figure.tight_layout()
    return figure
