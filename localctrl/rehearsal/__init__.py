"""The rehearsal: small random-weight stand-ins of every pretrained component, in the real on-disk formats and
locations, so that the unmodified loading code (hub cache lookup, diffusers/transformers/open_clip/clean-fid/
torchvision file formats) runs on a machine without the real weights. Its numbers are meaningless.

`write_rehearsal(DIR)` (`localctrl doctor --rehearse DIR`) writes them under DIR, marked by `MARKER`; any file or
folder below a marked DIR is a stand-in (`stand_in_root`), and results computed with one are named so.
"""

from pathlib import Path

MARKER = "LOCALCTRL-REHEARSAL.json"  # in the rehearsal's root folder: everything below it is a stand-in


def stand_in_root(path: str | Path) -> Path | None:
    """The rehearsal folder `path` lies in (it, or a folder above it, holds MARKER), or None for real weights."""
    path = Path(path).resolve()
    return next((folder for folder in (path, *path.parents) if (folder / MARKER).is_file()), None)


def is_stand_in(name_or_path: str | Path) -> bool:
    """Whether a model name (a folder, or a hub id in the cache) or a data folder is one of the rehearsal's stand-ins."""
    from localctrl.errors import LocalctrlError
    from localctrl.models.weights import resolve_pretrained

    try:
        path = Path(name_or_path) if Path(name_or_path).exists() else resolve_pretrained(name_or_path)
    except LocalctrlError:  # a random or shipped base, or nothing there: not a stand-in
        return False
    return stand_in_root(path) is not None
