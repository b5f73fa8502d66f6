"""The suite file's schema: what a benchmark run generates and measures, validated with path-qualified errors.

A misspelt key is an error (extra="forbid"), and every error names the file, the key path and what was
expected, e.g. `suites/smoke.yaml: methods.masked.kind: Input should be 'text-only', 'adapter' or 'controlnet'`.
"""

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from bench.suites import SuiteError
from localctrl.data.conditions import CHANNELS
from localctrl.local_adapter import RESIZE_MODES
from localctrl.sampling import PRECISIONS, SCHEDULERS

BENCH_MASK_KINDS = ("box", "right-half", "full", "manifest")


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DataSpec(Section):
    source: str = "shapes"  # "shapes" (rendered in memory) or a manifest dataset folder
    split: str | None = "test"  # None: every item of a manifest (e.g. all 5,000 COCO val2017 images)
    items: int = Field(64, ge=1)
    world_seed: int = 0


class MaskSpec(Section):
    kind: Literal[BENCH_MASK_KINDS] = "box"  # type: ignore[valid-type]
    seed: int = 0  # box masks: item i's box comes from default_rng([seed, i]), independent of --limit
    min_area: float = Field(0.1, gt=0, le=1)
    max_area: float = Field(0.5, gt=0, le=1)
    name: str | None = None  # kind "manifest": which of the item's `masks` to use


class SamplerSpec(Section):
    scheduler: str = "ddim"
    steps: int = Field(20, ge=1)
    guidance: float = 4.0
    batch_size: int = Field(32, ge=1)
    precision: str = "fp32"

    @model_validator(mode="after")
    def known_names(self):
        if self.scheduler not in SCHEDULERS:
            raise ValueError(f"scheduler '{self.scheduler}' is not one of {', '.join(SCHEDULERS)}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision '{self.precision}' is not one of {', '.join(PRECISIONS)}")
        return self


CONTROLNET_MODES = ("zero-condition", "mask-residuals")


class MethodSpec(Section):
    kind: Literal["text-only", "adapter", "controlnet"]
    weights: str | None = None  # adapter/ControlNet folder or cached hub id, or "random" (seeded random: mechanics only)
    train: dict[str, Any] | None = None  # a training config (dotted keys over the suite's train_defaults)
    mask_at_inference: bool = True  # False: control everywhere (the global baseline)
    resize: str | None = None  # mask resize mode at inference (default: the adapter's own)
    scale: float = 1.0
    label: str | None = None  # how tables name the method
    sweep: dict[str, Any] = {}  # ablation coordinates for reports, e.g. {lambda: 1e-3}
    controlnet_mode: Literal[CONTROLNET_MODES] = "mask-residuals"  # type: ignore[valid-type]  # METHOD.md baseline 6

    @model_validator(mode="after")
    def weights_or_training(self):
        if self.kind == "adapter" and (self.weights is None) == (self.train is None):
            raise ValueError("an adapter method needs exactly one of 'weights' or 'train'")
        if self.kind == "controlnet" and (self.weights is None or self.train is not None):
            raise ValueError("a controlnet method needs 'weights' (training ControlNets is not part of localctrl)")
        if self.kind == "text-only" and (self.weights or self.train):
            raise ValueError("a text-only method takes no 'weights' or 'train'")
        if self.resize is not None and self.resize not in RESIZE_MODES:
            raise ValueError(f"resize '{self.resize}' is not one of {', '.join(RESIZE_MODES)}")
        return self


class FidSpec(Section):
    features: Literal["shapes-net", "inception", "clip", "random-inception"] = "shapes-net"
    reference_items: int = Field(512, ge=2)  # real images of the data split the generated set is compared with
    kid: bool = True


class EdgeSpec(Section):
    detector: Literal["canny", "canny-opencv"] = "canny"  # kornia 0.1/0.2 (ControlNet++) or OpenCV 100/200 (reference)
    tolerance: int = Field(1, ge=0)


class PreservationSpec(Section):
    reference_method: str = "text-only"
    band: int = Field(0, ge=0)  # px around the mask edge left out of "outside"
    lpips: Literal["auto", "on", "off", "random"] = "auto"  # auto: when AlexNet weights are present; on: required


class MetricsSpec(Section):
    fid: FidSpec | None = FidSpec()
    align_shapes: bool = True
    clip_score: Literal["off", "ViT-B-16/openai", "random"] = "off"
    edges: EdgeSpec | None = EdgeSpec()
    seg: bool = True  # the shapes world's exact segmenter against ground truth
    preservation: PreservationSpec | None = PreservationSpec()


class Suite(Section):
    name: str
    description: str = ""
    base: str = "shapes-base"
    data: DataSpec = DataSpec()
    condition: str = "canny"
    masks: MaskSpec = MaskSpec()
    sampler: SamplerSpec = SamplerSpec()
    seeds: list[int] = [0]
    train_defaults: dict[str, Any] = {}
    methods: dict[str, MethodSpec]
    metrics: MetricsSpec = MetricsSpec()

    @model_validator(mode="after")
    def consistent(self):
        if self.condition not in CHANNELS:
            raise ValueError(f"condition '{self.condition}' is not one of {', '.join(CHANNELS)}")
        reference = self.metrics.preservation.reference_method if self.metrics.preservation else None
        if reference and (reference not in self.methods or self.methods[reference].kind != "text-only"):
            raise ValueError(f"metrics.preservation.reference_method '{reference}' must name a text-only method of the suite")
        if not self.methods:
            raise ValueError("methods: a suite needs at least one method")
        if self.data.source == "shapes" and self.data.split is None:
            raise ValueError("data.split: the shapes world needs a split (train, val or test)")
        return self


def parse_suite(data: dict, source: str | Path) -> Suite:
    """Validate a suite mapping; errors name `source`, the key path and what was expected."""
    try:
        return Suite.model_validate(data)
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or '(top level)'}: {e['msg']}" for e in error.errors())
        raise SuiteError(f"{source}: {problems}") from None
