"""Pickled weights: refused while loading, converted to safetensors once, on request.

Some published models ship only pickled `.bin` weights (TencentARC's T2I-Adapters, Intel's DPT, openmmlab's UperNet).
Unpickling runs whatever code the file names, so localctrl's loaders read safetensors only: `check_safetensors` turns a
`.bin`-only folder into one clear error before diffusers' own, and `convert_to_safetensors` (`localctrl convert`) reads
each `.bin` once with `torch.load(weights_only=True)` (tensors and plain containers only: a file naming any other
object is refused, not run) and writes the safetensors file the loaders look for beside it.

Only the plain names are converted: `*.fp16.bin`-style variants, sharded `.bin` files and other names are left alone
(localctrl's loaders never ask for a variant; a folder with only those is refused by the loaders as before).
"""

import pickle
from collections.abc import Callable
from pathlib import Path

from localctrl.common.files import atomic, write_failure
from localctrl.errors import InputError
from localctrl.models.weights import resolve_pretrained

# The pickled weight files diffusers / transformers fall back to, and the safetensors name each loader wants instead.
SAFETENSORS_FOR = {"diffusion_pytorch_model.bin": "diffusion_pytorch_model.safetensors", "pytorch_model.bin": "model.safetensors"}


class PickledWeightsError(InputError):
    """A model folder whose weights exist only as a pickle, which localctrl does not load."""


def check_safetensors(folder: Path, what: str, subfolders: tuple[str, ...] = ("",), name: str | None = None) -> None:
    """Raise `PickledWeightsError` if `folder` (or one of its `subfolders`) has no `*.safetensors` but a pickled `.bin`.

    `name` is what the user called the model (a hub id), for the command the message suggests; default the folder.
    """
    for part in (folder / subfolder for subfolder in subfolders):
        if any(part.glob("*.safetensors")):
            continue
        pickled = next((part / file for file in SAFETENSORS_FOR if (part / file).is_file()), None)
        if pickled is not None:
            raise PickledWeightsError(
                f"{what}: {pickled} holds pickled weights and there is no safetensors file beside it; localctrl never "
                f"unpickles weights while loading. Run `localctrl convert {name or folder}` once: it reads the file as a "
                "plain state dict (torch.load weights_only=True, which refuses code) and writes safetensors beside it."
            )


def pickled_files(folder: Path) -> list[Path]:
    """The plain-named pickled weight files in `folder` and its direct subfolders (a pipeline's vae/, unet/, ...)."""
    parts = [folder, *sorted(path for path in folder.iterdir() if path.is_dir())]
    return [part / file for part in parts for file in SAFETENSORS_FOR if (part / file).is_file()]


def read_state_dict(path: Path) -> dict:
    """A flat {name: tensor} dict from a pickled file, read with weights_only=True; anything else is an InputError."""
    import torch

    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, AttributeError) as error:
        # weights_only's refusal spans lines of general advice (including "retry with weights_only=False"), around
        # the one that names what the file holds
        generic = ("Weights only load failed", "Check the documentation", "Please file an issue")
        reason = next((line.strip() for line in str(error).splitlines() if line.strip() and not line.strip().startswith(generic)),
                      "not readable")
        raise InputError(f"{path}: refused, not a plain state dict of tensors ({type(error).__name__}: {reason}); nothing "
                         "in it was run. localctrl reads pickles only with torch.load(weights_only=True): get this "
                         "model's weights as safetensors instead.") from None
    if isinstance(loaded, dict) and set(loaded) == {"state_dict"}:  # a training checkpoint's wrapper
        loaded = loaded["state_dict"]
    if not isinstance(loaded, dict) or not loaded:
        held = "an empty dict" if isinstance(loaded, dict) else f"a {type(loaded).__name__}"
        raise InputError(f"{path}: holds {held}, not a state dict {{name: tensor}}; nothing converted")
    wrong = next(((key, value) for key, value in loaded.items() if not (isinstance(key, str) and isinstance(value, torch.Tensor))), None)
    if wrong is not None:
        raise InputError(f"{path}: entry {wrong[0]!r} is a {type(wrong[1]).__name__}, not a tensor: not a flat state dict; "
                         "nothing converted")
    return loaded


def safetensors_ready(state: dict) -> dict:
    """The tensors as safetensors stores them: contiguous, and each with its own storage (it refuses shared storage,
    which tied weights have): a tensor whose storage was already seen is cloned."""
    seen, ready = set(), {}
    for key, tensor in state.items():
        storage = tensor.untyped_storage().data_ptr()
        ready[key] = tensor.clone().contiguous() if storage in seen else tensor.contiguous()
        seen.add(storage)
    return ready


def convert_to_safetensors(name_or_path: str | Path, say: Callable[[str], None] = print) -> list[Path]:
    """Write safetensors beside each plain pickled weight file of a model folder or cached hub id; return the new files.

    A hub-cache snapshot's files are links into its blobs; the new file is a regular file in the snapshot folder,
    which the loaders find like any other. Files that already have their safetensors sibling are skipped (said so).
    """
    from safetensors.torch import save_file

    folder = resolve_pretrained(name_or_path, what="model to convert")
    sources = pickled_files(folder)
    if not sources:
        say(f"nothing to convert: {folder} has no {' / '.join(SAFETENSORS_FOR)} (top level or one folder down)")
    written = []
    for source in sources:
        target = source.with_name(SAFETENSORS_FOR[source.name])
        if target.exists():
            say(f"already converted: {target} exists (skipped {source})")
            continue
        state = safetensors_ready(read_state_dict(source))
        try:
            with atomic(target) as temporary:
                save_file(state, str(temporary), metadata={"format": "pt"})  # "pt": what transformers' loader expects
        except OSError as error:
            raise write_failure(target, error) from None
        say(f"converted {source} → {target} ({len(state)} tensors)")
        written.append(target)
    return written
