"""Training and validation examples for `localctrl train`: image, caption, condition, mask.

The shapes world is rendered on the fly (0.3 ms an item, exact ground truth); a manifest dataset is read
lazily, item by item. Batches and masks depend only on (seed, step), so a resumed run sees the batches an
uninterrupted one would have seen.
"""

from dataclasses import dataclass

import numpy as np
import torch

from localctrl.common.checkpoints import step_generator
from localctrl.common.files import read_image
from localctrl.config import Condition, DataSource, MaskSettings
from localctrl.data.conditions import FROM_MANIFEST, canny, compute_condition, manifest_condition
from localctrl.data.manifest import read_manifest
from localctrl.data.masks import make_mask
from localctrl.errors import InputError
from localctrl.shapes.render import render
from localctrl.shapes.scene import WorldConfig, sample_scene, split_scenes


@dataclass
class Example:
    image: np.ndarray | None  # (H, W, 3) uint8; None where it was not read (`example(image=False)`)
    caption: str
    ground_truth: dict[str, np.ndarray]  # condition name → array as stored (edges/seg/depth), when known
    object_masks: list[np.ndarray]
    seg_palette: str = "shapes"  # how seg labels are coloured (localctrl.data.conditions.PALETTES)


@dataclass
class Batch:
    images: torch.Tensor | None  # (N, 3, H, W) in [0, 1]; None where they were not read (`images=False`)
    conditions: torch.Tensor  # (N, C, H, W) in [0, 1]
    masks: torch.Tensor  # (N, 1, H, W) in {0, 1}
    captions: list[str]
    reference_edges: torch.Tensor | None  # (N, 1, H, W): ground-truth edges where known, else canny of the image (None
    #                                       without images where some example lacks them)
    reference_depth: torch.Tensor | None = None  # (N, 1, H, W) disparity in 0-255 where every example has depth
    reference_labels: torch.Tensor | None = None  # (N, H, W) int64 seg labels where every example has them
    positions: list[int] | None = None  # the examples' positions in their ExampleSet (what the latent cache is indexed by)


def image_tensor(arrays: list[np.ndarray]) -> torch.Tensor:
    """uint8 (H, W, 3) images → (N, 3, H, W) floats in [0, 1], as the VAE reads them."""
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).float() / 255


def grey(array: np.ndarray) -> np.ndarray:
    """A stored depth map (H, W), or its first channel where it was saved as (H, W, 3)."""
    return array if array.ndim == 2 else array[..., 0]


class ExampleSet:
    """The first `count` items of a split (a manifest: every item when `count` is None; the shapes world needs a count)."""

    def __init__(self, data: DataSource, condition: Condition, image_size: int, split: str | None, count: int | None):
        self.condition, self.image_size, self.source, self.split = condition, image_size, data.source, split
        if data.source == "shapes":
            if count is None:
                raise ValueError("the shapes world renders as many items as asked for: give a count")
            self.world = WorldConfig(size=image_size)
            self.keys = [index for index, _ in split_scenes(data.world_seed, split, count, self.world)]
            self.world_seed = data.world_seed
        else:
            self.items = read_manifest(data.source, split=split)[:count]
            self.keys = list(range(len(self.items)))
            if condition in FROM_MANIFEST:
                lacking = [item.id for item in self.items if condition not in item.conditions]
                if lacking:
                    raise InputError(f"{data.source}: {len(lacking)} item(s) lack condition '{condition}' (first: {lacking[0]})")
        if not self.keys:
            raise InputError(f"dataset {data.source} has no items in split '{split}'")

    def __len__(self) -> int:
        return len(self.keys)

    def example(self, position: int, image: bool = True) -> Example:
        """The item at `position`; `image=False`: a manifest item's image is not read (the shapes world renders it anyway)."""
        if self.source == "shapes":
            scene = sample_scene(self.world_seed, self.keys[position], self.world)
            drawn = render(scene, self.image_size)
            return Example(drawn.image, scene.caption, {"edges": drawn.edges, "seg": drawn.semantic, "depth": drawn.depth}, drawn.object_masks)
        item = self.items[self.keys[position]]
        pixels = read_image(item.image)[..., :3] if image else None
        if pixels is not None and pixels.shape[:2] != (self.image_size, self.image_size):
            raise InputError(f"{item.image}: image is {pixels.shape[1]}×{pixels.shape[0]}, the model needs "
                             f"{self.image_size}×{self.image_size} (resize when preparing the dataset)")
        truth = {name: read_image(path) for name, path in item.conditions.items() if name in FROM_MANIFEST}
        return Example(pixels, item.caption, truth, [read_image(path) for path in item.masks.values()],
                       str(item.extra.get("seg_palette", "shapes")))

    def caption(self, position: int) -> str:
        """The caption of the item at `position`, without reading or rendering anything else."""
        if self.source == "shapes":
            return sample_scene(self.world_seed, self.keys[position], self.world).caption
        return self.items[self.keys[position]].caption

    def images(self, positions: list[int]) -> torch.Tensor:
        """The images at `positions`, (N, 3, H, W) in [0, 1]."""
        return image_tensor([self.example(position).image for position in positions])

    def batch(self, positions: list[int], masks: torch.Tensor, images: bool = True) -> Batch:
        """The examples at `positions` with their masks; `images=False` (a condition read from the manifest, latents from
        the cache): images are not decoded where that costs something, and the batch has none."""
        if not images and self.condition not in FROM_MANIFEST:
            raise ValueError(f"condition '{self.condition}' is computed from the images: they must be read")
        examples = [self.example(position, image=images) for position in positions]
        pixels = image_tensor([e.image for e in examples]) if images else None
        if self.condition in FROM_MANIFEST:
            conditions = torch.stack([manifest_condition(self.condition, e.ground_truth[self.condition], e.seg_palette)
                                      for e in examples])
        else:
            conditions = compute_condition(self.condition, pixels)
        references = [torch.from_numpy(e.ground_truth["edges"] > 0).float()[None] if "edges" in e.ground_truth else None for e in examples]
        if any(r is None for r in references) and pixels is not None:
            detected = canny(pixels)
            references = [r if r is not None else detected[k] for k, r in enumerate(references)]
        depth = labels = None
        if all("depth" in e.ground_truth for e in examples):
            depth = torch.stack([torch.from_numpy(grey(e.ground_truth["depth"])).float()[None] for e in examples])
        if all("seg" in e.ground_truth for e in examples):
            labels = torch.stack([torch.from_numpy(e.ground_truth["seg"].astype(np.int64)) for e in examples])
        reference_edges = torch.stack(references) if all(r is not None for r in references) else None
        return Batch(pixels, conditions, masks, [e.caption for e in examples], reference_edges, depth, labels, list(positions))

    def draw_masks(self, positions: list[int], settings: MaskSettings, rng: np.random.Generator, masked: bool) -> torch.Tensor:
        """One training mask per example from the configured mix (all ones for the global baseline)."""
        size = self.image_size
        if not masked:
            return torch.ones(len(positions), 1, size, size)
        kinds, probabilities = zip(*settings.kinds.items())
        probabilities = np.array(probabilities, dtype=float) / sum(probabilities)
        masks = []
        for position in positions:
            kind = str(rng.choice(kinds, p=probabilities))
            objects = self.example(position, image=False).object_masks if kind == "object" else None
            masks.append(make_mask(kind, rng, size, size, object_masks=objects, min_area=settings.min_area, max_area=settings.max_area))
        return torch.from_numpy(np.stack(masks))[:, None]

    def training_batch(self, seed: int, step: int, micro: int, batch_size: int, settings: MaskSettings, masked: bool,
                       images: bool = True) -> Batch:
        generator = step_generator(seed, f"data-{micro}", step)
        positions = torch.randint(len(self), (batch_size,), generator=generator).tolist()
        rng = np.random.default_rng([seed, step, micro])
        return self.batch(positions, self.draw_masks(positions, settings, rng, masked), images)

    def validation_batch(self, seed: int, settings: MaskSettings, masked: bool) -> Batch:
        """The same examples and masks at every validation: boxes drawn once from the seed."""
        positions = list(range(len(self)))
        box_only = MaskSettings(kinds={"box": 1.0}, min_area=max(settings.min_area, 0.1), max_area=0.5, resize=settings.resize)
        return self.batch(positions, self.draw_masks(positions, box_only, np.random.default_rng([seed, 999]), True))
