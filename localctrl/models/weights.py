"""Where every pretrained component is looked for, and how a user provides it: the one answer to "where are weights?".

- Models (base stacks, adapters, ControlNets) are a local folder in diffusers format or a hub id in the Hugging Face
  cache (`resolve_pretrained`). Nothing here downloads, whatever HF_HUB_OFFLINE says: weights arrive only through
  `localctrl fetch SUITE` (bench.fetch: lists the exact files and sizes, asks first) or the user's own
  `hf download`. Pickled `.bin` weights are refused, never unpickled (`localctrl convert`: localctrl.models.convert).
- Metric networks are single files where their libraries look for them (clean-fid's Inception, torchvision's
  AlexNet for LPIPS) or hub repos (open_clip's CLIP); `require(name)` finds one or raises `MetricUnavailable`.
- The shapes world's models ship inside the package (`SHAPES_BASE_DIR`, `SHAPES_NET_DIR`).
`components()` lists them all for `localctrl doctor`, the benchmark's up-front checks and `localctrl fetch`.
"""

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from localctrl.errors import NotAvailableError

SHIPPED_DIR = Path(__file__).resolve().parents[1] / "weights"
SHAPES_BASE_DIR = SHIPPED_DIR / "shapes-base"  # diffusers pipeline folder (safetensors)
SHAPES_NET_DIR = SHIPPED_DIR / "shapes-net"  # safetensors + config.json
REBUILD = {
    "shapes-base": "localctrl world pretrain --out DIR (then pass DIR/shapes-base)",
    "shapes-net": "localctrl world train-net --out DIR",
}

INCEPTION_URL = "https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/metrics/inception-2015-12-05.pt"
INCEPTION_FILE = "inception-2015-12-05.pt"
CLEANFID_DOWNLOAD_DIR = Path("/tmp")  # where clean-fid itself saves the Inception file on Linux
ALEXNET_FILE = "alexnet-owt-7be5be79.pth"  # torchvision's ImageNet AlexNet, LPIPS's default backbone
ALEXNET_URL = f"https://download.pytorch.org/models/{ALEXNET_FILE}"
CLIP_REPO = "timm/vit_base_patch16_clip_224.openai"  # open_clip's source for ViT-B-16 / openai
OPEN_CLIP_FILES = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")  # what open_clip fetches from a repo




class ModelNotAvailableError(NotAvailableError):
    """Pretrained weights that are neither a local folder nor in the Hugging Face cache."""


class MetricUnavailable(NotAvailableError):
    """A metric whose pretrained weights are not on this machine. The message names the file and how to supply it."""

    def __init__(self, metric: str, missing: str, how: str):
        self.metric, self.missing, self.how = metric, missing, how
        super().__init__(f"{metric} is unavailable: {missing} was not found. To provide it: {how}. "
                         "(Nothing is downloaded; a random-weight network is used only when its name says so.)")


# --- models: a folder or the Hugging Face cache --------------------------------------------------------------------

def hub_cache() -> str:
    from huggingface_hub import constants

    return constants.HF_HUB_CACHE


def how_to_provide(repo_id: str) -> str:
    return (
        f"To provide it: run `localctrl fetch SUITE` (lists the exact files a suite needs and their sizes, asks, then "
        f"downloads), or on a machine with network run `hf download {repo_id}` and copy its Hugging Face cache here "
        f"(HF_HOME or HF_HUB_CACHE point at it; looked in: {hub_cache()}), or pass a local folder in diffusers format "
        f"instead of '{repo_id}'."
    )


WEIGHT_FILE_SUFFIXES = (".safetensors", ".ckpt", ".bin", ".pt", ".pth", ".pkl", ".json", ".yaml")


def resolve_pretrained(name_or_path: str | Path, what: str = "model") -> Path:
    """Return the local folder holding `name_or_path` (a folder, or a hub id already in the cache).

    Never touches the network, even with HF_HUB_OFFLINE unset (weights are fetched only on request, `localctrl
    fetch`); anything else is one `ModelNotAvailableError` naming the model and how to supply it.
    """
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HFValidationError

    path = Path(name_or_path).expanduser()
    if path.is_dir():
        return path
    repo_id = str(name_or_path)
    # A weights file is not a model folder; a dot alone is no sign of one (stabilityai/stable-diffusion-xl-base-1.0).
    if path.suffix in WEIGHT_FILE_SUFFIXES or repo_id.startswith((".", "/", "~")) or repo_id.count("/") != 1:
        raise ModelNotAvailableError(f"{what} '{repo_id}' is not a folder (and does not look like a hub id 'org/name').")
    try:
        return Path(snapshot_download(repo_id, local_files_only=True))  # the cache only: no request is made
    except HFValidationError as error:
        raise ModelNotAvailableError(f"{what} '{repo_id}' is neither a local folder nor a valid hub id: {error}") from None
    except FileNotFoundError:
        raise ModelNotAvailableError(
            f"{what} '{repo_id}' is not in the Hugging Face cache (localctrl never downloads while it runs). "
            f"{how_to_provide(repo_id)}"
        ) from None


def shipped_folder(name: str, folder: Path, marker: str) -> Path:
    """A model shipped inside the package, or ModelNotAvailableError saying how to rebuild it."""
    if not (folder / marker).is_file():
        raise ModelNotAvailableError(f"{name} is not in this installation ({folder}); rebuild it: {REBUILD[name]}")
    return folder


# --- the list doctor prints and requirements check -----------------------------------------------------------------

class Pretrained(NamedTuple):
    name: str
    used_for: str
    source: str  # hub id or URL
    locate: Callable[[], Path | None]  # the local file or folder, or None
    how: str  # how to make it available offline
    metric: bool = False  # a metric network (else a model)


def weights_dir() -> Path:
    """Folder for single-file weights that have no hub repo (e.g. clean-fid's Inception)."""
    return Path(os.environ.get("LOCALCTRL_WEIGHTS_DIR", Path.home() / ".cache" / "localctrl" / "weights"))


def torch_hub_checkpoints() -> Path:
    """torch.hub.get_dir() / "checkpoints". Without importing torch when nothing has (a rerun with nothing to compute,
    bench.finished), by the rule get_dir documents; torch.hub.set_dir cannot have moved it then."""
    if "torch" in sys.modules:
        return Path(sys.modules["torch"].hub.get_dir()) / "checkpoints"
    home = os.getenv("TORCH_HOME", os.path.join(os.getenv("XDG_CACHE_HOME", "~/.cache"), "torch"))
    return Path(os.path.expanduser(home)) / "hub" / "checkpoints"


def in_hub_cache(repo_id: str, *filenames: str) -> Callable[[], Path | None]:
    """A locator of the first of `filenames` cached for hub repo `repo_id`; never touches the network."""
    def locate() -> Path | None:
        from huggingface_hub import try_to_load_from_cache

        for filename in filenames:
            if isinstance(found := try_to_load_from_cache(repo_id, filename), str):
                return Path(found)
        return None

    return locate


def first_existing(*candidates: Callable[[], Path]) -> Callable[[], Path | None]:
    def locate() -> Path | None:
        return next((path for path in (candidate() for candidate in candidates) if path.exists()), None)

    return locate


def hub_component(name: str, used_for: str, repo_id: str, marker: str, metric: bool = False) -> Pretrained:
    how = (f"`localctrl fetch SUITE`, or `hf download {repo_id}` on a machine with network, then copy the Hugging Face "
           "cache here; or pass a local folder")
    return Pretrained(name, used_for, repo_id, in_hub_cache(repo_id, marker), how, metric)


def shipped_component(name: str, used_for: str, folder: Path, marker: str) -> Pretrained:
    return Pretrained(name, used_for, "shipped with localctrl", lambda: folder if (folder / marker).is_file() else None,
                      f"reinstall localctrl, or rebuild it: {REBUILD[name]}")


def components() -> list[Pretrained]:
    """Every pretrained component, where it is looked for now (environment variables are read at each call)."""
    return [
        # The shapes world's models (shipped), then the base models, adapters and ControlNets of docs/method.md.
        shipped_component("shapes-base", "shapes-world base model", SHAPES_BASE_DIR, "model_index.json"),
        shipped_component("shapes-net", "FID-shapes, align-shapes", SHAPES_NET_DIR, "config.json"),
        hub_component("SD 1.4", "base model (the paper's runs)", "CompVis/stable-diffusion-v1-4", "model_index.json"),
        hub_component("SD 1.5", "base model", "stable-diffusion-v1-5/stable-diffusion-v1-5", "model_index.json"),
        hub_component("T2I-Adapter canny", "pretrained global adapter", "TencentARC/t2iadapter_canny_sd15v2", "config.json"),
        hub_component("T2I-Adapter depth", "pretrained global adapter", "TencentARC/t2iadapter_depth_sd15v2", "config.json"),
        hub_component("T2I-Adapter seg", "pretrained global adapter", "TencentARC/t2iadapter_seg_sd14v1", "config.json"),
        hub_component("ControlNet canny", "ControlNet baseline (paper-canny-sd15)", "lllyasviel/sd-controlnet-canny", "config.json"),
        hub_component("ControlNet canny v1.1", "ControlNet baseline", "lllyasviel/control_v11p_sd15_canny", "config.json"),
        # The metrics' networks.
        Pretrained("Inception (clean-fid)", "FID / KID", INCEPTION_URL,
                   first_existing(lambda: weights_dir() / INCEPTION_FILE, lambda: CLEANFID_DOWNLOAD_DIR / INCEPTION_FILE),
                   f"`localctrl fetch SUITE`, or download {INCEPTION_URL} into {weights_dir()} (or set LOCALCTRL_WEIGHTS_DIR)", metric=True),
        Pretrained("CLIP ViT-B/16 (openai)", "CLIP score", CLIP_REPO, in_hub_cache(CLIP_REPO, *OPEN_CLIP_FILES),
                   f"`localctrl fetch SUITE`, or on a machine with network run `hf download {CLIP_REPO}`, then copy the Hugging Face cache here", metric=True),
        Pretrained("LPIPS AlexNet backbone", "LPIPS (outside-mask preservation)", "torchvision AlexNet_Weights.IMAGENET1K_V1",
                   first_existing(lambda: torch_hub_checkpoints() / ALEXNET_FILE),
                   f"`localctrl fetch SUITE`, or put {ALEXNET_URL} into {torch_hub_checkpoints()}", metric=True),
        hub_component("DPT hybrid MiDaS", "depth conditions (T2I-Adapter's depth detector)", "Intel/dpt-hybrid-midas", "config.json",
                      metric=True),
        hub_component("DPT large", "depth fidelity (ControlNet++'s detector)", "Intel/dpt-large", "config.json", metric=True),
        hub_component("UperNet ConvNeXt-S (ADE20K)", "segmentation fidelity", "openmmlab/upernet-convnext-small", "config.json",
                      metric=True),
        hub_component("Mask2Former Swin-L (ADE20K)", "segmentation fidelity (ControlNet++'s segmenter)",
                      "facebook/mask2former-swin-large-ade-semantic", "config.json", metric=True),
    ]


def require(name: str) -> Path:
    """Local path of the metric network called `name` (only looks; never downloads), or MetricUnavailable."""
    component = next((c for c in components() if c.name == name and c.metric), None)
    if component is None:  # a programming error, not a missing file: name what exists
        raise KeyError(f"no metric component '{name}'; known: {[c.name for c in components() if c.metric]}")
    path = component.locate()
    if path is None:
        raise MetricUnavailable(f"{component.used_for} ({component.name})", component.source, component.how)
    return path
