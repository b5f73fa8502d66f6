"""torchmetrics `Metric` wrappers of the per-sample functions: `update` appends per-sample values, `compute` averages.

The state is the list of per-sample values (gathered with "cat" across processes), so `per_sample()` can feed the
parquet rows and the bootstrap, and `compute()` agrees with averaging the functional results (NaN skipped).
"""

import torch
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat

from bench.metrics.fidelity import edge_fidelity
from bench.metrics.masked import PSNR_CAP_DB, masked_psnr, masked_ssim


class _PerSampleMean(Metric):
    full_state_update = False
    higher_is_better = True

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.add_state("values", default=[], dist_reduce_fx="cat")

    def _append(self, values: Tensor) -> None:
        self.values.append(values.detach().float())

    def per_sample(self) -> Tensor:
        """Every value seen so far (N,), in update order (after a DDP sync: all processes' values)."""
        return dim_zero_cat(self.values) if self.values else torch.zeros(0)

    def compute(self) -> Tensor:
        return self.per_sample().nanmean()


class MaskedSSIM(_PerSampleMean):
    def update(self, a: Tensor, b: Tensor, region: Tensor) -> None:
        self._append(masked_ssim(a, b, region))


class MaskedPSNR(_PerSampleMean):
    def update(self, a: Tensor, b: Tensor, region: Tensor) -> None:
        self._append(masked_psnr(a, b, region))

    def compute(self) -> Tensor:
        """Mean with each value capped at PSNR_CAP_DB, as bench.metrics.bootstrap aggregates it (+inf = perfect)."""
        return self.per_sample().clamp(max=PSNR_CAP_DB).nanmean()


class EdgeF1(_PerSampleMean):
    def __init__(self, tolerance: int = 1, **kwargs):
        super().__init__(**kwargs)
        self.tolerance = tolerance

    def update(self, detected: Tensor, reference: Tensor, region: Tensor) -> None:
        self._append(edge_fidelity(detected, reference, region, self.tolerance)["f1"])
