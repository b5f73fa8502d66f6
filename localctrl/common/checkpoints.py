"""Training checkpoints: written atomically, read back without unpickling arbitrary objects."""

import os
from pathlib import Path

import torch


def save_checkpoint(path: Path, payload: dict) -> None:
    """Write `payload` (tensors, state dicts, numbers) so that a kill mid-write never leaves a torn file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(path.suffix + ".tmp")
    torch.save(payload, temporary)
    os.replace(temporary, path)


def load_checkpoint(path: Path) -> dict | None:
    """The checkpoint at `path`, or None if there is none. weights_only: tensors and plain data, no code."""
    return torch.load(path, map_location="cpu", weights_only=True) if path.is_file() else None


def step_generator(seed: int, phase: str, step: int) -> torch.Generator:
    """A generator owned by one training step: batches depend on (seed, phase, step) only, so a resumed run
    draws exactly the batches and noise an uninterrupted run would have drawn."""
    phase_code = sum(ord(c) * 31**i for i, c in enumerate(phase)) % 1_000_003
    return torch.Generator().manual_seed((seed * 1_000_003 + phase_code) * 10_000_019 + step)


def describe_changes(before: dict, after: dict) -> str:
    """'key: was A, now B; …' for every key whose value differs ('' when none): why a resume is refused."""
    keys = sorted(set(before) | set(after))
    return "; ".join(f"{key}: was {before.get(key)!r}, now {after.get(key)!r}" for key in keys if before.get(key) != after.get(key))
