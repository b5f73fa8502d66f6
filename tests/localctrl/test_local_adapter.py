import pytest
import torch
from diffusers import T2IAdapter

from localctrl.config import Z0Settings
from localctrl.local_adapter import LocalAdapter
from localctrl.models.adapters import build_adapter
from localctrl.models.architectures import TINY
from localctrl.z0_loss import local_control_loss


@pytest.mark.parametrize("mode", ["nearest", "area", "max"])
def test_each_sample_gets_its_own_mask_at_every_level(mode):
    local = LocalAdapter(build_adapter(TINY, "full", in_channels=1, seed=0), resize=mode)
    condition = torch.rand(3, 1, 64, 64, generator=torch.Generator().manual_seed(0))
    masks = torch.zeros(3, 1, 64, 64)
    masks[0] = 1  # full
    masks[2, :, :32, :32] = 1  # top-left quarter
    with torch.no_grad():
        plain, masked = local(condition), local(condition, masks)
    assert len(masked) == 3
    for level, (free, local_features) in enumerate(zip(plain, masked)):
        size = free.shape[-1]
        assert torch.equal(local_features[0], free[0]), level
        assert local_features[1].abs().sum() == 0, level
        half = size // 2
        assert torch.equal(local_features[2][:, :half, :half], free[2][:, :half, :half]), level
        assert local_features[2][:, half:, :].abs().sum() == 0 and local_features[2][:, :, half:].abs().sum() == 0, level


def test_scale_multiplies_the_features():
    local = LocalAdapter(build_adapter(TINY, "light", seed=0))
    condition = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        for one, half in zip(local(condition), local(condition, scale=0.5)):
            torch.testing.assert_close(half, one * 0.5)


def test_bad_mask_and_condition_shapes_are_clear_errors():
    local = LocalAdapter(build_adapter(TINY, "full", in_channels=1, seed=0))
    with pytest.raises(ValueError, match=r"mask has shape \(1, 1, 32, 32\).*image's size"):
        local(torch.rand(1, 1, 64, 64), torch.ones(1, 1, 32, 32))
    with pytest.raises(ValueError, match=r"condition has shape \(1, 3, 64, 64\): the adapter expects \(N, 1, H, W\)"):
        local(torch.rand(1, 3, 64, 64))


def test_saved_local_adapter_is_a_plain_diffusers_adapter_with_settings_beside_it(tmp_path):
    local = LocalAdapter(build_adapter(TINY, "full", in_channels=1, seed=3), resize="max")
    local.save_pretrained(tmp_path / "adapter", masked_training=True)
    plain = T2IAdapter.from_pretrained(tmp_path / "adapter")
    again = LocalAdapter.from_pretrained(tmp_path / "adapter")
    assert again.resize == "max"
    for key, value in local.adapter.state_dict().items():
        assert torch.equal(plain.state_dict()[key], value) and torch.equal(again.adapter.state_dict()[key], value)


def test_gradients_reach_the_adapter_through_the_frozen_unet(tiny_stack):
    unet = tiny_stack.unet.requires_grad_(False)
    local = LocalAdapter(build_adapter(TINY, "full", in_channels=1, seed=0))
    generator = torch.Generator().manual_seed(0)
    z0, noise = torch.randn(2, 4, 16, 16, generator=generator), torch.randn(2, 4, 16, 16, generator=generator)
    timesteps = torch.tensor([100, 700])
    scheduler = tiny_stack.scheduler
    noisy = scheduler.add_noise(z0, noise, timesteps)
    mask = torch.ones(2, 1, 64, 64)
    text = torch.zeros(2, 77, 32)
    output = unet(noisy, timesteps, text, down_intrablock_additional_residuals=local(torch.rand(2, 1, 64, 64), mask)).sample
    latent_mask = torch.ones(2, 1, 16, 16)
    terms = local_control_loss(output, noise, noisy, z0, timesteps, latent_mask, scheduler.alphas_cumprod, "epsilon",
                               Z0Settings(weight=1.0))
    terms.loss_z0.backward()  # the z0 term alone must reach the adapter: ẑ0 is not detached
    assert all(p.grad is None for p in unet.parameters())
    assert sum(p.grad.abs().sum() for p in local.adapter.parameters() if p.grad is not None) > 0
