"""What `localctrl sample` reads: mask specs, condition images, prompts; each error names the input."""

from pathlib import Path

import torch

from localctrl.common.files import read_image
from localctrl.data.masks import check_mask
from localctrl.errors import InputError


def parse_mask(spec: str, size: int) -> torch.Tensor | None:
    """`none` (no mask: global control) | `full` | `box:x0,y0,x1,y1` (pixels, end-exclusive) | a PNG file → (1, H, W)."""
    if spec == "none":
        return None
    if spec == "full":
        return torch.ones(1, size, size)
    if spec.startswith("box:"):
        try:
            x0, y0, x1, y1 = (int(v) for v in spec.removeprefix("box:").split(","))
        except ValueError:
            raise InputError(f"mask '{spec}': expected box:x0,y0,x1,y1 with four integers") from None
        if not (0 <= x0 < x1 <= size and 0 <= y0 < y1 <= size):
            raise InputError(f"mask '{spec}': the box must lie inside the {size}×{size} image with x0 < x1 and y0 < y1")
        mask = torch.zeros(1, size, size)
        mask[:, y0:y1, x0:x1] = 1
        return mask
    path = Path(spec)
    if not path.is_file():
        raise InputError(f"mask '{spec}': not none, full, box:x0,y0,x1,y1, or an existing PNG file")
    return torch.from_numpy(check_mask(read_image(path, "L"), size, size, name=f"mask {path}"))[None]


def load_condition(path: str | Path, channels: int, size: int) -> torch.Tensor:
    """A condition image as (C, H, W) in [0, 1], with C the adapter's input channels; it must be size×size."""
    array = read_image(Path(path), "L" if channels == 1 else "RGB")
    if array.shape[:2] != (size, size):
        raise InputError(f"condition {path}: is {array.shape[1]}×{array.shape[0]}, the model needs {size}×{size}")
    tensor = torch.from_numpy(array).float() / 255
    return tensor[None] if channels == 1 else tensor.permute(2, 0, 1)


def broadcast(values: list, count: int, name: str) -> list:
    """One value for every prompt, or exactly one per prompt."""
    if len(values) in (0, 1):
        return (values or [None]) * count
    if len(values) != count:
        raise InputError(f"{len(values)} {name} values for {count} prompts: give one, or one per prompt")
    return values
