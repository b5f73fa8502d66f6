"""`localctrl data prepare`: real images + captions → a manifest dataset at the training size.

Sources (localctrl.data.sources): an image folder with a captions file (CSV, JSONL, COCO captions JSON, or
img2dataset-style `.txt` files beside the images), or a Hugging Face `datasets` dataset saved on disk.

Each image is resized once (shorter side to `size` with Lanczos, then centre-cropped: not the reference's
downscale-then-upscale; or stretched to size×size, as ControlNet++'s evaluation does). Conditions are
precomputed: OpenCV Canny 100/200 as in the paper, colour grid; depth with DPT, min-max normalised to 0-255 as
ControlNet's and T2I-Adapter's MiDaS annotators do; seg as UperNet's ADE20K labels, which the adapters see in the
ADE20K palette; or a depth map or ADE20K label map the dataset ships (`--hf-condition`). The depth and seg networks used are recorded
in every item (`condition_models`) and in the report, ids are stable (from the file's relative path), splits come
from a seeded hash of the id (independent of listing order), unreadable images are listed in a report and skipped,
and a rerun skips finished items.
"""

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps
from rich.progress import track

from localctrl.common.files import write_png, write_text
from localctrl.config import PreparedCondition, PrepareFit
from localctrl.data.conditions import IGNORE_LABEL, canny_opencv, colour_grid
from localctrl.data.manifest import write_manifest
from localctrl.data.sources import SourceItem, folder_items
from localctrl.errors import InputError
from localctrl.models.detectors import NETWORKS, TransformersDetector, check_network
from localctrl.shapes.scene import SPLITS

PREPARED_CONDITIONS: dict[PreparedCondition, object] = {"canny": canny_opencv, "colour-grid": colour_grid}  # canny: the paper's
DEPTH_MODELS = ("dpt-hybrid", "dpt-large")  # hybrid: what T2I-Adapter's depth adapter was trained on
SEG_MODEL = "upernet-ade20k"
NETWORK_CONDITIONS = ("depth", "seg")  # computed with a network (localctrl.models.detectors)
REPORT = "prepare-report.json"


@dataclass
class PrepareReport:
    written: int = 0
    reused: int = 0
    skipped: list[dict] = field(default_factory=list)  # {"file": ..., "reason": ...}
    condition_models: dict[str, str] = field(default_factory=dict)  # condition → hub id of the network computing it


def min_max_uint8(values: torch.Tensor) -> np.ndarray:
    """A depth map min-max normalised to 0-255, as ControlNet's and T2I-Adapter's MiDaS annotators (and ControlNet++'s
    evaluation of a dataset's own depth maps) do."""
    low, high = values.min(), values.max()
    return ((values - low) / (high - low).clamp(min=1e-12) * 255).round().to(torch.uint8).numpy()


def network_condition(name: str, detector: TransformersDetector, image: np.ndarray) -> np.ndarray:
    """The depth (min-max normalised, uint8) or seg (labels, uint8) condition of one uint8 (H, W, 3) image."""
    values = detector(torch.from_numpy(image).permute(2, 0, 1)[None])[0, 0]
    if name == "seg":
        return values.round().to(torch.uint8).numpy()
    return min_max_uint8(values)


def shipped_depth(picture: Image.Image, size: int, fit: PrepareFit = "crop") -> np.ndarray:
    """A depth map the dataset ships, fitted as its image is, as grey, min-max normalised."""
    return min_max_uint8(torch.from_numpy(np.array(fitted(picture, size, fit).convert("L"))).float())


ADE20K_CLASSES = 150


def shipped_ade20k_labels(picture: Image.Image, size: int, fit: PrepareFit = "crop") -> np.ndarray:
    """An ADE20K annotation the dataset ships (0 "other", 1-150 the classes; Captioned_ADE20K's `seg_map`), fitted as
    its image is but with nearest-neighbour sampling, as labels 0-149 with "other" as IGNORE_LABEL: mmseg's
    reduce_zero_label, which ControlNet++'s evaluation applies."""
    if picture.mode not in ("L", "P", "I", "I;16"):
        raise ValueError(f"an ADE20K label map holds one class per pixel (a grey PNG), not mode {picture.mode}")
    raw = np.array(fitted(picture, size, fit, labels=True)).astype(np.int64)
    if raw.max() > ADE20K_CLASSES:
        raise ValueError(f"an ADE20K label map holds classes 0-{ADE20K_CLASSES}, not {int(raw.max())}")
    return np.where(raw == 0, IGNORE_LABEL, raw - 1).astype(np.uint8)


SHIPPED = {"depth": shipped_depth, "seg": shipped_ade20k_labels}  # conditions a dataset's own column can give


def stable_id(relative: str) -> str:
    stem = re.sub(r"[^A-Za-z0-9_-]+", "-", Path(relative).with_suffix("").as_posix()).strip("-")[:60]
    return f"{stem}-{hashlib.sha1(relative.encode()).hexdigest()[:8]}"


def split_of(item_id: str, seed: int, probabilities: tuple[float, float, float]) -> str:
    """A split from a seeded hash of the id: the same item lands in the same split in every rerun and order."""
    u = int(hashlib.sha256(f"{seed}:{item_id}".encode()).hexdigest()[:12], 16) / 16**12
    return SPLITS[int(np.searchsorted(np.cumsum(probabilities), u, side="right").clip(max=len(SPLITS) - 1))]


def fitted(image: Image.Image, size: int, fit: PrepareFit = "crop", labels: bool = False) -> Image.Image:
    """size×size in one resampling: `crop` takes the shorter side to `size` (Lanczos) and the centre square;
    `stretch` resizes the whole image to size×size (bicubic), changing its aspect, as ControlNet++'s evaluation does.
    `labels`: a label map, kept in its mode and sampled at the nearest pixel (as ControlNet++ resizes its labels)."""
    if labels:
        method = Image.Resampling.NEAREST  # a palette ("P") image keeps its indices: they are the labels
    else:
        image, method = image.convert("RGB"), Image.Resampling.BICUBIC if fit == "stretch" else Image.Resampling.LANCZOS
    if fit == "stretch":
        return image.resize((size, size), method)
    return ImageOps.fit(image, (size, size), method=method, centering=(0.5, 0.5))


def prepare_dataset(images: Path | Sequence[SourceItem], captions: Path | None, out: Path, size: int = 512,
                    conditions: tuple[str, ...] = ("canny",), seed: int = 0,
                    split_probs: tuple[float, float, float] = (0.9, 0.05, 0.05), depth_model: str = "dpt-hybrid",
                    device: str = "cpu", fit: PrepareFit = "crop") -> PrepareReport:
    """Write `out` from an image folder + captions file, or from source items (e.g. `hf_dataset_items`); `fit`: how an
    image becomes size×size (`fitted`)."""
    items = folder_items(images, captions) if isinstance(images, Path) else images
    shipped = {name for item in items[:1] for name in item.conditions}  # the dataset's own maps (hf_dataset_items)
    conditions = tuple(dict.fromkeys([*conditions, *sorted(shipped)]))
    for name in shipped:
        if name not in SHIPPED:
            raise InputError(f"condition '{name}' cannot be taken from a dataset column (only {', '.join(SHIPPED)} can)")
    unknown = set(conditions) - set(PREPARED_CONDITIONS) - set(NETWORK_CONDITIONS)
    if unknown:
        raise InputError(f"conditions {sorted(unknown)} cannot be prepared here; known: "
                         f"{', '.join([*PREPARED_CONDITIONS, *NETWORK_CONDITIONS])}")
    if depth_model not in DEPTH_MODELS:
        raise InputError(f"depth model '{depth_model}' is not one of {', '.join(DEPTH_MODELS)}")
    networks = {name: depth_model if name == "depth" else SEG_MODEL for name in conditions
                if name in NETWORK_CONDITIONS and name not in shipped}
    for network in networks.values():  # missing or pickled weights: one clear error before any image is read
        check_network(network)
    if not items:
        raise InputError(f"no images to prepare from {captions or images}")
    for name in shipped:  # a column of the wrong kind fails here, not as every item skipped
        try:
            with items[0].conditions[name]() as opened:
                SHIPPED[name](opened, 8, fit)
        except ValueError as error:
            raise InputError(f"{items[0].origin}: its {name} column: {error}") from None
        except (OSError, SyntaxError):
            pass  # an unreadable file: reported and skipped below, like any other
    detectors = {name: TransformersDetector.named(network, device) for name, network in networks.items()}
    models = {name: NETWORKS[network].repo for name, network in networks.items()} | {name: "the dataset's own" for name in shipped}
    for folder in ("images", *(f"conditions/{name}" for name in conditions)):
        (out / folder).mkdir(parents=True, exist_ok=True)
    report, rows = PrepareReport(), []
    for source in track(items, description=f"preparing → {out}"):
        item_id, caption = stable_id(source.key), source.caption
        targets = {"image": f"images/{item_id}.png"} | {name: f"conditions/{name}/{item_id}.png" for name in conditions}
        if all((out / path).is_file() for path in targets.values()):
            report.reused += 1
        else:
            try:
                with source.open() as opened:
                    image = fitted(opened, size, fit)
                maps = {}
                for name in shipped:
                    with source.conditions[name]() as opened:
                        maps[name] = SHIPPED[name](opened, size, fit)
            except (OSError, SyntaxError, ValueError) as error:
                report.skipped.append({"file": source.origin, "reason": f"{type(error).__name__}: {error}"})
                continue
            array = np.array(image)  # writable: torch refuses to wrap read-only PIL buffers
            tensor = torch.from_numpy(array).permute(2, 0, 1)[None].float() / 255
            for name in conditions:
                if name in maps:
                    write_png(out / targets[name], maps[name])
                    continue
                if name in detectors:
                    write_png(out / targets[name], network_condition(name, detectors[name], array))
                    continue
                condition = PREPARED_CONDITIONS[name](tensor)[0]
                write_png(out / targets[name], (condition * 255).round().byte().permute(1, 2, 0).squeeze(-1).numpy())
            write_png(out / targets["image"], array)
            report.written += 1
        row = {"id": item_id, "image": targets["image"], "caption": caption, "split": split_of(item_id, seed, split_probs),
               "conditions": {name: targets[name] for name in conditions}, "source": source.key}
        if models:
            row["condition_models"] = models
        if "seg" in conditions:
            row["seg_palette"] = "ade20k"
        rows.append(row)
    report.condition_models = models
    write_manifest(out, rows)
    write_text(out / REPORT, json.dumps(report.__dict__, indent=2) + "\n")
    return report
