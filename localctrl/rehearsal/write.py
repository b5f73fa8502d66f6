"""`write_rehearsal(DIR)`: every stand-in where its library looks for it, plus the script that rehearses the paper run.

    DIR/LOCALCTRL-REHEARSAL.json   the marker: everything below DIR is a stand-in
    DIR/hub/                       a Hugging Face hub cache (HF_HUB_CACHE) with every hub repo localctrl names
    DIR/weights/                   LOCALCTRL_WEIGHTS_DIR: clean-fid's inception-2015-12-05.pt
    DIR/torch/hub/checkpoints/     TORCH_HOME's checkpoints: torchvision's alexnet-owt-7be5be79.pth
    DIR/coco/                      a COCO-layout image folder and captions_val2017.json, for `localctrl data prepare`
    DIR/multigen-canny-eval/       a MultiGen-20M canny eval split saved with datasets' save_to_disk (`--hf-dataset`)
    DIR/captioned-ade20k/          a Captioned_ADE20K validation split, likewise (image, control_seg, seg_map, prompt)
    DIR/rehearsal.env, rehearse.sh the environment that points the libraries here, and the steps (`STEPS`)
"""

import json
import os
import shlex
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from unittest.mock import patch

import numpy as np
from PIL import Image, ImageDraw

from localctrl.errors import InputError
from localctrl.models.weights import ALEXNET_FILE, CLIP_REPO, INCEPTION_FILE
from localctrl.rehearsal import MARKER
from localctrl.rehearsal.hub_cache import write_snapshot
from localctrl.rehearsal.inception import write_inception
from localctrl.rehearsal.metric_files import alexnet_checkpoint, open_clip_repo
from localctrl.rehearsal.models import (
    controlnet,
    controlnet_xl,
    dpt_hybrid,
    dpt_large,
    mask2former,
    sd_pipeline,
    sdxl_pipeline,
    t2i_adapter,
    t2i_adapter_xl,
    upernet_convnext,
)

# Every hub repo that localctrl's components and shipped suites name, and how its stand-in is written.
REPOS: dict[str, Callable[[Path], Path]] = {
    "CompVis/stable-diffusion-v1-4": partial(sd_pipeline, diffusers_version="0.2.2", seed=14),
    "stable-diffusion-v1-5/stable-diffusion-v1-5": partial(sd_pipeline, diffusers_version="0.6.0", seed=15),
    "TencentARC/t2iadapter_canny_sd15v2": partial(t2i_adapter, in_channels=1, seed=20),
    "TencentARC/t2iadapter_depth_sd15v2": partial(t2i_adapter, in_channels=3, seed=21),
    "TencentARC/t2iadapter_seg_sd14v1": partial(t2i_adapter, in_channels=3, seed=22),
    "lllyasviel/sd-controlnet-canny": partial(controlnet, seed=30, formats=("safetensors", "bin")),
    "lllyasviel/control_v11p_sd15_canny": partial(controlnet, seed=31, formats=("safetensors", "bin", "fp16"),
                                                  name_or_path="/home/patrick/controlnet_v1_1/control_v11p_sd15_canny"),
    "lllyasviel/sd-controlnet-depth": partial(controlnet, seed=32, formats=("safetensors", "bin")),
    "lllyasviel/control_v11f1p_sd15_depth": partial(controlnet, seed=35, formats=("safetensors", "bin", "fp16"),
                                                    name_or_path="/home/patrick/controlnet_v1_1/control_v11f1p_sd15_depth"),
    "lllyasviel/sd-controlnet-seg": partial(controlnet, seed=33, formats=("safetensors", "bin")),
    "lllyasviel/control_v11p_sd15_inpaint": partial(controlnet, seed=37, formats=("safetensors", "bin", "fp16"),
                                                    name_or_path="/home/patrick/controlnet_v1_1/control_v11p_sd15_inpaint"),
    "lllyasviel/control_v11p_sd15_seg": partial(controlnet, seed=36, formats=("safetensors", "bin", "fp16"),
                                                name_or_path="/home/patrick/controlnet_v1_1/control_v11p_sd15_seg"),
    "stabilityai/stable-diffusion-xl-base-1.0": partial(sdxl_pipeline, seed=16),
    "TencentARC/t2i-adapter-canny-sdxl-1.0": partial(t2i_adapter_xl, in_channels=3, seed=23),
    "diffusers/controlnet-canny-sdxl-1.0": partial(controlnet_xl, seed=38),
    "TencentARC/t2i-adapter-depth-midas-sdxl-1.0": partial(t2i_adapter_xl, in_channels=3, seed=24),
    "diffusers/controlnet-depth-sdxl-1.0": partial(controlnet_xl, seed=39),
    CLIP_REPO: partial(open_clip_repo, seed=40),
    "Intel/dpt-hybrid-midas": partial(dpt_hybrid, seed=50),
    "Intel/dpt-large": partial(dpt_large, seed=52),
    "openmmlab/upernet-convnext-small": partial(upernet_convnext, seed=51),
    "facebook/mask2former-swin-large-ade-semantic": partial(mask2former, seed=53),
}

COCO_IMAGES = 32  # the fewest that give data prepare's seeded 90/5/5 split a val item (train needs one)
MULTIGEN_ROWS = 4


def environment(folder: Path) -> dict[str, str]:
    """The variables that point the libraries at the rehearsal instead of the real caches."""
    folder = folder.resolve()
    return {"HF_HUB_CACHE": str(folder / "hub"), "HF_HUB_OFFLINE": "1", "LOCALCTRL_WEIGHTS_DIR": str(folder / "weights"),
            "TORCH_HOME": str(folder / "torch"), "MLFLOW_TRACKING_URI": f"sqlite:///{folder / 'mlflow.db'}"}


@contextmanager
def using_rehearsal(folder: Path) -> Iterator[dict[str, str]]:
    """Within the block, this process looks for every pretrained component in the rehearsal `folder` (the variables
    of `environment`, and huggingface_hub's constants, which it reads once at import)."""
    from huggingface_hub import constants

    env = environment(folder)
    with patch.dict(os.environ, env), patch.object(constants, "HF_HUB_CACHE", env["HF_HUB_CACHE"]), \
            patch.object(constants, "HF_HUB_OFFLINE", True):
        yield env


def train_steps(name: str, z0: str, condition: str = "canny-opencv", data: str = "data/coco-val2017",
                runs: str = "localctrl-runs/paper", base: str = "stable-diffusion-v1-5/stable-diffusion-v1-5",
                adapter: str = "full") -> list[str]:
    return ["localctrl", "train", "--set", f"base={base}", "--set", f"adapter={adapter}", "--set", f"condition={condition}",
            "--set", f"data.source={data}", "--set", "data.validation_items=1", "--set", "steps=2",
            "--set", "optim.batch_size=2", "--set", "optim.grad_accum=1", "--set", "validate_every=2",
            "--set", "checkpoint_every=2", "--set", "validation_steps=2", "--set", z0, "--set", f"out={runs}/{name}"]


# The rehearsal of a real paper run, in the order a researcher runs it (from DIR, with `rehearsal.env` sourced).
STEPS: list[list[str]] = [
    ["localctrl", "doctor"],
    ["localctrl", "data", "prepare", "--images", "coco/val2017", "--captions", "coco/annotations/captions_val2017.json",
     "--out", "data/coco-val2017", "--size", "64"],  # the stand-in SD's native size (the real SD 1.5's is 512)
    ["localctrl", "convert", "TencentARC/t2iadapter_canny_sd15v2"],  # its repo has only a pickled .bin
    train_steps("masked", "z0.enabled=false"),
    train_steps("masked-z0", "z0.weight=1e-3"),
    ["localctrl", "bench", "--suite", "paper-canny-sd15", "--limit", "4", "--steps", "2"],
    ["localctrl", "report", "--suite", "paper-canny-sd15"],
    ["localctrl", "data", "prepare", "--hf-dataset", "multigen-canny-eval", "--hf-split", "validation", "--caption-column", "text",
     "--out", "data/multigen-canny-eval", "--size", "64", "--fit", "stretch"],
    ["localctrl", "bench", "--suite", "controlnetpp-canny-sd15", "--limit", "2", "--steps", "2"],
    ["localctrl", "report", "--suite", "controlnetpp-canny-sd15"],
    ["localctrl", "data", "prepare", "--hf-dataset", "captioned-ade20k", "--hf-split", "validation", "--caption-column", "prompt",
     "--hf-condition", "seg=seg_map", "--condition", "seg", "--out", "data/captioned-ade20k", "--size", "64", "--fit", "stretch"],
    ["localctrl", "convert", "facebook/mask2former-swin-large-ade-semantic"],  # rehearsed with a pickled .bin only
    ["localctrl", "convert", "TencentARC/t2iadapter_seg_sd14v1"],
    train_steps("masked-z0", "z0.weight=1e-3", "seg", "data/captioned-ade20k", "localctrl-runs/paper-seg"),
    # one method per kind of weights (a converted hub adapter, a v1.1 ControlNet, a trained seg adapter): the other
    # methods load the same files
    ["localctrl", "bench", "--suite", "controlnetpp-seg-sd15", "--limit", "2", "--steps", "2",
     "--methods", "global", "--methods", "controlnet", "--methods", "masked-z0"],
    ["localctrl", "report", "--suite", "controlnetpp-seg-sd15"],
    # SDXL: the COCO images at the SDXL stand-in's native size (64², as SD's; the real SDXL's is 1024²), a masked-z0
    # adapter trained on SDXL (the masked one loads the same way), and the bench with one method per kind of weights
    ["localctrl", "data", "prepare", "--images", "coco/val2017", "--captions", "coco/annotations/captions_val2017.json",
     "--out", "data/coco-val2017-1024", "--size", "64"],
    train_steps("masked-z0", "z0.weight=1e-3", data="data/coco-val2017-1024", runs="localctrl-runs/paper-sdxl",
                base="stabilityai/stable-diffusion-xl-base-1.0", adapter="full_xl"),
    ["localctrl", "bench", "--suite", "paper-canny-sdxl", "--limit", "2", "--steps", "2",
     "--methods", "global", "--methods", "controlnet-masked", "--methods", "masked-z0"],
    ["localctrl", "report", "--suite", "paper-canny-sdxl"],
]


def write_rehearsal(folder: Path, say: Callable[[str], None] = print) -> Path:
    """Write every stand-in under `folder` (emptied first if it is a rehearsal already; refused if it holds other files)."""
    folder = Path(folder)
    if folder.exists() and any(folder.iterdir()):
        if not (folder / MARKER).is_file():
            raise InputError(f"{folder} is not empty and not a rehearsal folder: choose a new or empty folder")
        shutil.rmtree(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / MARKER).write_text(json.dumps({"what": "localctrl rehearsal: seeded random stand-ins of every pretrained "
                                                     "component; numbers computed with them are meaningless"}) + "\n")
    hub = folder / "hub"
    for repo_id, build in REPOS.items():
        say(f"writing {repo_id}")
        write_snapshot(hub, repo_id, build(folder / "staging" / repo_id.replace("/", "--")))
    shutil.rmtree(folder / "staging", ignore_errors=True)
    say("writing clean-fid's Inception, torchvision's AlexNet, COCO-layout images, MultiGen- and ADE20K-layout datasets")
    (folder / "weights").mkdir()
    write_inception(folder / "weights" / INCEPTION_FILE, seed=60)
    alexnet_checkpoint(folder / "torch" / "hub" / "checkpoints" / ALEXNET_FILE, seed=61)
    coco_folder(folder / "coco", COCO_IMAGES)
    multigen_folder(folder / "multigen-canny-eval", MULTIGEN_ROWS)
    ade20k_folder(folder / "captioned-ade20k", COCO_IMAGES)  # enough for a val item: seg adapters are trained on it
    env = environment(folder)
    (folder / "rehearsal.env").write_text("".join(f"export {key}={shlex.quote(value)}\n" for key, value in env.items()))
    script = ["#!/bin/sh", "# The rehearsal of a real paper run on seeded random stand-ins: its numbers are meaningless.",
              "set -e", f"cd {shlex.quote(str(folder.resolve()))}", ". ./rehearsal.env"]
    (folder / "rehearse.sh").write_text("\n".join(script + [shlex.join(step) for step in STEPS]) + "\n")
    (folder / "rehearse.sh").chmod(0o755)
    return folder


def drawn_scene(rng: np.random.Generator, size: tuple[int, int] = (160, 120)) -> tuple[Image.Image, str]:
    """A photo stand-in: two coloured circles or squares on a plain background, and its caption."""
    colours = {"red": (200, 40, 40), "green": (40, 160, 60), "blue": (40, 70, 200), "yellow": (220, 200, 40)}
    picture = Image.new("RGB", size, tuple(int(v) for v in rng.integers(60, 200, 3)))
    draw = ImageDraw.Draw(picture)
    words = []
    for _ in range(2):
        name = str(rng.choice(list(colours)))
        x, y, side = (int(v) for v in (rng.integers(0, size[0] - 50), rng.integers(0, size[1] - 50), rng.integers(20, 50)))
        circle = bool(rng.integers(0, 2))
        (draw.ellipse if circle else draw.rectangle)([x, y, x + side, y + side], fill=colours[name])
        words.append(f"a {name} {'circle' if circle else 'square'}")
    return picture, f"{words[0]} and {words[1]} on a plain background"


def coco_folder(folder: Path, count: int, seed: int = 0) -> Path:
    """COCO's layout: val2017/<12-digit id>.jpg (640×480 there, 160×120 here) and annotations/captions_val2017.json."""
    rng = np.random.default_rng(seed)
    images, annotations = [], []
    (folder / "val2017").mkdir(parents=True)
    for index in range(count):
        image_id = 139 + 17 * index
        picture, caption = drawn_scene(rng)
        file_name = f"{image_id:012d}.jpg"
        picture.save(folder / "val2017" / file_name, quality=90)
        images.append({"id": image_id, "file_name": file_name, "width": 160, "height": 120})
        annotations.append({"image_id": image_id, "id": 10_000 + index, "caption": caption})
    (folder / "annotations").mkdir()
    (folder / "annotations" / "captions_val2017.json").write_text(json.dumps({"images": images, "annotations": annotations}))
    return folder


def multigen_folder(folder: Path, count: int, seed: int = 1) -> Path:
    """limingcv/MultiGen-20M_canny_eval's layout as `datasets`' save_to_disk leaves it: a `validation` split with an
    `image` and a `text` column (512² photos there, 96² drawings here)."""
    import datasets

    rng = np.random.default_rng(seed)
    scenes = [drawn_scene(rng, (96, 96)) for _ in range(count)]
    rows = {"image": [picture for picture, _ in scenes], "text": [caption for _, caption in scenes]}
    features = datasets.Features({"image": datasets.Image(), "text": datasets.Value("string")})
    datasets.DatasetDict({"validation": datasets.Dataset.from_dict(rows, features=features)}).save_to_disk(str(folder))
    return folder


def ade20k_folder(folder: Path, count: int, seed: int = 2) -> Path:
    """limingcv/Captioned_ADE20K's layout as `datasets`' save_to_disk leaves it: a `validation` split with `image`,
    `control_seg` (the labels in the ADE20K palette), `seg_map` (the annotation: 0 "other", 1-150 the classes) and
    `prompt` (photos of any size there, 96×80 drawings here: each shape one class, the background "other")."""
    import datasets

    from localctrl.data.conditions import palette

    colours = (palette("ade20k") * 255).round().byte().numpy()
    rng = np.random.default_rng(seed)
    rows: dict[str, list] = {"image": [], "control_seg": [], "seg_map": [], "prompt": []}
    for _ in range(count):
        picture, caption = drawn_scene(rng, (96, 80))
        background = np.array(picture)[0, 0]
        classes = rng.choice(np.arange(1, 151), size=2, replace=False)
        annotation = np.zeros(picture.size[::-1], dtype=np.uint8)
        shapes = np.any(np.array(picture) != background, axis=-1)
        annotation[shapes] = classes[0]
        annotation[shapes & (np.arange(picture.size[0]) >= picture.size[0] // 2)] = classes[1]
        coloured = np.where(annotation[..., None] > 0, colours[annotation.astype(int) - 1], 0).astype(np.uint8)
        rows["image"].append(picture)
        rows["control_seg"].append(Image.fromarray(coloured))
        rows["seg_map"].append(Image.fromarray(annotation))
        rows["prompt"].append(caption)
    features = datasets.Features({"image": datasets.Image(), "control_seg": datasets.Image(), "seg_map": datasets.Image(),
                                  "prompt": datasets.Value("string")})
    datasets.DatasetDict({"validation": datasets.Dataset.from_dict(rows, features=features)}).save_to_disk(str(folder))
    return folder
