"""The comparison page: one self-contained HTML file (and its image folder) to look at methods side by side, per item.

Per item: the condition and each method's image for the same prompt and seed, the evaluation mask outlined on all of
them, and each image's per-sample metrics under it. Controls (plain JavaScript, no server): which methods show, a
mask-size bin filter, and three orders: item order, a method's worst items by a metric, and the largest differences
between two methods in a metric. The report's main table and figures sit at the top. Rendered with jinja2 from
reports/templates/comparison.html.j2; the material is the bench's `comparison/` artifacts (bench.stages.qualitative)
and the methods' per-sample scores.
"""

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
from jinja2 import Environment, PackageLoader, select_autoescape
from PIL import Image
from scipy import ndimage

from bench.metrics import registry
from reports.mask_bins import bin_of

SKIPPED = {"item_id", "seed", "key", "mask_area"}


def outlined(image_path: Path, mask_path: Path, out: Path) -> str:
    """The image with the mask's outline drawn in red, written to `out`; returns its name."""
    image = np.array(Image.open(image_path).convert("RGB"))
    mask = np.array(Image.open(mask_path).convert("L")) > 127
    if mask.shape != image.shape[:2]:
        mask = np.array(Image.fromarray(mask).resize(image.shape[1::-1], Image.NEAREST))
    edge = mask & ~ndimage.binary_erosion(mask, border_value=0)
    image[edge] = (230, 30, 30)
    Image.fromarray(image).save(out)
    return out.name


def metric_keys(frames: dict[str, pd.DataFrame]) -> list[str]:
    """The per-sample metrics any method has, in the registry's order (fidelity first), without bookkeeping columns."""
    present = {column for frame in frames.values() for column in frame.columns if column not in SKIPPED}
    numeric = {c for c in present if any(pd.api.types.is_numeric_dtype(f[c]) for f in frames.values() if c in f)}
    return [key for key in registry.metric_columns(numeric, headline_only=False) if key in numeric] or sorted(numeric)


def clean(value) -> float | None:
    value = float(value)
    return None if math.isnan(value) else (1e9 if math.isinf(value) else value)  # +inf PSNR (identical): JSON has no inf


def table_rows(markdown: str) -> list[list[str]]:
    """The cells of a Markdown table (the report's main table), header first, without the separator row."""
    lines = [line.strip() for line in markdown.splitlines() if line.strip().startswith("|")]
    rows = [[cell.strip().replace("**", "") for cell in line.strip("|").split("|")] for line in lines]
    return [row for row in rows if not all(set(cell) <= set("-: ") for cell in row)]


def build_page(material: Path, frames: dict[str, pd.DataFrame], labels: dict[str, str], out: Path, title: str,
               main_table: str = "", figures: list[tuple[str, str]] = (), page: str = "comparison") -> list[Path]:
    """Write `out/<page>.html` and its images in `out/<page>/`; returns every file written. `material` is a downloaded
    `comparison/` artifact folder, `frames` each method's per-sample scores, `main_table` the report's main table
    (Markdown), `figures` (path relative to `out`, title) to show at the top."""
    index = json.loads((material / "qualitative.json").read_text(encoding="utf-8"))
    folder = out / page
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    methods = [name for name in index["methods"] if name in frames]
    keys = metric_keys(frames)
    rows_by = {name: frame.set_index(["item_id", "seed"]) for name, frame in frames.items()}
    items = []
    for entry in index["items"]:
        mask = material / entry["mask"]
        area = float((np.array(Image.open(mask).convert("L")) > 127).mean())
        item = {"id": entry["item_id"], "prompt": entry["prompt"], "seed": entry["seed"], "area": area, "bin": bin_of(area),
                "condition": f"{page}/" + outlined(material / entry["condition"], mask, folder / entry["condition"]),
                "images": {}, "metrics": {}}
        for name in methods:
            if name not in entry["images"]:
                continue
            item["images"][name] = f"{page}/" + outlined(material / entry["images"][name], mask, folder / entry["images"][name])
            key = (entry["item_id"], entry["seed"])
            row = rows_by[name].loc[key] if key in rows_by[name].index else None
            if isinstance(row, pd.DataFrame):
                row = row.iloc[0]
            item["metrics"][name] = {k: clean(row[k]) for k in keys if row is not None and k in row.index}
        items.append(item)
    directions = {key: registry.higher_is_better(key) for key in keys}
    environment = Environment(loader=PackageLoader("reports", "templates"), autoescape=select_autoescape())
    html = environment.get_template("comparison.html.j2").render(
        title=title, methods=methods, default_key=next((k for k in keys if registry.is_fidelity_in(k)), keys[0] if keys else None), labels=labels, keys=keys, key_labels={k: registry.label(k) for k in keys},
        main_rows=table_rows(main_table), figures=figures,
        # "</" inside a prompt would close the script element that holds the data
        data=json.dumps({"items": items, "methods": methods, "keys": keys, "directions": directions}).replace("</", "<\\/"))
    path = out / f"{page}.html"
    path.write_text(html, encoding="utf-8")
    return [path, *sorted(folder.iterdir())]
