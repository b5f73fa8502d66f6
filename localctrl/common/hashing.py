"""Content hashes that identify what a cached file was made from: plain data, tensors, a module's weights.

Shared by localctrl's own caches (the latent cache) and the benchmark's (bench.keys); here, at the bottom of the
layers, because localctrl never imports bench. The same value gives the same hash on any machine.
"""

import hashlib
import json
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch is imported where tensors are hashed: json_hash serves processes that load no model (bench.finished)
    import torch
    from torch import nn


def json_hash(value) -> str:
    """sha256 of canonical JSON (sorted keys; floats as Python writes them)."""
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


def tensor_hash(tensor: "torch.Tensor") -> str:
    """sha256 of a tensor's dtype, shape and bytes."""
    import torch

    data = tensor.detach().cpu().contiguous()
    digest = hashlib.sha256(f"{data.dtype}{tuple(data.shape)}".encode())
    digest.update(data.view(torch.uint8).numpy().tobytes() if data.numel() else b"")
    return digest.hexdigest()


def module_hash(module: "nn.Module") -> str:
    """sha256 over a module's state dict (names, dtypes, shapes, bytes): identifies its weights."""
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor_hash(tensor).encode())
    return digest.hexdigest()
