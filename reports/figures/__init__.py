"""Report figures (matplotlib, Agg): each module draws one figure from runs; `save` writes it as PNG and PDF."""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display on servers and CI
import matplotlib.pyplot as plt  # noqa: E402

MASK_COLOUR = "#ff00ff"  # magenta, as localctrl.common.grids outlines masks: rare in the shapes world and in photos
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")


def colour(index: int, count: int):
    """Distinct colours: tab10 up to 10 series, tab20 beyond."""
    palette = plt.get_cmap("tab10" if count <= 10 else "tab20")
    return palette(index % palette.N)


def save(figure, folder: Path, name: str) -> list[Path]:
    """`name`.png (200 dpi, for screens and the README) and `name`.pdf (vector, for the paper)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"{name}.png", folder / f"{name}.pdf"]
    for path in paths:
        figure.savefig(path, dpi=200, bbox_inches="tight")
    plt.close(figure)
    return paths
