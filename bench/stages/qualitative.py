"""The material of a qualitative figure, saved beside the scores and logged with the suite's parent run.

For the first items (first seed): the condition, the evaluation mask and every method's image, as PNGs, plus
`qualitative.json` naming them with the prompt — so `localctrl report` can draw "condition, mask, each method"
rows from MLflow alone, without the bench's output folder. The same material for the first COMPARISON_ITEMS items
feeds the report's comparison page (reports.comparison).
"""

import json
import shutil
from pathlib import Path

import torch

from bench.stages.items import BenchItems
from bench.stages.plan import Task
from localctrl.common.files import write_png, write_text

COMPARISON_ITEMS = 200  # shapes-quick: all 64 (about 1.5 MB); a 5,000-item suite: the first 200 (its images are large)


def write_qualitative(tasks: list[Task], items: BenchItems, labels: dict[str, str], folder: Path, count: int = 4) -> Path:
    first_seed = tasks[0].seed
    rows = sorted({t.item for t in tasks if t.seed == first_seed})[:count]
    if folder.exists():
        shutil.rmtree(folder)
    entries, shown = [], items.load(rows)
    for k, row in enumerate(rows):
        item_id = items.ids[row]
        condition = (shown.conditions[k] * 255).round().to(torch.uint8)
        condition = condition[0] if condition.shape[0] == 1 else condition.permute(1, 2, 0)
        write_png(folder / f"{item_id}-condition.png", condition.numpy())
        write_png(folder / f"{item_id}-mask.png", (shown.masks[k, 0] * 255).round().to(torch.uint8).numpy())
        images = {}
        for task in tasks:
            if task.item == row and task.seed == first_seed:
                images[task.method] = f"{item_id}-{task.method}.png"
                shutil.copyfile(task.path, folder / images[task.method])
        entries.append({"item_id": item_id, "prompt": shown.prompts[k], "seed": first_seed, "condition": f"{item_id}-condition.png",
                        "mask": f"{item_id}-mask.png", "images": images})
    write_text(folder / "qualitative.json", json.dumps({"methods": labels, "items": entries}, indent=2) + "\n")
    return folder
