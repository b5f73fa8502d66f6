"""ControlNets: loading from safetensors, and the check that a ControlNet's residuals fit the UNet's skip connections."""

import pytest
import torch
from diffusers import ControlNetModel

from localctrl.config import SamplerSettings
from localctrl.local_controlnet import LocalControlNet
from localctrl.models.architectures import TINY
from localctrl.models.controlnets import ControlNetMismatchError, build_controlnet, check_controlnet_fits, load_controlnet
from localctrl.models.weights import ModelNotAvailableError
from localctrl.sampling import Request, sample


def edges(n: int) -> torch.Tensor:
    return (torch.rand(n, 3, 64, 64, generator=torch.Generator().manual_seed(1)) > 0.8).float()


def test_a_controlnet_that_does_not_fit_the_unet_is_a_clear_error(tiny_stack):
    wider = ControlNetModel(block_out_channels=(32, 64, 128), down_block_types=TINY.unet["down_block_types"], layers_per_block=1,
                            cross_attention_dim=32, attention_head_dim=8, norm_num_groups=8,
                            conditioning_embedding_out_channels=(16, 32, 32))
    both_lists = r"ControlNet residuals \[.*\(128, 4, 4\).*\] do not match .* \[.*\(64, 4, 4\)"
    with pytest.raises(ControlNetMismatchError, match=both_lists):
        check_controlnet_fits(wider, tiny_stack.unet, 64, 4)
    request = Request("a red circle", 0, edges(1)[0], controlnet=LocalControlNet(wider))
    with pytest.raises(ControlNetMismatchError, match="do not match the UNet's skip connections"):
        sample(tiny_stack, [request], None, SamplerSettings(steps=2, guidance=7.5), progress=False)
    sd_embedding = build_controlnet(tiny_stack.unet, seed=0, vae_scale_factor=8)  # 3 downsamples: SD's 64² latents at 512²
    with pytest.raises(ControlNetMismatchError, match="downsamples by 8.*but the VAE by 4"):
        check_controlnet_fits(sd_embedding, tiny_stack.unet, 64, 4)


def test_offline_hub_id_fails_fast_naming_the_controlnet(tmp_path, monkeypatch):
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    with pytest.raises(ModelNotAvailableError, match="ControlNet 'lllyasviel/sd-controlnet-canny' is not in the Hugging Face cache.*localctrl fetch"):
        load_controlnet("lllyasviel/sd-controlnet-canny")


def test_saved_controlnet_loads_back_from_safetensors(tiny_stack, tmp_path):
    controlnet = build_controlnet(tiny_stack, seed=3)
    controlnet.save_pretrained(tmp_path / "controlnet", safe_serialization=True)
    loaded = load_controlnet(tmp_path / "controlnet")
    assert all(torch.equal(value, loaded.state_dict()[key]) for key, value in controlnet.state_dict().items())
