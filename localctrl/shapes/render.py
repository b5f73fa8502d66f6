"""Render a scene to its image and exact ground truth (no anti-aliasing: every pixel has one owner)."""

from dataclasses import dataclass

import numpy as np
import torch

from localctrl.shapes.scene import BACKGROUNDS, COLOURS, SHAPES, Scene

GRADIENT_SPAN = 40  # a gradient background runs from base+40 (top) to base-40 (bottom)
DEPTH_STEP = 40  # depth map value of layer k is k·40 (background 0): nearer is brighter, as in MiDaS


@dataclass
class Rendered:
    image: np.ndarray  # (H, W, 3) uint8 RGB
    instance: np.ndarray  # (H, W) uint8: 0 background, k = the object on layer k
    semantic: np.ndarray  # (H, W) uint8: 0 background, 1 + index in SHAPES
    depth: np.ndarray  # (H, W) uint8: layer · DEPTH_STEP
    edges: np.ndarray  # (H, W) uint8 0/255: 1-px inner boundary of every visible object region
    object_masks: list[np.ndarray]  # per object, in layer order: (H, W) uint8 0/255 of its visible pixels


def background(scene: Scene, size: int) -> np.ndarray:
    base = np.array(BACKGROUNDS[scene.background], dtype=np.float32)
    image = np.broadcast_to(base, (size, size, 3)).copy()
    if scene.gradient:
        ramp = np.linspace(GRADIENT_SPAN, -GRADIENT_SPAN, size, dtype=np.float32)
        image += ramp[:, None, None]
    return np.clip(image, 0, 255).round().astype(np.uint8)


def inner_boundary(instance: np.ndarray) -> np.ndarray:
    """Pixels of an object whose 4-neighbour belongs to a lower layer (or the background).

    One pixel wide: where object B occludes object A only B's side is marked, and image borders are not edges.
    """
    padded = np.pad(instance, 1, mode="edge")
    centre = padded[1:-1, 1:-1]
    lower = np.zeros_like(centre, dtype=bool)
    for dy, dx in ((-1, 0), (1, 0), (0, -1), (0, 1)):
        lower |= padded[1 + dy : 1 + dy + centre.shape[0], 1 + dx : 1 + dx + centre.shape[1]] < centre
    return lower & (centre > 0)


def render(scene: Scene, size: int) -> Rendered:
    image = background(scene, size)
    instance = np.zeros((size, size), dtype=np.uint8)
    semantic = np.zeros((size, size), dtype=np.uint8)
    for obj in sorted(scene.objects, key=lambda o: o.layer):  # painter's order: higher layers on top
        region = obj.region(size)
        image[region] = COLOURS[obj.colour]
        instance[region] = obj.layer
        semantic[region] = 1 + SHAPES.index(obj.shape)
    layers = sorted(obj.layer for obj in scene.objects)
    return Rendered(
        image=image,
        instance=instance,
        semantic=semantic,
        depth=(instance.astype(np.uint16) * DEPTH_STEP).clip(0, 255).astype(np.uint8),
        edges=inner_boundary(instance).astype(np.uint8) * 255,
        object_masks=[(instance == layer).astype(np.uint8) * 255 for layer in layers],
    )


def render_images(scenes: list[Scene], size: int) -> torch.Tensor:
    """The scenes' images as one uint8 tensor (N, 3, size, size), the layout models and metrics take."""
    return torch.from_numpy(np.stack([render(scene, size).image for scene in scenes])).permute(0, 3, 1, 2).contiguous()
