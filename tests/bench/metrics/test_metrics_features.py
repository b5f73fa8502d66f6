"""Feature extractors: one signature, honest names, the inputs each network expects, and no download."""

import numpy as np
import pytest
import torch
from torch import nn

from bench.metrics.features import clean_resize, inception_features, random_inception_features, shapes_net_features
from bench.metrics.frechet import fid_from_features
from localctrl.models.weights import MetricUnavailable
from localctrl.shapes.net import ShapesNet


def uint8_images(n=6, size=64, seed=0):
    return torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))


def test_shapes_net_features_are_the_nets_features_of_images_over_255_independent_of_batching():
    torch.manual_seed(0)
    net = ShapesNet()
    images = uint8_images()
    extract = shapes_net_features(net, batch_size=4)
    features = extract(images)
    assert extract.name == "shapes-net" and features.dtype == np.float64 and features.shape == (6, 128)
    assert not net.training  # BatchNorm statistics from training, not from the batch
    with torch.no_grad():
        expected = net.features(images.float() / 255).double().numpy()
    np.testing.assert_allclose(features, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(shapes_net_features(net, batch_size=1)(images), features, rtol=1e-5, atol=1e-6)


def test_extractors_reject_float_images():
    with pytest.raises(ValueError, match="uint8"):
        shapes_net_features(ShapesNet())(torch.rand(2, 3, 64, 64))


def test_clean_resize_keeps_values_and_channel_order():
    image = torch.zeros(1, 3, 40, 30, dtype=torch.uint8)
    image[:, 0], image[:, 1], image[:, 2] = 10, 200, 255  # flat channels stay flat under bicubic resizing
    resized = clean_resize(image)
    assert resized.shape == (1, 3, 299, 299) and resized.dtype == torch.float32
    torch.testing.assert_close(resized[0, :, 150, 100], torch.tensor([10.0, 200.0, 255.0]), atol=1e-3, rtol=0)
    ramp = torch.arange(64, dtype=torch.uint8).repeat(1, 3, 64, 1) * 4
    assert not torch.equal(clean_resize(ramp), clean_resize(ramp).round())  # clean mode does not re-quantise


def test_inception_is_never_downloaded(tmp_path, monkeypatch):
    monkeypatch.setenv("LOCALCTRL_WEIGHTS_DIR", str(tmp_path / "weights"))
    monkeypatch.setattr("localctrl.models.weights.CLEANFID_DOWNLOAD_DIR", tmp_path / "nowhere")
    with pytest.raises(MetricUnavailable) as error:
        inception_features()
    assert "inception-2015-12-05.pt" in str(error.value) and "LOCALCTRL_WEIGHTS_DIR" in str(error.value)


class _FakeLayers(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:  # per-channel means of the network's input, padded to 2048
        return torch.cat([x.mean(dim=(2, 3)), torch.zeros(x.shape[0], 2045)], dim=1)


class _FakeInception(nn.Module):
    def __init__(self):
        super().__init__()
        self.layers = _FakeLayers()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


def test_inception_gets_clean_resized_images_scaled_as_clean_fid_does(tmp_path, monkeypatch):
    """A stand-in TorchScript file with the real one's interface: what reaches the network is checked exactly."""
    weights = tmp_path / "weights"
    weights.mkdir()
    torch.jit.script(_FakeInception()).save(str(weights / "inception-2015-12-05.pt"))
    monkeypatch.setenv("LOCALCTRL_WEIGHTS_DIR", str(weights))
    images = uint8_images(3, 32)
    extract = inception_features(batch_size=2)
    features = extract(images)
    assert extract.name == "inception" and features.shape == (3, 2048) and features.dtype == np.float64
    expected = ((clean_resize(images) - 128) / 128).mean(dim=(2, 3)).double().numpy()
    np.testing.assert_allclose(features[:, :3], expected, rtol=1e-5, atol=1e-6)


def test_random_inception_is_named_as_such_seeded_and_usable_for_fid():
    images = uint8_images(8, 32)
    extract = random_inception_features(seed=0)
    features = extract(images)
    assert extract.name == "random-inception" and features.shape == (8, 64) and features.dtype == np.float64
    np.testing.assert_array_equal(random_inception_features(seed=0)(images), features)
    assert not np.allclose(random_inception_features(seed=1)(images), features)
    assert abs(fid_from_features(features, features)) < 1e-6
