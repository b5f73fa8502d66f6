"""The suite's items: prompt, real image, condition, evaluation mask and ground truth, loaded and checked up front.

Everything a generation depends on is read here before any generation starts, so a missing file, a mask of the
wrong size or a non-binary mask is one clear error naming the file, before any expensive work. Masks of kind `box`
come from `default_rng([mask seed, crc32(item id)])`: the same item gets the same box whatever `--limit` or the item
order.
"""

import zlib
from dataclasses import dataclass

import numpy as np
import torch

from bench.suite import Suite
from localctrl.common.files import read_image
from localctrl.data.examples import ExampleSet
from localctrl.data.masks import check_mask, make_mask
from localctrl.errors import InputError


@dataclass
class BenchItems:
    ids: list[str]
    prompts: list[str]
    images: torch.Tensor  # (N, 3, H, W) uint8: the real images (FID reference, condition source)
    conditions: torch.Tensor  # (N, C, H, W) in [0, 1]: what the adapters are given
    masks: torch.Tensor  # (N, 1, H, W) in {0, 1}: where control is asked for (and what "in"/"out" mean)
    reference_edges: torch.Tensor  # (N, 1, H, W): exact edges in the shapes world, else the condition's detector on the image
    semantic: torch.Tensor | None  # (N, H, W) labels in the shapes world (exact), else None

    def __len__(self) -> int:
        return len(self.ids)


def example_set(suite: Suite, image_size: int, items: int) -> ExampleSet:
    return ExampleSet(suite.data, suite.condition, image_size, suite.data.split, items)


def item_ids(examples: ExampleSet) -> list[str]:
    if examples.source == "shapes":
        return [f"scene-{key:06d}" for key in examples.keys]
    return [examples.items[key].id for key in examples.keys]


def evaluation_mask(suite: Suite, item_id: str, size: int, manifest_masks: dict | None) -> np.ndarray:
    spec = suite.masks
    if spec.kind == "box":
        rng = np.random.default_rng([spec.seed, zlib.crc32(item_id.encode())])
        return make_mask("box", rng, size, size, min_area=spec.min_area, max_area=spec.max_area)
    if spec.kind == "right-half":  # the reference evaluation's mask
        mask = np.zeros((size, size), np.float32)
        mask[:, size // 2 :] = 1
        return mask
    if spec.kind == "full":
        return np.ones((size, size), np.float32)
    path = (manifest_masks or {}).get(spec.name)
    if path is None:
        raise InputError(f"item {item_id}: masks.kind is 'manifest' but the item has no mask named '{spec.name}'")
    return check_mask(read_image(path), size, size, name=str(path))


def load_items(suite: Suite, image_size: int, limit: int | None = None) -> BenchItems:
    count = min(suite.data.items, limit) if limit else suite.data.items
    examples = example_set(suite, image_size, count)
    ids = item_ids(examples)
    masks = []
    for position, item_id in enumerate(ids):
        manifest_masks = None if examples.source == "shapes" else examples.items[examples.keys[position]].masks
        masks.append(evaluation_mask(suite, item_id, image_size, manifest_masks))
    masks = torch.from_numpy(np.stack(masks))[:, None]
    batch = examples.batch(list(range(len(ids))), masks)
    semantic = None
    if examples.source == "shapes":
        semantic = torch.from_numpy(np.stack([examples.example(k).ground_truth["seg"] for k in range(len(ids))])).long()
    images = (batch.images * 255).round().to(torch.uint8)
    return BenchItems(ids, batch.captions, images, batch.conditions, masks, batch.reference_edges, semantic)
