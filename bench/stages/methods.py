"""A suite's methods as ready-to-sample adapters: given weights, seeded random ones, or trained here (cached).

Training goes through `localctrl.train.train`, the code behind `localctrl train`. Its output folder is
`<cache>/adapters/<hash of the resolved training config>`, and a `bench-done.json` written after training
finishes marks it reusable: a second run of the suite trains nothing (a killed training resumes from its
checkpoint). The method's cache key combines its adapter's weight hash with how it is used at inference.
"""

import json
from dataclasses import dataclass
from pathlib import Path

from bench.keys import json_hash, module_hash
from bench.suite_schema import MethodSpec, Suite
from localctrl.models.adapters import build_adapter
from localctrl.data.conditions import CHANNELS
from localctrl.local_adapter import LocalAdapter
from localctrl.local_controlnet import LocalControlNet, build_controlnet, check_controlnet_fits, load_controlnet
from localctrl.models.stacks import Stack
from localctrl.config import TrainConfig, load_train_config

DONE = "bench-done.json"


@dataclass
class Method:
    name: str
    spec: MethodSpec
    adapter: LocalAdapter | None
    key: str  # hash of everything about the method that changes its images
    training_run_id: str | None = None
    weights: str | None = None  # where the adapter or ControlNet came from: a folder, hub id, "random" or "trained:<hash>"
    controlnet: LocalControlNet | None = None

    @property
    def controlled(self) -> bool:
        return self.adapter is not None or self.controlnet is not None


def training_config(suite: Suite, method: MethodSpec, cache: Path) -> TrainConfig:
    """The method's training config: suite defaults, then the method's keys; base, condition, data from the suite."""
    settings = {"base": suite.base, "condition": suite.condition, "data.source": suite.data.source,
                "data.world_seed": suite.data.world_seed, **suite.train_defaults, **(method.train or {})}
    overrides = [f"{key}={json.dumps(value)}" for key, value in settings.items()]
    config = load_train_config(overrides=overrides)
    digest = json_hash(config.model_dump(mode="json", exclude={"out"}))[:16]
    return config.model_copy(update={"out": cache / "adapters" / digest})


def needs_training(suite: Suite, cache: Path) -> dict[str, TrainConfig]:
    """Method name → its training config, for the methods whose adapter is not trained yet."""
    configs = {name: training_config(suite, spec, cache) for name, spec in suite.methods.items() if spec.train is not None}
    return {name: config for name, config in configs.items() if not (Path(config.out) / DONE).is_file()}


def train_method(config: TrainConfig, processes: int = 1) -> None:
    """Train (or resume) the method's adapter; with several processes, DDP at the same effective batch."""
    from localctrl.train import train

    if processes > 1:  # every process trains together: accumulation shrinks so batch × accumulation × processes is unchanged
        accumulation, remainder = divmod(config.optim.grad_accum, processes)
        if remainder or not accumulation:
            raise ValueError(f"{config.out}: gradient accumulation {config.optim.grad_accum} cannot be split over {processes} processes; "
                             "train it with one process first (the adapter is then reused)")
        config = config.model_copy(update={"optim": config.optim.model_copy(update={"grad_accum": accumulation})})
    result = train(config)
    if result.run_id is not None:  # the main process marks the adapter done
        (Path(config.out) / DONE).write_text(json.dumps({"run_id": result.run_id, "steps": result.steps,
                                                         "best_val_edge_f1_in": result.best_metric}, indent=2) + "\n")


def resolve_method(suite: Suite, name: str, stack: Stack, cache: Path) -> Method:
    """The method's adapter or ControlNet on the stack's device, checked against the stack and the condition."""
    spec = suite.methods[name]
    run_id, origin, adapter = None, None, None
    if spec.kind == "adapter":
        if spec.train is not None:
            folder = Path(training_config(suite, spec, cache).out)
            run_id = json.loads((folder / DONE).read_text())["run_id"]
            origin = f"trained:{folder.name}"  # the training config's hash: the same wherever the cache lives
            adapter = LocalAdapter.from_pretrained(folder / "adapter-best")
        elif spec.weights == "random":  # mechanics only: named so in the method's params
            origin = "random"
            adapter = LocalAdapter(build_adapter(stack, "full", CHANNELS[suite.condition], seed=0))
        else:  # a folder or a cached hub id (bench.requirements has checked it is there)
            origin = spec.weights
            adapter = LocalAdapter.from_pretrained(origin)
        if spec.resize:
            adapter.resize = spec.resize
        stack.check_adapter(adapter.adapter)
        expected = adapter.adapter.config.in_channels
        if expected != CHANNELS[suite.condition]:
            raise ValueError(f"methods.{name}: the adapter takes {expected} condition channel(s), but the suite's condition "
                             f"'{suite.condition}' has {CHANNELS[suite.condition]}")
        adapter.eval()
    controlnet = resolve_controlnet(suite, name, stack) if spec.kind == "controlnet" else None
    control = adapter or controlnet
    origin = origin or (spec.weights if controlnet is not None else None)
    usage = {"kind": spec.kind, "mask_at_inference": spec.mask_at_inference, "scale": spec.scale,
             "resize": control.resize if control else None, "weights": module_hash(control) if control else None,
             "controlnet_mode": controlnet.mode if controlnet else None}
    if control is not None:
        control.to(stack.unet.device)  # features are computed where the UNet runs (--device)
    return Method(name, spec, adapter, json_hash(usage), run_id, origin, controlnet)


def resolve_controlnet(suite: Suite, name: str, stack: Stack) -> LocalControlNet:
    """METHOD.md baseline 6: a ControlNet given the condition zeroed outside the mask, or with its residuals masked."""
    spec = suite.methods[name]
    if spec.weights == "random":  # mechanics only
        model = build_controlnet(stack, seed=0, conditioning_channels=CHANNELS[suite.condition])
    else:
        model = load_controlnet(spec.weights)
    check_controlnet_fits(model, stack.unet, stack.image_size, stack.vae_scale_factor)
    expected = model.config.conditioning_channels
    if expected not in (CHANNELS[suite.condition], 3):  # 1-channel edges are repeated for RGB ControlNets (bench.stages.generate)
        raise ValueError(f"methods.{name}: the ControlNet takes {expected} condition channels, but the suite's condition "
                         f"'{suite.condition}' has {CHANNELS[suite.condition]}")
    return LocalControlNet(model.eval(), mode=spec.controlnet_mode, resize=spec.resize or "area")
