"""Write the shapes world as a dataset in the manifest format (localctrl.data.manifest), fast and byte-reproducible."""

import json
from functools import partial
from multiprocessing import get_context
from pathlib import Path

from rich.progress import track

from localctrl.common.files import write_png, write_text
from localctrl.data.manifest import write_manifest
from localctrl.shapes.render import render
from localctrl.shapes.scene import Scene, WorldConfig, sample_scene

CONDITION_FOLDERS = {"edges": "edges", "seg": "seg", "depth": "depth", "instance": "instance"}
CHUNK = 256


def item_id(index: int) -> str:
    return f"{index:06d}"


def scene_record(scene: Scene) -> dict:
    """The scene as plain JSON: what align-shapes and composition tests read back."""
    return {
        "background": scene.background,
        "gradient": scene.gradient,
        "objects": [
            {"shape": o.shape, "colour": o.colour, "layer": o.layer, "bbox": [round(v, 2) for v in o.bbox]} for o in scene.objects
        ],
    }


def write_item(folder: Path, seed: int, config: WorldConfig, index: int) -> dict:
    scene = sample_scene(seed, index, config)
    rendered = render(scene, config.size)
    name = item_id(index)
    row = {
        "id": name,
        "image": f"images/{name}.png",
        "caption": scene.caption,
        "split": scene.split,
        "conditions": {key: f"{sub}/{name}.png" for key, sub in CONDITION_FOLDERS.items()},
        "masks": {f"object{layer}": f"masks/{name}_{layer}.png" for layer in range(1, len(scene.objects) + 1)},
        "scene": scene_record(scene),
        "heldout": scene.has_held_out(config.held_out),
    }
    arrays = {
        row["image"]: rendered.image,
        row["conditions"]["edges"]: rendered.edges,
        row["conditions"]["seg"]: rendered.semantic,
        row["conditions"]["depth"]: rendered.depth,
        row["conditions"]["instance"]: rendered.instance,
    } | {row["masks"][f"object{k + 1}"]: mask for k, mask in enumerate(rendered.object_masks)}
    for relative, array in arrays.items():
        write_png(folder / relative, array, compress_level=1)  # fast; PNG holds no timestamp: bytes are reproducible
    return row


def _write_chunk(folder: Path, seed: int, config: WorldConfig, indices: range) -> list[dict]:
    return [write_item(folder, seed, config, index) for index in indices]


def write_shapes_dataset(out: str | Path, n: int, seed: int = 0, config: WorldConfig = WorldConfig(), workers: int = 2) -> Path:
    """Render items 0…n-1 of world `seed` into `out`; the same arguments always give the same bytes."""
    folder = Path(out)
    for sub in ("images", "masks", *CONDITION_FOLDERS.values()):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    chunks = [range(start, min(start + CHUNK, n)) for start in range(0, n, CHUNK)]
    work = partial(_write_chunk, folder, seed, config)
    rows: list[dict] = []
    if workers > 1 and len(chunks) > 1:
        with get_context("fork").Pool(workers) as pool:
            for chunk_rows in track(pool.imap(work, chunks), total=len(chunks), description=f"shapes world → {folder}"):
                rows.extend(chunk_rows)
    else:
        for chunk in track(chunks, description=f"shapes world → {folder}"):
            rows.extend(work(chunk))
    settings = config.model_dump() | {"held_out": sorted(config.held_out)}
    write_text(folder / "world.json", json.dumps({"generator": "localctrl.shapes", "seed": seed, "n": n, "config": settings}, indent=2) + "\n")
    write_manifest(folder, rows)  # last: a folder without a manifest is an unfinished write
    return folder
