"""Known pretrained components: where each is looked for locally, and how a user supplies it.

Nothing here downloads: `locate()` only looks at disk, so `localctrl doctor` and the benchmark's
up-front checks can say what is missing before any expensive work starts.
"""

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from localctrl.models.hub import find_cached
from localctrl.models.shipped import REBUILD, SHAPES_BASE_DIR, SHAPES_NET_DIR


@dataclass(frozen=True)
class Pretrained:
    name: str
    used_for: str
    source: str  # hub id or URL
    locate: Callable[[], Path | None]  # the local file or folder, or None
    how: str  # how to make it available offline


def weights_dir() -> Path:
    """Folder for single-file weights that have no hub repo (e.g. clean-fid's Inception)."""
    return Path(os.environ.get("LOCALCTRL_WEIGHTS_DIR", Path.home() / ".cache" / "localctrl" / "weights"))


def in_hub_cache(repo_id: str, *filenames: str) -> Callable[[], Path | None]:
    def locate() -> Path | None:
        for filename in filenames:
            if (found := find_cached(repo_id, filename)) is not None:
                return found
        return None

    return locate


def first_existing(*candidates: Callable[[], Path]) -> Callable[[], Path | None]:
    def locate() -> Path | None:
        return next((path for path in (candidate() for candidate in candidates) if path.exists()), None)

    return locate


def hub_component(name: str, used_for: str, repo_id: str, marker: str) -> Pretrained:
    how = f"`hf download {repo_id}` on a machine with network, then copy the Hugging Face cache here; or pass a local folder"
    return Pretrained(name, used_for, repo_id, in_hub_cache(repo_id, marker), how)


def shipped_component(name: str, used_for: str, folder: Path, marker: str) -> Pretrained:
    return Pretrained(name, used_for, "shipped with localctrl", lambda: folder if (folder / marker).is_file() else None,
                      f"reinstall localctrl, or rebuild it: {REBUILD[name]}")


# The shapes world's models (shipped), then the base models, adapters and ControlNets of METHOD.md.
MODEL_COMPONENTS = [
    shipped_component("shapes-base", "shapes-world base model", SHAPES_BASE_DIR, "model_index.json"),
    shipped_component("shapes-net", "FID-shapes, align-shapes", SHAPES_NET_DIR, "config.json"),
    hub_component("SD 1.4", "base model (the paper's runs)", "CompVis/stable-diffusion-v1-4", "model_index.json"),
    hub_component("SD 1.5", "base model", "stable-diffusion-v1-5/stable-diffusion-v1-5", "model_index.json"),
    hub_component("T2I-Adapter canny", "pretrained global adapter", "TencentARC/t2iadapter_canny_sd15v2", "config.json"),
    hub_component("T2I-Adapter depth", "pretrained global adapter", "TencentARC/t2iadapter_depth_sd15v2", "config.json"),
    hub_component("T2I-Adapter seg", "pretrained global adapter", "TencentARC/t2iadapter_seg_sd14v1", "config.json"),
    hub_component("ControlNet canny", "ControlNet baseline", "lllyasviel/control_v11p_sd15_canny", "config.json"),
]
