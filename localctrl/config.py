"""`localctrl train` settings: a YAML file plus `key.sub=value` overrides, validated with path-qualified errors.

Defaults follow the paper's README (METHOD.md): AdamW lr 8e-5, weight decay 1e-2, batch 4 with gradient
accumulation 2, λ = 1e-3, cubic timesteps; caption dropout is a setting (the reference's 0.5 is high).
"""

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from localctrl.local_adapter import RESIZE_MODES
from localctrl.data.masks import MASK_KINDS, REFERENCE_MIN_AREA
from localctrl.z0_loss import FILTERS, REDUCTIONS, WEIGHTINGS


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a misspelt key is an error, not a silently ignored setting


class DataSettings(Section):
    source: str = "shapes"  # "shapes" (rendered in memory) or a manifest dataset folder
    shapes_items: int = Field(2000, ge=1)  # items of the shapes world when source is "shapes"
    world_seed: int = 0
    validation_items: int = Field(16, ge=1)  # fixed held-out items (val split) for validation


class MaskSettings(Section):
    kinds: dict[str, float] = {"box": 1.0}  # mask generator → probability
    min_area: float = Field(REFERENCE_MIN_AREA, gt=0, le=1)
    max_area: float = Field(0.5, gt=0, le=1)
    resize: str = "area"

    def model_post_init(self, _context) -> None:
        unknown = set(self.kinds) - set(MASK_KINDS)
        if unknown:
            raise ValueError(f"masks.kinds: unknown kind(s) {sorted(unknown)}; known: {', '.join(MASK_KINDS)}")
        if self.resize not in RESIZE_MODES:
            raise ValueError(f"masks.resize: '{self.resize}' is not one of {', '.join(RESIZE_MODES)}")


class Z0LossSettings(Section):
    enabled: bool = True
    weight: float = Field(1e-3, ge=0)
    filter: Literal[FILTERS] = "sobel"  # type: ignore[valid-type]
    reduction: Literal[REDUCTIONS] = "image-mean"  # type: ignore[valid-type]
    weighting: Literal[WEIGHTINGS] = "constant"  # type: ignore[valid-type]
    window: tuple[int, int] = (500, 999)


class OptimSettings(Section):
    lr: float = Field(8e-5, gt=0)
    weight_decay: float = Field(1e-2, ge=0)
    batch_size: int = Field(4, ge=1)
    grad_accum: int = Field(2, ge=1)
    max_grad_norm: float = Field(1.0, gt=0)
    warmup_steps: int = Field(0, ge=0)


class TrainConfig(Section):
    base: str = "shapes-base"
    adapter: Literal["full", "light", "full_xl"] = "full"
    condition: str = "canny"
    masked: bool = True  # False: the global baseline (features never masked)
    masks: MaskSettings = MaskSettings()
    z0: Z0LossSettings = Z0LossSettings()
    optim: OptimSettings = OptimSettings()
    data: DataSettings = DataSettings()
    steps: int = Field(1000, ge=1)
    timesteps: Literal["cubic", "uniform"] = "cubic"
    caption_dropout: float = Field(0.5, ge=0, le=1)
    mixed_precision: Literal["no", "bf16", "fp16"] = "no"
    gradient_checkpointing: bool = False
    seed: int = 0
    validate_every: int = Field(200, ge=1)
    validation_steps: int = Field(20, ge=1)  # sampler steps of validation images
    patience: int = Field(5, ge=1)  # validations without improvement before early stopping
    checkpoint_every: int = Field(100, ge=1)
    log_every: int = Field(10, ge=1)
    out: Path = Path("localctrl-runs/train")


def _set_dotted(tree: dict, dotted: str, value) -> None:
    *parents, leaf = dotted.split(".")
    for key in parents:
        tree = tree.setdefault(key, {})
    tree[leaf] = value


def load_train_config(path: str | Path | None = None, overrides: list[str] = ()) -> TrainConfig:
    """Config from YAML (safe_load) and `a.b=value` overrides (values parsed as YAML scalars)."""
    tree: dict = {}
    source = "defaults"
    if path is not None:
        source = str(path)
        try:
            tree = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        except FileNotFoundError:
            raise ValueError(f"config file {path} does not exist") from None
        except yaml.YAMLError as error:
            raise ValueError(f"config file {path} is not valid YAML: {error}") from None
    for override in overrides:
        key, separator, value = override.partition("=")
        if not separator:
            raise ValueError(f"override '{override}' must look like key.sub=value")
        _set_dotted(tree, key.strip(), yaml.safe_load(value))
    try:
        return TrainConfig.model_validate(tree)
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
        raise ValueError(f"{source}: {problems}") from None
