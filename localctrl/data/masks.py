"""Binary control masks for any dataset: random boxes and blobs, per-object masks, and checks for user masks.

Every mask is a float32 (H, W) array holding only 0.0 and 1.0, where 1 marks the region the user wants controlled.
Random masks depend only on the `numpy.random.Generator` passed in, so a seeded generator reproduces them exactly.
"""

import math
from collections.abc import Sequence
from typing import get_args

import numpy as np
from scipy import ndimage

from localctrl.config import REFERENCE_MIN_AREA, MaskKind
from localctrl.errors import InputError

MASK_KINDS: tuple[str, ...] = get_args(MaskKind)

_LOG_MAX_BOX_ASPECT = math.log(4.0)


def full_mask(height: int, width: int) -> np.ndarray:
    """Control everywhere."""
    _check_size(height, width)
    return np.ones((height, width), dtype=np.float32)


def empty_mask(height: int, width: int) -> np.ndarray:
    """Control nowhere."""
    _check_size(height, width)
    return np.zeros((height, width), dtype=np.float32)


def random_box(
    rng: np.random.Generator, height: int, width: int, min_area: float = REFERENCE_MIN_AREA, max_area: float = 0.5
) -> np.ndarray:
    """One axis-aligned rectangle covering a fraction in [min_area, max_area] of the image, placed uniformly."""
    _check_size(height, width)
    lo, hi = _pixel_bounds(height, width, min_area, max_area)

    # For each box height h, the widths w that keep h*w within [lo, hi] and the box inside the image.
    hs = np.arange(1, height + 1)
    w_lo = -(-lo // hs)  # ceil division
    w_hi = np.minimum(width, hi // hs)
    if not (w_lo <= w_hi).any():
        # [lo, hi] holds no product h*w (e.g. min_area == max_area on an awkward pixel count): take the smallest
        # rectangle of at least lo pixels instead; h = height, w = ceil(lo / height) always fits.
        areas = np.where(w_lo <= width, hs * w_lo, np.iinfo(np.int64).max)
        w_hi = np.where(areas == areas.min(), w_lo, 0)
    valid = w_lo <= w_hi

    # Draw the target area uniformly and a log-uniform aspect ratio (height / width), then snap to the nearest valid
    # rectangle. The ratio stays within 1:4..4:1 where the image allows it, so boxes are object-like, not slivers.
    area = rng.uniform(lo, hi)
    fits_lo, fits_hi = math.log(area / width**2), math.log(height**2 / area)
    log_r = rng.uniform(*np.clip([-_LOG_MAX_BOX_ASPECT, _LOG_MAX_BOX_ASPECT], fits_lo, fits_hi))
    h_target = math.sqrt(area * math.exp(log_r))
    h = int(hs[valid][np.argmin(np.abs(hs[valid] - h_target))])
    w = int(np.clip(round(area / h), w_lo[h - 1], w_hi[h - 1]))

    top = int(rng.integers(0, height - h + 1))
    left = int(rng.integers(0, width - w + 1))
    mask = empty_mask(height, width)
    mask[top : top + h, left : left + w] = 1.0
    return mask


def box_holding(
    structure: np.ndarray, share: float, rng: np.random.Generator, min_area: float, max_area: float, tries: int = 100
) -> np.ndarray:
    """A random box (random_box) holding at least `share` of the structure's pixels (H, W) in {0, 1}: boxes are drawn
    from `rng` until one does, else the one of `tries` holding most. Share 0, or no structure at all, gives the first
    box, so the same generator draws the same box as random_box."""
    height, width = structure.shape
    total = float(structure.sum())
    best, best_share = None, -1.0
    for _ in range(tries):
        box = random_box(rng, height, width, min_area, max_area)
        held = float((box * structure).sum()) / total if total else 0.0
        if share == 0 or total == 0 or held >= share:
            return box
        if held > best_share:
            best, best_share = box, held
    return best


def random_blob(
    rng: np.random.Generator,
    height: int,
    width: int,
    min_area: float = REFERENCE_MIN_AREA,
    max_area: float = 0.5,
    smoothness: float = 0.15,
) -> np.ndarray:
    """A free-form region: the highest part of a smooth random field, covering a fraction in [min_area, max_area].

    `smoothness` is the field's Gaussian blur as a fraction of the shorter side; larger gives rounder, fewer blobs.
    """
    _check_size(height, width)
    if not smoothness > 0:
        raise ValueError(f"smoothness must be > 0, got {smoothness}")
    lo, hi = _pixel_bounds(height, width, min_area, max_area)
    n_pixels = int(rng.integers(lo, hi + 1))
    noise = rng.standard_normal((height, width))
    # Reflecting (the default) at the borders rather than wrapping, so a blob never spills to the opposite edge.
    field = ndimage.gaussian_filter(noise, sigma=smoothness * min(height, width))
    # Keeping exactly the n_pixels highest values is the quantile threshold, with no off-by-one from ties.
    top = np.argpartition(field.ravel(), -n_pixels)[-n_pixels:]
    mask = np.zeros(height * width, dtype=np.float32)
    mask[top] = 1.0
    return mask.reshape(height, width)


def object_mask(object_masks: Sequence[np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """One of a dataset's per-object masks (0/1, 0/255 or bool), chosen uniformly, as float32 0/1."""
    if len(object_masks) == 0:
        raise ValueError("object_mask needs at least one object mask, got an empty sequence")
    i = int(rng.integers(len(object_masks)))
    chosen = np.asarray(object_masks[i])
    if chosen.ndim != 2:
        raise InputError(f"object mask {i}: expected a 2-D (H, W) array, got shape {chosen.shape}")
    return check_mask(chosen, *chosen.shape, name=f"object mask {i}")


def make_mask(
    kind: str,
    rng: np.random.Generator,
    height: int,
    width: int,
    object_masks: Sequence[np.ndarray] | None = None,
    min_area: float = REFERENCE_MIN_AREA,
    max_area: float = 0.5,
) -> np.ndarray:
    """A mask of the given kind (one of MASK_KINDS); min_area/max_area apply to "box" and "blob"."""
    _check_areas(min_area, max_area)
    if kind == "box":
        return random_box(rng, height, width, min_area, max_area)
    if kind == "blob":
        return random_blob(rng, height, width, min_area, max_area)
    if kind == "object":
        if object_masks is None:
            raise InputError('mask kind "object" needs object_masks (the dataset\'s per-object masks)')
        return check_mask(object_mask(object_masks, rng), height, width, name="object mask")
    if kind == "full":
        return full_mask(height, width)
    if kind == "empty":
        return empty_mask(height, width)
    raise InputError(f"unknown mask kind {kind!r}; expected one of {', '.join(MASK_KINDS)}")


def check_mask(mask: np.ndarray, height: int, width: int, name: str = "mask") -> np.ndarray:
    """Validate a user-supplied mask (2-D, (height, width), only 0/1 or 0/255 or bool) and return it as float32 0/1."""
    mask = np.asarray(mask)
    if mask.shape != (height, width):
        raise InputError(f"{name}: expected shape ({height}, {width}), got {mask.shape}")
    if mask.dtype == bool:
        return mask.astype(np.float32)
    values = np.unique(mask)  # sorted; NaN, if any, comes last
    if set(values.tolist()) <= {0, 1}:
        return mask.astype(np.float32)
    if set(values.tolist()) <= {0, 255}:
        return (mask == 255).astype(np.float32)
    shown = ", ".join(_format_value(v) for v in values[:5]) + (", ..." if len(values) > 5 else "")
    raise InputError(f"{name}: expected a binary mask (0/1 or 0/255), found values [{shown}]")


def _format_value(v) -> str:
    # Whole numbers print without ".0" so uint8 and float masks read the same in messages.
    v = v.item()
    return str(int(v)) if isinstance(v, float) and v.is_integer() else str(v)


def _check_size(height: int, width: int) -> None:
    if height < 1 or width < 1:
        raise ValueError(f"mask size must be positive, got height={height}, width={width}")


def _check_areas(min_area: float, max_area: float) -> None:
    if not 0 < min_area <= max_area <= 1:
        raise ValueError(f"need 0 < min_area <= max_area <= 1, got min_area={min_area}, max_area={max_area}")


def _pixel_bounds(height: int, width: int, min_area: float, max_area: float) -> tuple[int, int]:
    """Pixel counts [lo, hi] allowed by the area fractions; hi never drops below lo when rounding squeezes them."""
    _check_areas(min_area, max_area)
    n = height * width
    lo = max(1, math.ceil(min_area * n))
    hi = max(lo, math.floor(max_area * n))
    return lo, hi
