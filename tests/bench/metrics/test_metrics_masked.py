"""Masked PSNR / SSIM / LPIPS: agree with torchmetrics on a full region, perfect where nothing changed; exclude_band."""

import math

import pytest
import torch
from torchmetrics.functional.image import peak_signal_noise_ratio, structural_similarity_index_measure

from bench.metrics.masked import exclude_band, load_lpips, masked_lpips, masked_psnr, masked_ssim
from localctrl.models.weights import MetricUnavailable


def images(n=2, size=64, seed=0):
    generator = torch.Generator().manual_seed(seed)
    # smooth-ish content (SSIM means something) plus noise, in [0, 1]
    base = torch.rand(n, 3, size // 8, size // 8, generator=generator).repeat_interleave(8, 2).repeat_interleave(8, 3)
    return (0.8 * base + 0.2 * torch.rand(n, 3, size, size, generator=generator)).clamp(0, 1)


def box_mask(n=2, size=64, top=16, bottom=40):
    mask = torch.zeros(n, 1, size, size)
    mask[..., top:bottom, top:bottom] = 1
    return mask


@pytest.fixture(scope="module")
def random_lpips():
    return load_lpips(random_weights=True)


def test_full_region_ssim_and_psnr_equal_torchmetrics_per_sample():
    a, b = images(seed=0), images(seed=1)
    full = torch.ones(2, 1, 64, 64)
    expected_ssim = structural_similarity_index_measure(a, b, data_range=1.0, reduction="none")
    torch.testing.assert_close(masked_ssim(a, b, full), expected_ssim, rtol=1e-5, atol=1e-6)
    expected_psnr = peak_signal_noise_ratio(a, b, data_range=1.0, reduction="none", dim=(1, 2, 3))
    torch.testing.assert_close(masked_psnr(a, b, full), expected_psnr, rtol=1e-5, atol=1e-5)


def test_psnr_counts_only_region_pixels():
    a = torch.zeros(1, 3, 8, 8)
    b = a.clone()
    region = box_mask(1, 8, 2, 6)
    b[region.expand_as(b) > 0] = 0.1  # error 0.1 inside: MSE 0.01, PSNR 20 dB
    b[region.expand_as(b) == 0] = 0.9  # a large error outside, which must not count
    assert masked_psnr(a, b, region).item() == pytest.approx(20.0, abs=1e-4)


def test_identical_images_are_perfect(random_lpips):
    a, region = images(), 1 - box_mask()
    assert torch.equal(masked_psnr(a, a, region), torch.full((2,), math.inf))
    torch.testing.assert_close(masked_ssim(a, a, region), torch.ones(2))
    torch.testing.assert_close(masked_lpips(a, a, region, random_lpips), torch.zeros(2), atol=1e-7, rtol=0)


def test_a_change_inside_the_mask_leaves_outside_psnr_and_banded_ssim_perfect(random_lpips):
    a, mask = images(), box_mask()
    b = torch.where(mask > 0, images(seed=5), a)
    outside = 1 - mask
    assert torch.isinf(masked_psnr(a, b, outside)).all() and torch.isfinite(masked_psnr(a, b, mask)).all()
    # SSIM's 11-px window (radius 5) sees across the edge: perfect once a 5-px band is excluded, not before
    assert (masked_ssim(a, b, outside) < 0.999).all()
    torch.testing.assert_close(masked_ssim(a, b, exclude_band(outside, mask, 5)), torch.ones(2))
    assert (masked_ssim(a, b, mask) < 0.9).all()
    # LPIPS's receptive field is wide: outside is not exactly 0, but far below inside
    assert (masked_lpips(a, b, outside, random_lpips) < 0.5 * masked_lpips(a, b, mask, random_lpips)).all()


def test_empty_region_gives_nan(random_lpips):
    a, b, empty = images(), images(seed=1), torch.zeros(2, 1, 64, 64)
    for value in (masked_psnr(a, b, empty), masked_ssim(a, b, empty), masked_lpips(a, b, empty, random_lpips)):
        assert torch.isnan(value).all()


def test_exclude_band_on_a_box():
    mask = box_mask(1, 32, 10, 20)  # a 10×10 box, rows and columns 10..19
    outside = exclude_band(1 - mask, mask, 2)
    assert outside.sum() == 32 * 32 - 14 * 14  # the box grown by 2 px on each side is gone
    assert outside[0, 0, 8, 8] == 0 and outside[0, 0, 7, 7] == 1 and outside[0, 0, 21, 21] == 0 and outside[0, 0, 22, 22] == 1
    inside = exclude_band(mask, mask, 2)
    assert inside.sum() == 6 * 6 and inside[0, 0, 11, 11] == 0 and inside[0, 0, 12, 12] == 1  # the band lies on both sides
    assert torch.equal(exclude_band(1 - mask, mask, 0), 1 - mask)
    full = torch.ones(1, 1, 32, 32)
    assert torch.equal(exclude_band(full, full, 3), full)  # the image border is not a mask edge


def test_lpips_needs_real_weights_or_says_it_is_random(tmp_path, monkeypatch, random_lpips):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # an empty torch hub cache
    with pytest.raises(MetricUnavailable, match="alexnet-owt-7be5be79.pth|AlexNet"):
        load_lpips()
    assert random_lpips.name == "lpips[random-alexnet]"
    again = load_lpips(random_weights=True)
    a, b, full = images(), images(seed=1), torch.ones(2, 1, 64, 64)
    torch.testing.assert_close(masked_lpips(a, b, full, again), masked_lpips(a, b, full, random_lpips))  # seeded


def test_the_real_backbone_is_read_from_torchvisions_file_without_unpickling_code(tmp_path, monkeypatch):
    import torchvision

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    checkpoint = tmp_path / "hub" / "checkpoints" / "alexnet-owt-7be5be79.pth"
    checkpoint.parent.mkdir(parents=True)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(3)
        stand_in = torchvision.models.alexnet()  # torchvision's architecture and file format, random weights
    torch.save(stand_in.state_dict(), checkpoint)
    net = load_lpips()
    assert net.name == "lpips[alexnet]"
    assert torch.equal(net.net.slice1[0].weight, stand_in.features[0].weight) and torch.equal(getattr(net.net.slice5, "10").bias, stand_in.features[10].bias)
    torch.save({"features.0.weight": torch.zeros(1), "hook": print}, checkpoint)  # a pickle that would run code when loaded
    with pytest.raises(Exception, match="Weights only load failed|Unsupported global"):
        load_lpips()
