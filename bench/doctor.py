"""What this installation can do: versions, device, tracking store, and which pretrained parts are here."""

from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version

import torch

from localctrl.common.tracking import tracking_uri
from localctrl.models.weights import Pretrained, components, hub_cache
from localctrl.rehearsal import stand_in_root

PACKAGES = [
    "localctrl", "torch", "torchvision", "diffusers", "transformers", "accelerate", "safetensors", "mlflow",
    "torchmetrics", "clean-fid", "lpips", "open-clip-torch", "kornia", "opencv-python-headless", "numpy",
]


@dataclass(frozen=True)
class ComponentStatus:
    component: Pretrained
    location: str | None  # None: not available locally
    stand_in: bool = False  # the rehearsal's seeded random stand-in (`localctrl doctor --rehearse`)


def package_versions() -> dict[str, str]:
    found = {}
    for name in PACKAGES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "not installed"
    return found


def device_summary() -> str:
    if torch.cuda.is_available():
        names = sorted({torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())})
        return f"CUDA: {torch.cuda.device_count()} × {', '.join(names)} (torch CUDA {torch.version.cuda})"
    return f"CPU only ({torch.get_num_threads()} threads; torch built for CUDA {torch.version.cuda or 'none'})"


def component_statuses() -> list[ComponentStatus]:
    statuses = []
    for component in components():
        location = component.locate()
        statuses.append(ComponentStatus(component, str(location) if location else None,
                                        location is not None and stand_in_root(location) is not None))
    return statuses


def report() -> dict:
    return {
        "versions": package_versions(),
        "device": device_summary(),
        "tracking_uri": tracking_uri(),
        "hub_cache": hub_cache(),
        "components": component_statuses(),
    }
