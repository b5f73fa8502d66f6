"""Training checkpoints: written atomically, read back without unpickling arbitrary objects, resumed bit-exactly.

Not accelerate's `save_state`/`load_state`: they pickle registered objects and RNG states and load them back with
`weights_only=False` (accelerate/checkpointing.py), which would unpickle whatever the checkpoint folder holds. Our
batches and noise come from per-step generators (`step_generator`), so no RNG state needs saving, and a checkpoint is
tensors and plain data only, loaded with `weights_only=True`.
"""

from pathlib import Path

import torch

from localctrl.common.files import atomic
from localctrl.errors import InputError


def save_checkpoint(path: Path, payload: dict) -> None:
    """Write `payload` (tensors, state dicts, numbers) so that a kill mid-write never leaves a torn file."""
    with atomic(path) as temporary:
        torch.save(payload, temporary)


def load_checkpoint(path: Path) -> dict | None:
    """The checkpoint at `path`, or None if there is none. weights_only: tensors and plain data, no code."""
    if not path.is_file():
        return None
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torn, foreign or carrying code: torch raises several kinds, all end the same way
        raise InputError(f"{path}: not a readable checkpoint ({type(error).__name__}: {str(error).splitlines()[0]}); delete "
                         "it to train that run from its start, or pass another output folder") from None


def save_training_state(path: Path, step: int, **parts) -> None:
    """The step and each part's `state_dict()` (model, optimiser, LR schedule, EMA, …)."""
    save_checkpoint(path, {"step": step, **{name: part.state_dict() for name, part in parts.items()}})


def load_training_state(path: Path, **parts) -> int:
    """Load each part's state from the checkpoint at `path` and return its step; 0 (nothing loaded) without one."""
    state = load_checkpoint(path)
    if state is None:
        return 0
    for name, part in parts.items():
        part.load_state_dict(state[name])
    return state["step"]


def step_generator(seed: int, phase: str, step: int) -> torch.Generator:
    """A generator owned by one training step: batches depend on (seed, phase, step) only, so a resumed run
    draws exactly the batches and noise an uninterrupted run would have drawn."""
    phase_code = sum(ord(c) * 31**i for i, c in enumerate(phase)) % 1_000_003
    return torch.Generator().manual_seed((seed * 1_000_003 + phase_code) * 10_000_019 + step)
