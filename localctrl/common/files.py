"""Writing files so that a kill mid-write never leaves a torn one, and reading images with errors that name the file.

Every cached or finished file localctrl writes (images, manifests, checkpoints, scores, JSON) goes through `atomic`:
the data goes to a temporary file beside the target, which replaces the target only once it is complete.
"""

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from localctrl.errors import InputError


@contextmanager
def atomic(path: str | Path) -> Iterator[Path]:
    """A temporary path to write to; on success it replaces `path` (os.replace is atomic), on failure it is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}-{threading.get_ident()}.tmp")  # unique per writer thread
    try:
        yield temporary
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def write_text(path: str | Path, text: str) -> Path:
    with atomic(path) as temporary:
        temporary.write_text(text, encoding="utf-8")
    return Path(path)


def write_png(path: str | Path, array: np.ndarray, **options) -> Path:
    """A uint8 (H, W) or (H, W, 3) array as a PNG (PIL's `options`, e.g. compress_level); PNGs hold no timestamp, so the
    same array always gives the same bytes."""
    with atomic(path) as temporary:
        Image.fromarray(array).save(temporary, format="PNG", **options)
    return Path(path)


def read_image(path: str | Path, mode: str | None = None) -> np.ndarray:
    """An image file as an array (converted to PIL `mode`, e.g. "RGB" or "L", when given); unreadable → InputError."""
    try:
        with Image.open(path) as image:
            return np.array(image.convert(mode) if mode else image)
    except (OSError, SyntaxError, ValueError) as error:
        raise InputError(f"{path}: not a readable image ({error})") from None


def read_rgb(path: str | Path) -> torch.Tensor:
    """An image file as uint8 (3, H, W), the layout the sampler's outputs and the metrics use."""
    return torch.from_numpy(read_image(path, "RGB")).permute(2, 0, 1)
