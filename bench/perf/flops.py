"""Model-FLOPs utilisation (MFU): FLOPs counted by torch on a real call, divided by the card's measured matmul rate.

FLOPs come from `torch.utils.flop_counter.FlopCounterMode` (matmuls, convolutions and attention; elementwise work
counts 0, the usual MFU convention). Its registry lacks the CPU flavour of SDPA, so that one is added here with
torch's own SDPA formula: CPU counts then include attention as CUDA counts do.
"""

import time

import torch
from torch.utils.flop_counter import FlopCounterMode, sdpa_flop_count


def _cpu_sdpa_flops(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
    return sdpa_flop_count(query_shape, key_shape, value_shape)


EXTRA_FORMULAS = {torch.ops.aten._scaled_dot_product_flash_attention_for_cpu: _cpu_sdpa_flops}


def count_flops(function, *args, **kwargs) -> int:
    """FLOPs of one call `function(*args, **kwargs)` (run once, under no_grad unless the caller enables it)."""
    with FlopCounterMode(display=False, custom_mapping=EXTRA_FORMULAS) as counter:
        function(*args, **kwargs)
    return counter.get_total_flops()


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_rate(device: str | torch.device, size: int = 8192, dtype: torch.dtype = torch.bfloat16, repeats: int = 10) -> float:
    """The card's dense matmul rate in FLOP/s: the mean of `repeats` size³ products after 3 warm-ups (random data)."""
    device = torch.device(device)
    a, b = (torch.randn(size, size, device=device, dtype=dtype) for _ in range(2))
    out = torch.empty(size, size, device=device, dtype=dtype)
    for _ in range(3):
        torch.matmul(a, b, out=out)
    synchronize(device)
    start = time.perf_counter()
    for _ in range(repeats):
        torch.matmul(a, b, out=out)
    synchronize(device)
    return 2 * size**3 * repeats / (time.perf_counter() - start)


def mfu(flops: float, seconds: float, peak_flops_per_s: float) -> float:
    """Achieved FLOP/s as a fraction of the measured peak."""
    return flops / seconds / peak_flops_per_s
