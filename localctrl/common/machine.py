"""What machine a number was measured on, in words (perf results, bench runs, the README's tables)."""

import os
import platform
from pathlib import Path


def cpu_name() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    names = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines() if line.startswith("model name")] \
        if cpuinfo.is_file() else []
    return names[0] if names else platform.machine()


def describe_machine(device="cpu") -> str:
    """'2-core Intel(R) Xeon(R) …, no GPU' or '… , NVIDIA H100 80GB HBM3' when `device` (str or torch.device) is CUDA."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    gpu = "no GPU"
    if str(device).startswith("cuda"):  # torch only then: a rerun with nothing to compute (bench.finished) loads none
        import torch

        gpu = torch.cuda.get_device_name(torch.device(device))
    return f"{cores}-core {cpu_name()}, {gpu}"
