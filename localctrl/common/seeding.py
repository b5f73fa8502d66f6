"""Seeded construction of random weights that leaves the caller's RNG untouched."""

from contextlib import contextmanager

import torch


@contextmanager
def seeded(seed: int):
    """Run a block with torch's CPU RNG seeded to `seed`, restoring the previous RNG state afterwards."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield
