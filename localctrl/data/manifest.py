"""The on-disk dataset format shared by real datasets and the shapes world.

A folder with `manifest.jsonl` (one JSON object per item: `id`, `image`, `caption`, `conditions`
{name: relative path}, optional `masks` {name: relative path}, `split`, and any extra fields) and the PNG
files it names. Splits are recorded in the manifest, never derived from directory listings.
"""

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from localctrl.common.files import write_text
from localctrl.errors import InputError

MANIFEST = "manifest.jsonl"
REQUIRED_FIELDS = ("id", "image", "caption", "split")


class DatasetError(InputError):
    """A manifest or dataset file that is missing or malformed; the message names the file and field."""


@dataclass(frozen=True)
class Item:
    id: str
    image: Path
    caption: str
    split: str
    conditions: dict[str, Path] = field(default_factory=dict)
    masks: dict[str, Path] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)  # fields beyond the format's (e.g. the shapes world's scene)


def write_manifest(folder: Path, rows: list[dict]) -> Path:
    """Write the manifest atomically (a crash leaves no half manifest), one sorted-key JSON line per item."""
    return write_text(folder / MANIFEST, "".join(json.dumps(row, sort_keys=True, separators=(",", ":")) + "\n" for row in rows))


# Written beside the manifest by `localctrl data prepare` and `localctrl data shapes`: their files all lie inside.
WRITTEN_BY_LOCALCTRL = ("prepare-report.json", "world.json")


def read_manifest(folder: str | Path, split: str | None = None, check_files: bool = True, strict: bool | None = None) -> list[Item]:
    """Items of the dataset in `folder` (optionally one split), with every named file checked to exist.

    `strict`: refuse paths that lead out of the folder (`../`, absolute paths, links elsewhere). By default strict for
    the datasets localctrl writes; a hand-made manifest may name files elsewhere (a shared image store, say).
    """
    folder = Path(folder)
    path = folder / MANIFEST
    if strict is None:
        strict = any((folder / name).is_file() for name in WRITTEN_BY_LOCALCTRL)
    if not path.is_file():
        raise DatasetError(f"{path}: no manifest (expected {MANIFEST} in the dataset folder)")
    items, seen = [], set()
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            raise DatasetError(f"{where}: not valid JSON ({error.msg})") from None
        if not isinstance(row, dict):
            raise DatasetError(f"{where}: expected a JSON object per line, got {type(row).__name__}")
        missing = [name for name in REQUIRED_FIELDS if name not in row]
        if missing:
            raise DatasetError(f"{where}: missing field(s) {', '.join(missing)}")
        for name in ("id", "image", "caption", "split"):
            if not isinstance(row[name], str):
                raise DatasetError(f"{where}: field '{name}' must be a string, got {row[name]!r}")
        for name in ("conditions", "masks"):
            if not isinstance(row.get(name, {}), dict) or not all(isinstance(v, str) for v in row.get(name, {}).values()):
                raise DatasetError(f"{where}: field '{name}' must map names to relative paths, got {row[name]!r}")
        if row["id"] in seen:
            raise DatasetError(f"{where}: duplicate id '{row['id']}'")
        seen.add(row["id"])
        if split is not None and row["split"] != split:
            continue
        item = Item(
            id=str(row["id"]),
            image=folder / row["image"],
            caption=str(row["caption"]),
            split=str(row["split"]),
            conditions={name: folder / rel for name, rel in row.get("conditions", {}).items()},
            masks={name: folder / rel for name, rel in row.get("masks", {}).items()},
            extra={key: value for key, value in row.items() if key not in (*REQUIRED_FIELDS, "conditions", "masks")},
        )
        if check_files:
            named = {"image": item.image} | {f"conditions.{k}": v for k, v in item.conditions.items()} | {
                f"masks.{k}": v for k, v in item.masks.items()
            }
            for field_name, file in named.items():
                if not file.is_file():
                    raise DatasetError(f"{where}: item '{item.id}' field {field_name} names {file}, which does not exist")
        if strict:
            root = folder.resolve()
            for field_name, file in {"image": item.image, **item.conditions, **item.masks}.items():
                if not file.resolve().is_relative_to(root):
                    raise DatasetError(f"{where}: item '{item.id}' field {field_name} names {file}, outside the dataset folder "
                                       f"{folder} (refused in a dataset localctrl wrote; read it with strict=False if meant)")
        items.append(item)
    return items
