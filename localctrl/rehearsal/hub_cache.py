"""Writing a repo into a Hugging Face hub cache the way `hf download` leaves it, so hub lookups find it unmodified.

    $HF_HUB_CACHE/models--org--name/blobs/<sha256>          the file contents
                                   /refs/main               the snapshot's commit hash (no newline)
                                   /snapshots/<commit>/...  relative symlinks into blobs/
"""

import hashlib
import os
import shutil
from pathlib import Path

from localctrl.common.files import sha256


def repo_folder(cache: Path, repo_id: str) -> Path:
    return cache / ("models--" + repo_id.replace("/", "--"))  # huggingface_hub's repo_folder_name


def write_snapshot(cache: Path, repo_id: str, files: Path) -> Path:
    """Move the files of folder `files` into `cache` as `repo_id`'s main revision; returns the snapshot folder."""
    sources = sorted(path for path in files.rglob("*") if path.is_file())
    listing = hashlib.sha1(repo_id.encode())  # a stable commit id: the same stand-ins give the same snapshot
    for path in sources:
        listing.update(f"{path.relative_to(files)}\0{path.stat().st_size}\0".encode())
    commit = listing.hexdigest()
    repo = repo_folder(cache, repo_id)
    snapshot = repo / "snapshots" / commit
    for path in sources:
        blob = repo / "blobs" / sha256(path)
        blob.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(path, blob)
        link = snapshot / path.relative_to(files)
        link.parent.mkdir(parents=True, exist_ok=True)
        link.unlink(missing_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / "main").write_text(commit)  # huggingface_hub reads it without stripping a newline
    shutil.rmtree(files)
    return snapshot

