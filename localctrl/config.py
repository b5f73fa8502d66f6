"""Every setting of localctrl in one place: pydantic models with their defaults and their choices.

One config system. `TrainConfig` (`localctrl train`: a YAML file plus `key.sub=value` overrides) embeds the z0
loss's, the masks', the optimiser's and the data's settings; `SamplerSettings` are what `localctrl sample`,
training validation and a suite's `sampler:` section use; a benchmark suite (bench/suite.py) embeds them and
partial training configs. A misspelt key is an error (extra="forbid") and a choice is a Literal type, so pydantic
names the allowed values and the command line lists them. Nothing here imports torch: the command line reads
these types when it starts.

Training defaults follow the paper's README (docs/method.md, "Training recipe"): AdamW lr 8e-5, weight decay 1e-2,
batch 4 with gradient accumulation 2, λ = 1e-3, cubic timesteps; caption dropout is a setting (the reference's 0.5
is high).
"""

from pathlib import Path
from typing import Any, ClassVar, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from localctrl.errors import InputError

ResizeMode = Literal["nearest", "area", "max"]  # a mask resized to a feature map (localctrl.masking)
MaskKind = Literal["box", "blob", "object", "full", "empty"]  # training mask generators (localctrl.data.masks)
Condition = Literal["canny", "canny-opencv", "colour-grid", "edges", "seg", "depth"]  # localctrl.data.conditions
PreparedCondition = Literal["canny", "colour-grid"]  # what `localctrl data prepare` computes (canny: OpenCV 100/200)
AdapterKind = Literal["full", "light", "full_xl"]  # localctrl.models.adapters
ControlNetMode = Literal["zero-condition", "mask-residuals"]  # localctrl.local_controlnet
Z0Filter = Literal["sobel", "laplacian", "none"]
Z0Reduction = Literal["image-mean", "mask-mean"]  # image-mean: the reference (dilutes small masks); mask-mean: over M
Z0Weighting = Literal["constant", "window", "noise"]
PrepareFit = Literal["crop", "stretch"]  # how `localctrl data prepare` makes an image square (localctrl.data.prepare)
Scheduler = Literal["ddim", "ddpm", "pndm", "euler", "euler-a", "dpm++", "unipc"]
Precision = Literal["fp32", "bf16", "fp16"]  # autocast dtype of the frozen modules when sampling (fp32: exact)
MixedPrecision = Literal["no", "bf16", "fp16"]  # accelerate's names, for training
Timesteps = Literal["cubic", "uniform"]
CiFormat = Literal["pm", "interval"]  # report cells: mean ± half the 95% CI width, or mean [lo, hi]
PerfPreset = Literal["cpu", "gpu"]  # localctrl perf: the tiny stack on CPU, or the prepared GPU check
PerfPrecision = Literal["bf16-weights", "bf16-autocast"]  # localctrl perf --preset gpu, the same for both samplers
PerfOnly = Literal["input-pipeline", "reruns"]  # localctrl perf --only: one measurement of the preset alone

# The reference code keeps only regions of at least 10,000 px² on 512×512 images; as a fraction it holds at any size.
REFERENCE_MIN_AREA = 10_000 / 512**2


M = TypeVar("M", bound=BaseModel)


class Section(BaseModel):
    # A misspelt key is an error, not a silently ignored setting; inf and NaN are never a valid number of anything.
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class Z0Settings(Section):
    """The z0 term ‖M ⊙ (S(ẑ0) − S(z0))‖² of the loss (localctrl.z0_loss)."""

    model_config = ConfigDict(frozen=True)
    enabled: bool = True
    weight: float = Field(1e-3, ge=0)  # λ (the paper's README; the reference code's default was 0.1)
    filter: Z0Filter = "sobel"
    reduction: Z0Reduction = "image-mean"
    weighting: Z0Weighting = "constant"
    window: tuple[int, int] = (500, 999)  # timesteps that get λ under the `window` weighting


class MaskSettings(Section):
    kinds: dict[MaskKind, float] = {"box": 1.0}  # mask generator → probability
    min_area: float = Field(REFERENCE_MIN_AREA, gt=0, le=1)  # box and blob masks: fraction of the image
    max_area: float = Field(0.5, gt=0, le=1)
    resize: ResizeMode = "area"

    @model_validator(mode="after")
    def ordered_areas(self):
        if self.min_area > self.max_area:
            raise ValueError(f"min_area {self.min_area} is larger than max_area {self.max_area}")
        return self


class OptimSettings(Section):
    lr: float = Field(8e-5, gt=0)
    weight_decay: float = Field(1e-2, ge=0)
    batch_size: int = Field(4, ge=1)
    grad_accum: int = Field(2, ge=1)
    max_grad_norm: float = Field(1.0, gt=0)
    warmup_steps: int = Field(0, ge=0)


class DataSource(Section):
    """Where examples come from: the shapes world (rendered in memory) or a manifest dataset folder."""

    source: str = "shapes"  # "shapes" or a folder with manifest.jsonl
    world_seed: int = 0  # the shapes world's seed


class DataSettings(DataSource):
    shapes_items: int = Field(2000, ge=1)  # training scenes of the shapes world when source is "shapes"
    validation_items: int = Field(16, ge=1)  # fixed held-out items (val split) for validation
    # The training input pipeline (localctrl.data.loader): neither setting changes a batch, only when it is made.
    workers: int = Field(0, ge=0, le=64)  # DataLoader worker processes making batches ahead (0: in the training process)
    prefetch: int = Field(2, ge=1, le=64)  # steps of batches each worker makes ahead
    # Encode every training image (the VAE's posterior) and caption once, before the loop (localctrl.data.latent_cache):
    # the same training up to float rounding, without the per-step VAE and text encoding.
    cache_latents: bool = False
    cache_dir: Path = Path("localctrl-runs/latent-cache")  # one folder per key (weights, data, size, dtype) under it

    # When and where batches are made, never what they hold: a run may resume with other values (they are MLflow tags,
    # not write-once params), and no adapter key holds them (bench.keys).
    SCHEDULING_FIELDS: ClassVar[tuple[str, ...]] = ("workers", "prefetch", "cache_dir")

    def train_items(self) -> int | None:
        """How many training items: `shapes_items` rendered scenes, or every train item of a manifest (None)."""
        return self.shapes_items if self.source == "shapes" else None


class TrainConfig(Section):
    base: str = "shapes-base"
    adapter: AdapterKind = "full"
    condition: Condition = "canny"
    masked: bool = True  # False: the global baseline (features never masked)
    masks: MaskSettings = MaskSettings()
    z0: Z0Settings = Z0Settings()
    optim: OptimSettings = OptimSettings()
    data: DataSettings = DataSettings()
    steps: int = Field(1000, ge=1)
    timesteps: Timesteps = "cubic"
    caption_dropout: float = Field(0.5, ge=0, le=1)
    mixed_precision: MixedPrecision = "no"
    gradient_checkpointing: bool = False
    seed: int = 0
    validate_every: int = Field(200, ge=1)
    validation_steps: int = Field(20, ge=1)  # sampler steps of validation images
    validation_scale: float = Field(1.0, gt=0)  # conditioning scale of validation images (a suite sets its sampler's)
    patience: int = Field(5, ge=1)  # validations without improvement before early stopping
    checkpoint_every: int = Field(100, ge=1)
    log_every: int = Field(10, ge=1)
    out: Path = Path("localctrl-runs/train")


class SamplerSettings(Section):
    """How images are sampled (localctrl.sampling)."""

    model_config = ConfigDict(frozen=True)
    scheduler: Scheduler = "ddim"
    steps: int = Field(30, ge=1)
    guidance: float = 7.5
    scale: float = 1.0  # adapter / ControlNet conditioning scale
    conditioning_factor: float = Field(1.0, ge=0, le=1)  # fraction of the first steps that receive the control
    batch_size: int = Field(16, ge=1)
    negative_prompt: str = ""
    precision: Precision = "fp32"
    # GPU speed-ups, off by default so the exact-equality tests hold (both change kernels, so the last bits too):
    channels_last: bool = False  # UNet and VAE weights to channels_last (in place; faster convolutions on tensor cores)
    compile: bool = False  # torch.compile the UNet (in place, once per UNet; the first batch of each size compiles)


def problems(error: ValidationError, prefix: str = "") -> str:
    """pydantic's errors as `key.path: message; …`, with the key paths a user finds in the file."""
    return "; ".join(f"{'.'.join(p for p in (prefix, *map(str, e['loc'])) if p) or '(top level)'}: {e['msg']}"
                     for e in error.errors())


class _SafeLoaderWithoutAliases(yaml.SafeLoader):
    """yaml.safe_load's loader (data only, never Python objects) that also refuses aliases: a few hundred bytes of
    nested `*alias` references expand to gigabytes in everything that walks the data afterwards."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            raise yaml.composer.ComposerError(None, None, "aliases (*name) are not allowed: write the values out",
                                              self.peek_event().start_mark)
        return super().compose_node(parent, index)


def validated(model: type[M], source: str, /, **values) -> M:
    """`model(**values)`, with pydantic's errors as one InputError naming `source` and each key path."""
    try:
        return model(**values)
    except ValidationError as error:
        raise InputError(f"{source}: {problems(error)}") from None


def read_yaml(text: str, source: str) -> Any:
    """YAML data (safe: no Python objects, no aliases); an error names `source`."""
    try:
        return yaml.load(text, Loader=_SafeLoaderWithoutAliases)  # noqa: S506 (a SafeLoader subclass)
    except yaml.YAMLError as error:
        raise InputError(f"{source} is not valid YAML: {error}") from None


def set_dotted(tree: dict, dotted: str, value) -> None:
    """tree["a"]["b"] = value for dotted = "a.b", creating the levels on the way."""
    *parents, leaf = dotted.split(".")
    for key in parents:
        tree = tree.setdefault(key, {})
    tree[leaf] = value


def train_config(*layers: dict[str, Any], source: str = "defaults") -> TrainConfig:
    """A training config: each layer's `{dotted key: value}` applied in order over the defaults; errors name `source`."""
    tree: dict = {}
    for layer in layers:
        for key, value in layer.items():
            set_dotted(tree, key, value)
    try:
        return TrainConfig.model_validate(tree)
    except ValidationError as error:
        raise InputError(f"{source}: {problems(error)}") from None


def load_train_config(path: str | Path | None = None, overrides: list[str] = ()) -> TrainConfig:
    """Config from a YAML file and `a.b=value` overrides (values parsed as YAML scalars), applied in order."""
    layers: list[dict[str, Any]] = []
    if path is not None:
        if not Path(path).is_file():
            raise InputError(f"config file {path} does not exist")
        settings = read_yaml(Path(path).read_text(encoding="utf-8"), f"config file {path}") or {}
        if not isinstance(settings, dict):
            raise InputError(f"config file {path}: expected a mapping of settings, got {type(settings).__name__}")
        layers.append(settings)
    for override in overrides:
        key, separator, value = override.partition("=")
        if not separator:
            raise InputError(f"override '{override}' must look like key.sub=value")
        layers.append({key.strip(): read_yaml(value, f"override '{override}'")})
    return train_config(*layers, source=str(path) if path is not None else "defaults")


def describe_changes(before: dict, after: dict) -> str:
    """'key: was A, now B; …' for every key whose value differs ('' when none): why a resume is refused."""
    keys = sorted(set(before) | set(after))
    return "; ".join(f"{key}: was {before.get(key)!r}, now {after.get(key)!r}" for key in keys if before.get(key) != after.get(key))
