"""Writing files so that a kill mid-write never leaves a torn one, checking cached files before they are trusted, and
reading images with errors that name the file.

Every cached or finished file localctrl writes (images, manifests, checkpoints, scores, JSON) goes through `atomic`:
the data goes to a temporary file beside the target, which replaces the target only once it is complete. A cache
is reused only when it is intact: a PNG carries a CRC per chunk (`png_problem` checks them and the end marker);
other cached files get a record of their size and sha256 beside them when written (`record=True`), which
`recorded_problem` compares.
"""

import hashlib
import json
import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from localctrl.errors import InputError

RECORD_SUFFIX = ".sha256"  # beside a recorded file: "<sha256> <size>"


@contextmanager
def atomic(path: str | Path, record: bool = False) -> Iterator[Path]:
    """A temporary path to write to; on success it replaces `path` (os.replace is atomic), on failure it is removed.
    `record`: then write the record `recorded_problem` checks (a kill between the two leaves a file without one)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}-{threading.get_ident()}.tmp")  # unique per writer thread
    try:
        yield temporary
        fingerprint = f"{sha256(temporary)} {temporary.stat().st_size}\n" if record else None
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    if fingerprint is not None:
        write_text(record_of(path), fingerprint)


def remove_stray_temporaries(folder: str | Path) -> list[Path]:
    """Delete the temporary files `atomic` left under `folder` when its process was killed (the process is gone)."""
    removed = []
    for path in Path(folder).rglob(".*.tmp") if Path(folder).is_dir() else []:
        writer = path.name.rsplit(".", 2)[-2].partition("-")[0]  # .<name>.<pid>-<thread>.tmp
        if writer.isdigit() and not alive(int(writer)):
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def read_json(path: str | Path, what: str = "file") -> Any:
    """A JSON file written by localctrl; a broken one is an InputError naming it."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as error:
        raise InputError(f"{path}: this {what} is not valid JSON ({error}); delete it to start that step over") from None


def write_text(path: str | Path, text: str, record: bool = False) -> Path:
    with atomic(path, record) as temporary:
        temporary.write_text(text, encoding="utf-8")
    return Path(path)


MIN_FREE_BYTES = 256 * 2**20  # less than this free before a run starts: it would stop half-way


def check_writable(folder: str | Path, what: str) -> Path:
    """Create `folder` if needed and prove a file can be written there, with room to spare; else InputError naming it."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        # a uniquely named probe: processes that check one folder at once must not delete each other's
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".localctrl-write-check-") as probe:
            probe.write(b"ok")
            probe.flush()
        free = shutil.disk_usage(folder).free
    except OSError as error:
        raise InputError(f"{what} {folder} is not writable ({error.strerror or error}): choose another folder") from None
    if free < MIN_FREE_BYTES:
        raise InputError(f"{what} {folder} has only {free / 2**20:.0f} MB free (at least {MIN_FREE_BYTES // 2**20} MB wanted)")
    return folder


def write_failure(path: Path, error: OSError) -> InputError:
    """A write that failed mid-run, as the user's error: which file, why, and that finished work is kept."""
    return InputError(f"could not write {path} ({error.strerror or error}); everything written so far is kept: "
                      "make room (or fix the folder) and run the same command again to go on")


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def record_of(path: Path) -> Path:
    return path.with_name(path.name + RECORD_SUFFIX)


def recorded_problem(path: str | Path) -> str | None:
    """None when `path` holds exactly what was written with `record=True`; else what is wrong with it."""
    path = Path(path)
    if not path.is_file():
        return "missing"
    record = record_of(path)
    if not record.is_file():
        return "has no record of what was written (written by an older localctrl, or killed before its record)"
    digest, _, size = record.read_text().partition(" ")
    if path.stat().st_size != int(size or -1) or sha256(path) != digest:
        return "changed since it was written (its size or sha256 differs from the record)"
    return None


def png_problem(path: str | Path) -> str | None:
    """None when the PNG at `path` is complete and every chunk's CRC checks out; else "missing" or what is damaged."""
    if not Path(path).is_file():
        return "missing"
    try:
        with Image.open(path) as image:
            image.verify()  # reads every chunk to the end marker and checks its CRC, without decoding the pixels
    except (OSError, SyntaxError, ValueError) as error:
        return f"damaged ({error})"
    return None


def write_png(path: str | Path, array: np.ndarray, **options) -> Path:
    """A uint8 (H, W) or (H, W, 3) array as a PNG (PIL's `options`, e.g. compress_level); PNGs hold no timestamp, so the
    same array always gives the same bytes."""
    with atomic(path) as temporary:
        Image.fromarray(array).save(temporary, format="PNG", **options)
    return Path(path)


def read_image(path: str | Path, mode: str | None = None) -> np.ndarray:
    """An image file as an array (converted to PIL `mode`, e.g. "RGB" or "L", when given); unreadable → InputError."""
    try:
        with Image.open(path) as image:
            return np.array(image.convert(mode) if mode else image)
    except (OSError, SyntaxError, ValueError) as error:
        raise InputError(f"{path}: not a readable image ({error})") from None


def read_rgb(path: str | Path) -> "torch.Tensor":  # noqa: F821
    """An image file as uint8 (3, H, W), the layout the sampler's outputs and the metrics use."""
    import torch  # here: reading runs and writing files (reports) needs no torch otherwise

    return torch.from_numpy(read_image(path, "RGB")).permute(2, 0, 1)
