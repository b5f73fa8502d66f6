"""torchmetrics objects: update keeps per-sample values, compute averages them like the functional metrics."""

import math

import torch

from bench.metrics.fidelity import edge_fidelity
from bench.metrics.masked import masked_psnr, masked_ssim
from bench.metrics.metric_objects import EdgeF1, MaskedPSNR, MaskedSSIM


def batch(seed):
    generator = torch.Generator().manual_seed(seed)
    a, b = torch.rand(3, 3, 32, 32, generator=generator), torch.rand(3, 3, 32, 32, generator=generator)
    region = (torch.rand(3, 1, 32, 32, generator=generator) > 0.5).float()
    return a, b, region


def test_update_compute_equals_the_functional_mean_over_all_batches():
    batches = [batch(0), batch(1)]
    for metric, function in ((MaskedSSIM(), masked_ssim), (MaskedPSNR(), masked_psnr)):
        for a, b, region in batches:
            metric.update(a, b, region)
        expected = torch.cat([function(*args) for args in batches])
        torch.testing.assert_close(metric.per_sample(), expected)
        torch.testing.assert_close(metric.compute(), expected.mean())
        metric.reset()
        assert len(metric.per_sample()) == 0


def test_edge_f1_uses_its_tolerance():
    detected, reference = torch.zeros(2, 1, 16, 16), torch.zeros(2, 1, 16, 16)
    reference[:, :, 8, 2:14] = 1
    detected[0, :, 9, 2:14] = 1  # 1 px off: F1 1 at tolerance 1, 0 at tolerance 0
    detected[1, :, 8, 2:14] = 1
    region = torch.ones(2, 1, 16, 16)
    strict, tolerant = EdgeF1(tolerance=0), EdgeF1(tolerance=1)
    strict.update(detected, reference, region)
    tolerant.update(detected, reference, region)
    torch.testing.assert_close(strict.per_sample(), torch.tensor([0.0, 1.0]))
    torch.testing.assert_close(tolerant.compute(), edge_fidelity(detected, reference, region, 1)["f1"].mean())
    assert tolerant.compute().item() == 1.0


def test_psnr_compute_caps_perfect_samples_and_nan_is_skipped():
    a = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    b = a.clone()
    b[1] = (b[1] + 0.1).clamp(0, 1)
    metric = MaskedPSNR()
    metric.update(a, b, torch.ones(2, 1, 8, 8))
    metric.update(a[:1], b[:1], torch.zeros(1, 1, 8, 8))  # empty region: NaN, skipped
    values = metric.per_sample()
    assert math.isinf(values[0]) and math.isnan(values[2])
    torch.testing.assert_close(metric.compute(), (100.0 + values[1]) / 2)
