"""Scenes of the shapes world: what is drawn where, sampled deterministically from (seed, index).

A scene is 1–2 (settable) flat-coloured shapes on a plain or gradient background. Captions name the
objects left to right ("a red circle and a blue triangle on a grey background"), which gives the toy
text-to-image model a positional cue for binding colours to shapes. Some (colour, shape, background)
combinations never appear in the train split, so composition can be tested on val/test.
"""

from dataclasses import dataclass

import numpy as np
from pydantic import ConfigDict, Field, model_validator

from localctrl.config import Section
from localctrl.errors import InputError

SHAPES = ("circle", "square", "triangle")
COLOURS = {
    "red": (220, 40, 40),
    "green": (40, 170, 60),
    "blue": (40, 90, 220),
    "yellow": (235, 205, 40),
    "purple": (150, 60, 190),
    "orange": (240, 135, 30),
}
BACKGROUNDS = {"grey": (128, 128, 128), "white": (240, 240, 240), "black": (20, 20, 20)}
# Each colour, shape and background is held out in some combination, never entirely.
HELD_OUT = frozenset(
    {
        ("red", "triangle", "white"),
        ("blue", "circle", "black"),
        ("green", "square", "grey"),
        ("yellow", "circle", "white"),
        ("purple", "square", "black"),
        ("orange", "triangle", "grey"),
    }
)
SPLITS = ("train", "val", "test")


class WorldConfig(Section):
    model_config = ConfigDict(frozen=True)
    size: int = Field(64, ge=32, le=256)  # image size in pixels
    object_count_probs: tuple[float, ...] = (0.35, 0.65)  # P(1 object), P(2 objects), … (more entries allow more)
    object_size: tuple[float, float] = (0.19, 0.47)  # side/diameter as a fraction of the image (12–30 px at 64²)
    allow_overlap: bool = False  # True: objects may overlap, later ones drawn on top (z-order = layer)
    gradient_prob: float = Field(0.25, ge=0, le=1)  # fraction of gradient backgrounds
    split_probs: tuple[float, float, float] = (0.8, 0.1, 0.1)  # train / val / test
    held_out: frozenset[tuple[str, str, str]] = HELD_OUT

    @staticmethod
    def count_probs(max_objects: int) -> tuple[float, ...]:
        """Object-count probabilities up to `max_objects`: the prototype's 35/65 split for two, else 20% single."""
        if max_objects == 1:
            return (1.0,)
        if max_objects == 2:
            return (0.35, 0.65)
        return (0.2,) + (0.8 / (max_objects - 1),) * (max_objects - 1)

    @model_validator(mode="after")
    def probabilities(self):
        for name, probs in (("object_count_probs", self.object_count_probs), ("split_probs", self.split_probs)):
            if min(probs) < 0 or abs(sum(probs) - 1) > 1e-6:
                raise ValueError(f"{name} must be non-negative and sum to 1, got {probs}")
        return self


@dataclass(frozen=True)
class ShapeObject:
    shape: str
    colour: str
    cx: float  # centre, pixels
    cy: float
    size: float  # diameter (circle) / side (square) / base and height (triangle), pixels
    layer: int  # 1 = bottom; higher layers are drawn on top

    @property
    def bbox(self) -> tuple[float, float, float, float]:
        half = self.size / 2
        return (self.cx - half, self.cy - half, self.cx + half, self.cy + half)

    def region(self, size: int) -> np.ndarray:
        """Boolean (size, size) region of the shape, sampled at pixel centres."""
        yy, xx = np.mgrid[0:size, 0:size] + 0.5
        half = self.size / 2
        if self.shape == "circle":
            return (xx - self.cx) ** 2 + (yy - self.cy) ** 2 <= half**2
        if self.shape == "square":
            return (np.abs(xx - self.cx) <= half) & (np.abs(yy - self.cy) <= half)
        if self.shape == "triangle":  # upright, base = height = size, apex at the top
            below_apex = yy - (self.cy - half)
            return (below_apex >= 0) & (yy <= self.cy + half) & (np.abs(xx - self.cx) <= below_apex / 2)
        raise ValueError(f"unknown shape '{self.shape}'; known: {SHAPES}")


@dataclass(frozen=True)
class Scene:
    background: str
    gradient: bool
    objects: tuple[ShapeObject, ...]
    split: str

    @property
    def caption(self) -> str:
        ordered = sorted(self.objects, key=lambda obj: obj.cx)  # named left to right
        names = [f"{'an' if obj.colour[0] in 'aeiou' else 'a'} {obj.colour} {obj.shape}" for obj in ordered]
        listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
        return f"{listed} on a {self.background}{' gradient' if self.gradient else ''} background"

    @property
    def combinations(self) -> set[tuple[str, str, str]]:
        return {(obj.colour, obj.shape, self.background) for obj in self.objects}

    def has_held_out(self, held_out: frozenset = HELD_OUT) -> bool:
        return bool(self.combinations & held_out)


MIN_VISIBLE = 0.5  # with overlap allowed, every object keeps at least half its pixels (its caption must stay true)


def _boxes_touch(a: ShapeObject, b: ShapeObject, margin: float = 1.0) -> bool:
    ax0, ay0, ax1, ay1 = a.bbox
    bx0, by0, bx1, by1 = b.bbox
    return ax0 < bx1 + margin and bx0 < ax1 + margin and ay0 < by1 + margin and by0 < ay1 + margin


def _all_visible_enough(objects: list[ShapeObject], size: int) -> bool:
    regions = [obj.region(size) for obj in objects]
    covered = np.zeros((size, size), dtype=bool)
    for region in reversed(regions):  # from the top layer down
        if (region & ~covered).sum() < MIN_VISIBLE * region.sum():
            return False
        covered |= region
    return True


def _fits(candidate: ShapeObject, others: list[ShapeObject], config: "WorldConfig") -> bool:
    if not config.allow_overlap:
        return not any(_boxes_touch(candidate, other) for other in others)
    return _all_visible_enough([*others, candidate], config.size)


def _sample_objects(rng: np.random.Generator, config: WorldConfig, count: int) -> list[ShapeObject]:
    objects: list[ShapeObject] = []
    low, high = (fraction * config.size for fraction in config.object_size)
    for _ in range(count):
        for _attempt in range(100):
            size = rng.uniform(low, high)
            half = size / 2
            candidate = ShapeObject(
                shape=str(rng.choice(SHAPES)),
                colour=str(rng.choice(list(COLOURS))),
                cx=rng.uniform(half + 1, config.size - half - 1),
                cy=rng.uniform(half + 1, config.size - half - 1),
                size=size,
                layer=len(objects) + 1,
            )
            if _fits(candidate, objects, config):
                objects.append(candidate)
                break
    return objects


def sample_scene(seed: int, index: int, config: WorldConfig = WorldConfig()) -> Scene:
    """The scene of item `index` of the world seeded `seed`: the same on every machine and every call."""
    rng = np.random.default_rng([seed, index])
    split = SPLITS[int(rng.choice(len(SPLITS), p=config.split_probs))]
    while True:  # train scenes are redrawn (deterministically) until they avoid every held-out combination
        count = 1 + int(rng.choice(len(config.object_count_probs), p=config.object_count_probs))
        scene = Scene(
            background=str(rng.choice(list(BACKGROUNDS))),
            gradient=bool(rng.random() < config.gradient_prob),
            objects=tuple(_sample_objects(rng, config, count)),
            split=split,
        )
        if split != "train" or not scene.has_held_out(config.held_out):
            return scene


def split_scenes(seed: int, split: str, count: int, config: WorldConfig = WorldConfig()) -> list[tuple[int, Scene]]:
    """(index, scene) of the first `count` scenes of `split` in world `seed`, in index order."""
    if split not in SPLITS:
        raise InputError(f"the shapes world has no split '{split}'; its splits are {', '.join(SPLITS)}")
    if config.split_probs[SPLITS.index(split)] == 0:
        raise InputError(f"the shapes world's split '{split}' has probability 0 (split_probs {config.split_probs}): it is empty")
    found, index = [], 0
    while len(found) < count:
        scene = sample_scene(seed, index, config)
        if scene.split == split:
            found.append((index, scene))
        index += 1
    return found


def vocabulary() -> list[str]:
    """Every word a caption of this world can contain (one token each in shapes-base's tokenizer)."""
    return ["a", "an", "and", "on", "background", "gradient", *SHAPES, *COLOURS, *BACKGROUNDS]
