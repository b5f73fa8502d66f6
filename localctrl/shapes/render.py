"""Render a scene to its image and exact ground truth (no anti-aliasing: every pixel has one owner).

Depth uses the "height in the visual field" cue: every object is an upright card standing on a ground plane (seen
from above at an angle) at its lowest row, so its disparity is the ground's at that row — linear from DEPTH_FAR (a
card standing on the top row) to DEPTH_NEAR (on the bottom row) — over its whole silhouette; the plain background
is a far backdrop at disparity 0. An object drawn lower is nearer, so depth is readable from the image alone
(localctrl.shapes.depth_reader does it exactly on renders) while the images stay what shapes-base was trained on.
The map is a MiDaS-style disparity in 0-255, nearer brighter. With `allow_overlap` the painter's order is the layer
order, which may put a farther card in front of a nearer one: depth still follows each visible pixel's owner.
"""

from dataclasses import dataclass

import numpy as np
import torch

from localctrl.shapes.scene import BACKGROUNDS, COLOURS, SHAPES, Scene

GRADIENT_SPAN = 40  # a gradient background runs from base+40 (top) to base-40 (bottom)
DEPTH_FAR, DEPTH_NEAR = 64, 255  # disparity of a card standing on the top / bottom row (MiDaS-style: nearer is brighter)
BACKDROP = 0  # disparity of the background: far behind every card
# Bumped whenever a condition's ground truth changes (depth: 1 layer depth, 2 cards standing on the ground): adapters
# trained on the world's conditions are cached under a key that includes it (bench.keys.training_key).
GROUND_TRUTH_VERSIONS = {"depth": 2}


@dataclass
class Rendered:
    image: np.ndarray  # (H, W, 3) uint8 RGB
    instance: np.ndarray  # (H, W) uint8: 0 background, k = the object on layer k
    semantic: np.ndarray  # (H, W) uint8: 0 background, 1 + index in SHAPES
    depth: np.ndarray  # (H, W) uint8: each object's disparity (from its lowest row), BACKDROP elsewhere
    edges: np.ndarray  # (H, W) uint8 0/255: 1-px inner boundary of every visible object region
    object_masks: list[np.ndarray]  # per object, in layer order: (H, W) uint8 0/255 of its visible pixels


def background(scene: Scene, size: int) -> np.ndarray:
    base = np.array(BACKGROUNDS[scene.background], dtype=np.float32)
    image = np.broadcast_to(base, (size, size, 3)).copy()
    if scene.gradient:
        ramp = np.linspace(GRADIENT_SPAN, -GRADIENT_SPAN, size, dtype=np.float32)
        image += ramp[:, None, None]
    return np.clip(image, 0, 255).round().astype(np.uint8)


def ground_depth(size: int) -> np.ndarray:
    """(size,) uint8 disparity of a card standing on each image row: DEPTH_FAR on the top row, DEPTH_NEAR on the bottom."""
    return np.linspace(DEPTH_FAR, DEPTH_NEAR, size).round().astype(np.uint8)


def depth_map(instance: np.ndarray) -> np.ndarray:
    """(H, W) uint8 depth of an instance map: each object's disparity from its lowest visible row, BACKDROP elsewhere."""
    ground = ground_depth(instance.shape[0])
    depth = np.full(instance.shape, BACKDROP, dtype=np.uint8)
    for label in np.unique(instance[instance > 0]):
        region = instance == label
        depth[region] = ground[np.nonzero(region.any(axis=1))[0].max()]
    return depth


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
        depth=depth_map(instance),
        edges=inner_boundary(instance).astype(np.uint8) * 255,
        object_masks=[(instance == layer).astype(np.uint8) * 255 for layer in layers],
    )


def render_images(scenes: list[Scene], size: int) -> torch.Tensor:
    """The scenes' images as one uint8 tensor (N, 3, size, size), the layout models and metrics take."""
    return torch.from_numpy(np.stack([render(scene, size).image for scene in scenes])).permute(0, 3, 1, 2).contiguous()
