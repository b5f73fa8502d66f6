"""The suite's items: prompt, condition, evaluation mask and ground truth, checked up front and loaded in chunks.

Every item is read once before any generation starts, so a missing file, a mask of the wrong size or a non-binary
mask is one clear error naming the file, before any expensive work. What the plan needs is kept from that pass:
ids, prompts and a hash of each item's condition and mask (task keys), and one hash over all masks and ground truth
(score keys). The tensors themselves are loaded again a chunk at a time by the stages that use them, so memory is
bounded by the chunk, not by the suite. Conditions are computed per image (kornia's and OpenCV's Canny give the same
result for an image in any batch), so a chunk's conditions are the ones the keys hashed.

Masks of kind `box` come from `default_rng([mask seed, crc32(item id)])`: the same item gets the same box whatever
`--limit` or the item order. With `masks.min_structure` the box is redrawn from that generator until it holds that
share of the condition's structure (its edges, or a depth or label map's outlines: localctrl.data.conditions.structure),
so in-mask fidelity measures control of something; an item whose mask holds none is left out of it (bench.stages.score).
"""

import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from bench.keys import StackedHash, items_key, tensor_hash
from bench.suite import Suite
from localctrl.common.files import read_image
from localctrl.data.conditions import structure
from localctrl.data.examples import ExampleSet
from localctrl.data.masks import box_holding, check_mask
from localctrl.errors import InputError

CHUNK = 64  # items loaded together


@dataclass
class ItemTensors:
    """Some items' tensors, row i of each for item `rows[i]`."""

    rows: list[int]
    prompts: list[str]
    conditions: Tensor  # (n, C, H, W) in [0, 1]: what the adapters are given
    masks: Tensor  # (n, 1, H, W) in {0, 1}: where control is asked for (and what "in"/"out" mean)
    reference_edges: Tensor  # (n, 1, H, W): exact edges in the shapes world, else the condition's detector on the image
    semantic: Tensor | None  # (n, H, W) seg labels: exact in the shapes world, a manifest's `seg` labels; else None
    depth: Tensor | None  # (n, 1, H, W) disparity 0-255: exact in the shapes world, a manifest's `depth`; else None
    structure: Tensor  # (n, 1, H, W) in {0, 1}: the condition's structure (localctrl.data.conditions.structure)

    def at(self, rows: Sequence[int]) -> "ItemTensors":
        """The same tensors for `rows` (each among self.rows), in that order."""
        index = [self.rows.index(row) for row in rows]
        pick = (lambda tensor: tensor[index] if index else tensor[:0])
        maybe = (lambda tensor: pick(tensor) if tensor is not None else None)
        return ItemTensors(list(rows), [self.prompts[i] for i in index], pick(self.conditions), pick(self.masks),
                           pick(self.reference_edges), maybe(self.semantic), maybe(self.depth), pick(self.structure))


class BenchItems:
    """The suite's items: ids, prompts and keys in memory; tensors loaded on demand (`load`)."""

    def __init__(self, suite: Suite, examples: ExampleSet, image_size: int):
        self.suite, self.examples, self.image_size = suite, examples, image_size
        self.ids = item_ids(examples)
        # The networks that computed a prepared dataset's depth / seg (`localctrl data prepare`), logged with the run.
        self.condition_models = {} if examples.source == "shapes" else dict(examples.items[0].extra.get("condition_models", {}))
        self.prompts: list[str] = []
        self.condition_keys: list[str] = []
        self.mask_keys: list[str] = []
        masks, edges, semantic, depth, shapes = (StackedHash(len(self)) for _ in range(5))
        self.has_semantic = self.has_depth = True  # until an item lacks them
        for start in range(0, len(self), CHUNK):  # the one pass that checks every item and keys it
            part = self.load(range(start, min(start + CHUNK, len(self))))
            self.prompts += part.prompts
            self.condition_keys += [tensor_hash(condition) for condition in part.conditions]
            self.mask_keys += [tensor_hash(mask) for mask in part.masks]
            masks.update(part.masks)
            edges.update(part.reference_edges)
            shapes.update(part.structure)
            self.has_semantic &= part.semantic is not None
            self.has_depth &= part.depth is not None
            if part.semantic is not None:
                semantic.update(part.semantic)
            if part.depth is not None:
                depth.update(part.depth)
        truths = [semantic.hexdigest() if self.has_semantic else None, depth.hexdigest() if self.has_depth else None]
        self.key = items_key(self.ids, masks.hexdigest(), edges.hexdigest(), *truths, shapes.hexdigest())

    def __len__(self) -> int:
        return len(self.ids)

    def load(self, rows: Sequence[int]) -> ItemTensors:
        """The tensors of items `rows` (indices into ids), read or rendered now."""
        rows = list(rows)
        batch = self.examples.batch(rows, masks=torch.empty(0))  # the masks are drawn next, from the conditions
        held = structure(batch.conditions)
        masks = torch.from_numpy(np.stack([self.mask(row, held[k, 0].numpy()) for k, row in enumerate(rows)]))[:, None]
        return ItemTensors(rows, batch.captions, batch.conditions, masks, batch.reference_edges, batch.reference_labels,
                           batch.reference_depth, held)

    def load_for(self, rows: Sequence[int]) -> ItemTensors:
        """`load` of the distinct rows, returned for `rows` as given (tasks of one chunk share items)."""
        return self.load(sorted(set(rows))).at(rows)

    def mask(self, row: int, held: np.ndarray) -> np.ndarray:
        """Item `row`'s evaluation mask; `held` is its condition's structure (H, W)."""
        manifest_masks = None if self.examples.source == "shapes" else self.examples.items[self.examples.keys[row]].masks
        return evaluation_mask(self.suite, self.ids[row], self.image_size, manifest_masks, held)


def example_set(suite: Suite, image_size: int, items: int) -> ExampleSet:
    return ExampleSet(suite.data, suite.condition, image_size, suite.data.split, items)


def item_ids(examples: ExampleSet) -> list[str]:
    if examples.source == "shapes":
        return [f"scene-{key:06d}" for key in examples.keys]
    return [examples.items[key].id for key in examples.keys]


def evaluation_mask(suite: Suite, item_id: str, size: int, manifest_masks: dict | None, held: np.ndarray) -> np.ndarray:
    spec = suite.masks
    if spec.kind == "box":
        rng = np.random.default_rng([spec.seed, zlib.crc32(item_id.encode())])
        return box_holding(held, spec.min_structure, rng, spec.min_area, spec.max_area)
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
    return BenchItems(suite, example_set(suite, image_size, count), image_size)
