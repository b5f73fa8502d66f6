"""A suite's methods as ready-to-sample adapters or ControlNets: given weights, seeded random ones, or trained here.

Adapters a suite trains come from the train stage (bench.stages.train). A method's cache key (bench.keys.method_key)
combines its control model's weight hash with how it is used at inference.
"""

from dataclasses import dataclass
from pathlib import Path

from bench.keys import method_key, module_hash
from bench.stages.train import trained_folder, training_run_id
from bench.suite import MethodSpec, Suite
from localctrl.data.conditions import CHANNELS
from localctrl.errors import InputError
from localctrl.local_adapter import LocalAdapter
from localctrl.local_controlnet import LocalControlNet
from localctrl.models.adapters import build_adapter, default_kind
from localctrl.models.controlnets import build_controlnet, check_controlnet_fits, load_controlnet
from localctrl.models.stacks import Stack


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


def resolve_method(suite: Suite, name: str, stack: Stack, cache: Path) -> Method:
    """The method's adapter or ControlNet on the stack's device, checked against the stack and the condition."""
    spec = suite.methods[name]
    run_id, origin, adapter = None, None, None
    if spec.kind == "adapter":
        if spec.train is not None:
            folder = trained_folder(suite, name, cache)
            run_id = training_run_id(folder)
            origin = f"trained:{folder.name}"  # the training config's hash: the same wherever the cache lives
            adapter = LocalAdapter.from_pretrained(folder / "adapter-best")
        elif spec.weights == "random":  # mechanics only: named so in the method's params
            origin = "random"
            adapter = LocalAdapter(build_adapter(stack, default_kind(stack), CHANNELS[suite.condition], seed=0))
        else:  # a folder or a cached hub id (bench.requirements has checked it is there)
            origin = spec.weights
            adapter = LocalAdapter.from_pretrained(origin)
        if spec.resize:
            adapter.resize = spec.resize
        stack.check_adapter(adapter.adapter)
        expected = adapter.adapter.config.in_channels
        if expected not in (CHANNELS[suite.condition], 3):  # 1-channel edges are repeated for RGB adapters (SDXL canny)
            raise InputError(f"methods.{name}: the adapter takes {expected} condition channel(s), but the suite's condition "
                             f"'{suite.condition}' has {CHANNELS[suite.condition]}")
        adapter.eval()
    controlnet = resolve_controlnet(suite, name, stack) if spec.kind == "controlnet" else None
    control = adapter or controlnet
    origin = origin or (spec.weights if controlnet is not None else None)
    scale = suite.sampler.scale if spec.scale is None else spec.scale  # the key holds the scale used, however it is set
    key = method_key(spec.kind, spec.mask_at_inference, scale, control.resize if control else None,
                     module_hash(control) if control else None, spec.local if control else None)
    if control is not None:
        control.to(stack.unet.device)  # features are computed where the UNet runs (--device)
    return Method(name, spec, adapter, key, run_id, origin, controlnet)


def resolve_controlnet(suite: Suite, name: str, stack: Stack) -> LocalControlNet:
    """docs/method.md, baseline 6: a ControlNet given the condition zeroed outside the mask, or with its residuals masked."""
    spec = suite.methods[name]
    channels = 3 if spec.local == "inpaint" else CHANNELS[suite.condition]  # inpainting: an RGB image, not the condition
    if spec.weights == "random":  # mechanics only
        model = build_controlnet(stack, seed=0, conditioning_channels=channels)
    else:
        model = load_controlnet(spec.weights)
    check_controlnet_fits(model, stack.unet, stack.image_size, stack.vae_scale_factor)
    expected = model.config.conditioning_channels
    if spec.local == "inpaint" and expected != 3:
        raise InputError(f"methods.{name}: local 'inpaint' needs an inpainting ControlNet (3 channels: the image, -1 where "
                         f"it repaints); {spec.weights} takes {expected}")
    if expected not in (CHANNELS[suite.condition], 3):  # 1-channel edges are repeated for RGB ControlNets (bench.stages.generate)
        raise InputError(f"methods.{name}: the ControlNet takes {expected} condition channels, but the suite's condition "
                         f"'{suite.condition}' has {CHANNELS[suite.condition]}")
    mode = "zero-condition" if spec.local == "zero-condition" else "mask-residuals"  # blend-latents, inpaint: no mask
    return LocalControlNet(model.eval(), mode=mode, resize=spec.resize or "area")
