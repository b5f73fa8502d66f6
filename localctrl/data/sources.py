"""Where `data prepare` reads images and captions from: one `SourceItem` per image, opened lazily.

- an image folder with a captions file: CSV (`file`|`image`, `caption`), JSONL (the same keys), or a COCO
  captions JSON (`annotations/captions_val2017.json`: the first caption of each image, by annotation id);
- an image folder without a captions file: a `<stem>.txt` caption beside each image (img2dataset's `files`
  output, the usual way LAION subsets are downloaded);
- a Hugging Face `datasets` dataset saved with `save_to_disk` (images decoded here, one at a time, so a
  corrupt image is reported and skipped instead of stopping the run).
"""

import csv
import io
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from localctrl.errors import InputError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp"}


@dataclass(frozen=True)
class SourceItem:
    key: str  # stable within the source (relative path, or split/row id): the dataset id is derived from it
    caption: str
    open: Callable[[], Image.Image]  # may raise OSError/ValueError for unreadable images
    origin: str  # what the prepare report names when the image is skipped
    conditions: dict[str, Callable[[], Image.Image]] = field(default_factory=dict)  # condition maps the source ships


def read_captions(path: Path) -> dict[str, str]:
    """file name (relative to the image folder) → caption, from CSV, JSONL or COCO captions JSON."""
    if path.suffix == ".csv":
        with open(path, newline="", encoding="utf-8") as stream:
            rows = list(csv.DictReader(stream))
    elif path.suffix == ".json":
        return coco_captions(path)
    elif path.suffix == ".jsonl":
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    else:
        raise InputError(f"captions file {path}: expected .csv, .jsonl or a COCO captions .json")
    captions = {}
    for number, row in enumerate(rows, start=1):
        name = row.get("file") or row.get("image")
        if not name or "caption" not in row:
            raise InputError(f"captions file {path}, row {number}: needs 'file' (or 'image') and 'caption'")
        captions[str(name)] = str(row["caption"])
    return captions


def coco_captions(path: Path) -> dict[str, str]:
    """COCO's captions JSON → file name → its first caption (lowest annotation id: stable across reruns)."""
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or not {"images", "annotations"} <= data.keys():
        raise InputError(f"captions file {path}: a .json must be COCO captions (keys 'images' and 'annotations')")
    names = {image["id"]: image["file_name"] for image in data["images"]}
    captions = {}
    for annotation in sorted(data["annotations"], key=lambda a: a["id"]):
        captions.setdefault(names[annotation["image_id"]], annotation["caption"].strip())
    return captions


def sidecar_captions(images: Path) -> dict[str, str]:
    """Images with a `<stem>.txt` beside them (img2dataset's layout) → caption; images without one are ignored."""
    captions = {}
    for path in sorted(images.rglob("*")):
        text = path.with_suffix(".txt")
        if path.suffix.lower() in IMAGE_SUFFIXES and text.is_file():
            captions[path.relative_to(images).as_posix()] = text.read_text(encoding="utf-8").strip()
    return captions


def folder_items(images: Path, captions: Path | None) -> list[SourceItem]:
    if not images.is_dir():
        raise InputError(f"image folder {images} does not exist")
    table = read_captions(captions) if captions else sidecar_captions(images)
    return [SourceItem(relative, caption, lambda path=images / relative: Image.open(path), str(images / relative))
            for relative, caption in sorted(table.items())]


def hf_dataset_items(path: Path, image_column: str = "image", caption_column: str = "caption", split: str | None = None,
                     id_column: str | None = None, condition_columns: dict[str, str] | None = None) -> list[SourceItem]:
    """Rows of a dataset saved with `datasets.save_to_disk`; list captions (COCO has 5) use their first entry.
    `condition_columns` (condition → column) names condition maps the dataset ships, e.g. MultiGen-20M's
    `control_depth` or Captioned_ADE20K's `seg_map`: they are taken as they are instead of computed."""
    condition_columns = condition_columns or {}
    import datasets

    try:
        loaded = datasets.load_from_disk(str(path))
    except FileNotFoundError as error:
        raise InputError(f"{path} is not a dataset saved with datasets.save_to_disk: {error}") from None
    if isinstance(loaded, datasets.DatasetDict):
        if split is None and len(loaded) > 1:
            raise InputError(f"{path} holds splits {', '.join(loaded)}: choose one with --hf-split")
        split = split or next(iter(loaded))
        if split not in loaded:
            raise InputError(f"{path} has no split '{split}'; it has {', '.join(loaded)}")
        loaded = loaded[split]
    pictures = [image_column, *condition_columns.values()]
    for column in (*pictures, caption_column, *([id_column] if id_column else [])):
        if column not in loaded.column_names:
            raise InputError(f"{path}: no column '{column}'; columns are {', '.join(loaded.column_names)}")
    for column in pictures:
        if isinstance(loaded.features[column], datasets.Image):
            loaded = loaded.cast_column(column, datasets.Image(decode=False))  # decode per item: corrupt ones are skipped

    def opener(value) -> Callable[[], Image.Image]:
        if isinstance(value, dict) and value.get("bytes"):
            return lambda: Image.open(io.BytesIO(value["bytes"]))
        file = value.get("path") if isinstance(value, dict) else value
        return lambda: Image.open(Path(path) / file if not Path(file).is_absolute() else file)

    items = []
    columns = list(dict.fromkeys(c for c in (*pictures, caption_column, id_column) if c))
    for index, row in enumerate(loaded.select_columns(columns)):
        caption = row[caption_column]
        caption = caption[0] if isinstance(caption, list) and caption else caption
        key = f"{split or 'data'}/{row[id_column] if id_column else index}"
        shipped = {name: opener(row[column]) for name, column in condition_columns.items()}
        items.append(SourceItem(key, str(caption), opener(row[image_column]), f"{path} [{key}]", shipped))
    return items
