"""Fixtures of the benchmark's tests."""

import pytest
from diffusers import UNet2DConditionModel


@pytest.fixture
def unet_calls(monkeypatch):
    """Counts real UNet forward passes (sampling and training alike)."""
    calls = []
    original = UNet2DConditionModel.forward

    def counting(self, *args, **kwargs):
        calls.append(1)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(UNet2DConditionModel, "forward", counting)
    return calls
