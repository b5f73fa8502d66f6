"""A suite: what a benchmark run generates and measures. Finding suite files, reading them, validating them.

Suites are shipped in the `suites` package (found through importlib.resources, so a wheel install works too) or
given as a YAML path. A misspelt key is an error (extra="forbid"), and every error names the file, the key path
and what was expected, e.g. `suites/smoke.yaml: methods.masked.kind: Input should be 'text-only', 'adapter' or
'controlnet'`. The sampler section is `localctrl.config.SamplerSettings` (over the suite defaults below), and each
method's `train` is a partial `localctrl.config.TrainConfig` (dotted keys over `train_defaults`), checked here too.
"""

import re
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from localctrl.config import (
    Condition,
    DataSource,
    ResizeMode,
    SamplerSettings,
    Scheduler,
    Section,
    TrainConfig,
    problems,
    read_yaml,
    train_config,
)
from localctrl.errors import InputError
from localctrl.shapes.scene import SPLITS
from suites import available_suites

BENCH_MASK_KINDS = ("box", "right-half", "full", "manifest")
LocalMode = Literal["mask-features", "zero-condition", "blend-latents", "inpaint"]
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")  # a suite's and its methods' names
# A suite's sampler defaults (the shapes world's: 20 DDIM steps, CFG 4, batch 32), under whatever the file sets.
SUITE_SAMPLER = {"steps": 20, "guidance": 4.0, "batch_size": 32}


class SuiteError(InputError):
    """A suite that does not exist or cannot be read; the message names the file and what was expected."""


class DataSpec(DataSource):
    split: str | None = "test"  # None: every item of a manifest (e.g. all 5,000 COCO val2017 images)
    items: int = Field(64, ge=1)


class MaskSpec(Section):
    kind: Literal[BENCH_MASK_KINDS] = "box"  # type: ignore[valid-type]
    seed: int = 0  # box masks: item i's box comes from default_rng([seed, crc32(id)]), independent of --limit
    min_area: float = Field(0.1, gt=0, le=1)
    max_area: float = Field(0.5, gt=0, le=1)
    # box masks: the share of the condition's structure (edges, outlines) the box must hold (bench.stages.items)
    min_structure: float = Field(0.25, ge=0, le=1)
    name: str | None = None  # kind "manifest": which of the item's `masks` to use


class MethodSpec(Section):
    kind: Literal["text-only", "adapter", "controlnet"]
    weights: str | None = None  # adapter/ControlNet folder or cached hub id, or "random" (seeded random: mechanics only)
    train: dict[str, Any] | None = None  # a partial training config (dotted keys over the suite's train_defaults)
    mask_at_inference: bool = True  # False: control everywhere (the global baseline)
    resize: ResizeMode | None = None  # mask resize mode at inference (default: the adapter's own)
    scale: float | None = None  # conditioning scale (default: the suite's sampler.scale)
    scheduler: Scheduler | None = None  # this method's sampler scheduler (default: the suite's sampler.scheduler)
    steps: int | None = Field(None, ge=1)  # this method's sampler steps (default: the suite's sampler.steps)
    label: str | None = None  # how tables name the method
    sweep: dict[str, Any] = {}  # ablation coordinates for reports, e.g. {lambda: 1e-3}
    # How control is kept inside the mask at inference (with mask_at_inference): mask the adapter's features or the
    # ControlNet's residuals (ours); give the model the condition zeroed outside the mask, features unmasked (the
    # reference code's baseline); or blend latents with the uncontrolled trajectory (Blended Latent Diffusion); or
    # "inpaint": an inpainting ControlNet repaints the preservation reference's image inside the mask, its latents
    # blended with the reference's trajectory outside (the preservation upper bound; the suite's condition is unused).
    local: LocalMode = "mask-features"

    @model_validator(mode="after")
    def weights_or_training(self):
        if self.kind == "adapter" and (self.weights is None) == (self.train is None):
            raise ValueError("an adapter method needs exactly one of 'weights' or 'train'")
        if self.kind == "controlnet" and (self.weights is None or self.train is not None):
            raise ValueError("a controlnet method needs 'weights' (training ControlNets is not part of localctrl)")
        if self.kind == "text-only" and (self.weights or self.train):
            raise ValueError("a text-only method takes no 'weights' or 'train'")
        if self.local != "mask-features" and not self.mask_at_inference:
            raise ValueError(f"local '{self.local}' keeps control inside the mask: it needs mask_at_inference true")
        if self.local == "inpaint" and self.kind != "controlnet":
            raise ValueError("local 'inpaint' repaints the reference image inside the mask with an inpainting ControlNet: "
                             "it needs kind 'controlnet' (e.g. lllyasviel/control_v11p_sd15_inpaint)")
        return self


class FidSpec(Section):
    features: Literal["shapes-net", "inception", "clip", "random-inception"] = "shapes-net"
    reference_items: int = Field(512, ge=2)  # real images of the data split the generated set is compared with
    kid: bool = True
    # pooled: one FID of every generated image; seed-mean: each seed group's FID, averaged (ControlNet++'s 4 groups)
    groups: Literal["pooled", "seed-mean"] = "pooled"


class EdgeSpec(Section):
    detector: Literal["canny", "canny-opencv"] = "canny"  # kornia 0.1/0.2 (ControlNet++) or OpenCV 100/200 (reference)
    tolerance: int = Field(1, ge=0)


DEPTH_DETECTORS = ("shapes-depth", "dpt-large", "dpt-hybrid", "random-dpt")
SEG_DETECTORS = ("shapes-seg", "upernet-ade20k", "mask2former-ade20k", "random-upernet", "random-mask2former")


class DepthSpec(Section):
    # shapes-depth: the shapes world's exact reader; dpt-large: ControlNet++'s detector; dpt-hybrid: T2I-Adapter's
    detector: Literal[DEPTH_DETECTORS] = "shapes-depth"  # type: ignore[valid-type]


class SegSpec(Section):
    # shapes-seg: the shapes world's exact segmenter; upernet-ade20k: UperNet ConvNeXt-S, 150 ADE20K classes;
    # mask2former-ade20k: Mask2Former Swin-L, 150 ADE20K classes (ControlNet++'s)
    detector: Literal[SEG_DETECTORS] = "shapes-seg"  # type: ignore[valid-type]


class PreservationSpec(Section):
    reference_method: str = "text-only"
    band: int = Field(0, ge=0)  # px around the mask edge left out of "outside"
    lpips: Literal["auto", "on", "off", "random"] = "auto"  # auto: when AlexNet weights are present; on: required


class MetricsSpec(Section):
    fid: FidSpec | None = FidSpec()
    align_shapes: bool = True
    clip_score: Literal["off", "ViT-B-16/openai", "random"] = "off"
    edges: EdgeSpec | None = EdgeSpec()
    depth: DepthSpec | None = None  # depth read back from each image against the items' depth
    seg: SegSpec | None = SegSpec()  # labels read back from each image against the items' labels
    preservation: PreservationSpec | None = PreservationSpec()

    def detectors(self) -> dict[str, str]:
        """Detector kind (edges, depth, labels) → the detector the suite reads images with, for each condition measured."""
        parts = {"edges": self.edges, "depth": self.depth, "labels": self.seg}
        return {kind: part.detector for kind, part in parts.items() if part is not None}

    @field_validator("seg", "depth", mode="before")
    @classmethod
    def switch(cls, value):
        """`true` is the default detector (the shapes world's), `false` none."""
        return {} if value is True else None if value is False else value


PROTOCOLS = ("none", "controlnetpp")


class Suite(Section):
    name: str
    description: str = ""
    # A published evaluation protocol the suite reproduces: its own metrics are added (bench.metrics.protocol) and the
    # report prints the protocol paper's numbers beside ours (reports/published.yaml).
    protocol: Literal[PROTOCOLS] = "none"  # type: ignore[valid-type]
    base: str = "shapes-base"
    data: DataSpec = DataSpec()
    condition: Condition = "canny"
    masks: MaskSpec = MaskSpec()
    sampler: SamplerSettings = SamplerSettings(**SUITE_SAMPLER)
    seeds: list[int] = [0]
    train_defaults: dict[str, Any] = {}
    methods: dict[str, MethodSpec]
    metrics: MetricsSpec = MetricsSpec()

    @field_validator("sampler", mode="before")
    @classmethod
    def suite_sampler_defaults(cls, value):
        return {**SUITE_SAMPLER, **value} if isinstance(value, dict) else value

    @model_validator(mode="after")
    def consistent(self):
        reference = self.metrics.preservation.reference_method if self.metrics.preservation else None
        if reference and (reference not in self.methods or self.methods[reference].kind != "text-only"):
            raise ValueError(f"metrics.preservation.reference_method '{reference}' must name a text-only method of the suite")
        if not self.methods:
            raise ValueError("methods: a suite needs at least one method")
        for name, method in self.methods.items():
            if method.local != "inpaint":
                continue
            if reference is None:
                raise ValueError(f"methods.{name}: local 'inpaint' repaints the preservation reference's image: the suite "
                                 "needs metrics.preservation")
            if self.sampler_for(method) != self.sampler_for(self.methods[reference]):
                raise ValueError(f"methods.{name}: local 'inpaint' blends with the reference's trajectory, so it samples as "
                                 f"'{reference}' does: give it no scheduler or steps of its own")
        if self.data.source == "shapes" and self.data.split not in SPLITS:
            raise ValueError(f"data.split: the shapes world's splits are {', '.join(SPLITS)}, not {self.data.split!r}")
        for kind, name in [("name", self.name), *(("methods", method) for method in self.methods)]:
            if not NAME.fullmatch(name):  # names become folders, file names and MLflow tags
                raise ValueError(f"{kind}: '{name}' must be letters, digits, '.', '_' or '-' (not first), at most 64")
        return self

    def sampler_for(self, method: MethodSpec) -> SamplerSettings:
        """The sampler settings of a method's images: the suite's, with the method's own scheduler and steps where it
        names them (ControlNet++ sampled its T2I-Adapter rows with 50 PNDM steps and its ControlNets with 20 UniPC ones)."""
        own = {name: value for name in ("scheduler", "steps") if (value := getattr(method, name)) is not None}
        return self.sampler.model_copy(update=own) if own else self.sampler

    def train_config(self, method: str, out: Path | None = None) -> TrainConfig:
        """The training config of a method with `train`: the suite's base, condition and data source, then
        `train_defaults`, then the method's own keys. Validation samples at the suite's conditioning scale, so the
        checkpoint kept is the best at the scale the suite measures."""
        source = self.data.model_dump(include=set(DataSource.model_fields))
        suite = {"base": self.base, "condition": self.condition, "validation_scale": self.sampler.scale,
                 **{f"data.{key}": value for key, value in source.items()}}
        layers = [suite, self.train_defaults, self.methods[method].train or {}, {"out": out} if out is not None else {}]
        return train_config(*layers, source=f"methods.{method}.train")


def parse_suite(data: dict, source: str | Path) -> Suite:
    """Validate a suite mapping; errors name `source`, the key path and what was expected."""
    try:
        suite = Suite.model_validate(data)
    except ValidationError as error:
        raise SuiteError(f"{source}: {problems(error)}") from None
    try:
        train_config(suite.train_defaults, source="train_defaults")
        for name, method in suite.methods.items():
            if method.train is not None:
                suite.train_config(name)
    except InputError as error:
        raise SuiteError(f"{source}: {error}") from None
    return suite


def suite_file(name_or_path: str):
    """A shipped suite by name, or a YAML file by path."""
    if name_or_path.endswith((".yaml", ".yml")):
        if not Path(name_or_path).is_file():
            raise SuiteError(f"suite file {name_or_path} does not exist")
        return Path(name_or_path)
    entry = resources.files("suites") / f"{name_or_path}.yaml"
    if not entry.is_file():
        raise SuiteError(f"unknown suite '{name_or_path}'; shipped suites: {', '.join(available_suites())} (or give a .yaml path)")
    return entry


def read_suite(name_or_path: str) -> dict:
    """The raw mapping of a suite (parsed with yaml.safe_load: data only, no Python objects)."""
    entry = suite_file(name_or_path)
    name = Path(str(entry)).stem
    try:
        data = read_yaml(entry.read_text(encoding="utf-8"), f"suite file {entry}")
    except InputError as error:
        raise SuiteError(str(error)) from None
    if not isinstance(data, dict):
        raise SuiteError(f"suite file {entry}: expected a mapping at the top level, got {type(data).__name__}")
    if data.get("name") != name:
        raise SuiteError(f"suite file {entry}: key 'name' must be '{name}' (the file's name), got {data.get('name')!r}")
    return data


def load_suite(name_or_path: str) -> Suite:
    """The validated suite."""
    return parse_suite(read_suite(name_or_path), suite_file(name_or_path))
