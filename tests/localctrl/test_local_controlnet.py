"""ControlNet as a local-control baseline: our sampler against diffusers' ControlNet pipeline, and the two masking modes."""

import numpy as np
import pytest
import torch
from diffusers import StableDiffusionControlNetPipeline

from localctrl.local_adapter import LocalAdapter
from localctrl.local_controlnet import LocalControlNet
from localctrl.models.adapters import build_adapter
from localctrl.models.architectures import TINY
from localctrl.models.controlnets import build_controlnet
from localctrl.sampling import Request, SamplerSettings, make_scheduler, sample

PROMPTS = ["a red circle", "a blue square on a white background", "a red circle", "two green triangles"]
SETTINGS = SamplerSettings(steps=4, guidance=7.5, batch_size=4, scale=0.8)


@pytest.fixture(scope="module")
def controlnet(tiny_stack):
    return build_controlnet(tiny_stack, seed=3)


def conditions(n: int) -> torch.Tensor:
    """Sparse binary edge-like maps as RGB images (the canny ControlNet's input format)."""
    edges = (torch.rand(n, 1, 64, 64, generator=torch.Generator().manual_seed(11)) > 0.8).float()
    return edges.expand(n, 3, 64, 64).clone()


def ours(stack, controlnet, prompts, seeds, condition, mask, settings=SETTINGS):
    requests = [Request(p, s, c, m, controlnet=controlnet) for p, s, c, m in zip(prompts, seeds, condition, mask)]
    return sample(stack, requests, None, settings, progress=False)


def text_only(stack, prompts, seeds, settings=SETTINGS):
    return sample(stack, [Request(p, s) for p, s in zip(prompts, seeds)], None, settings, progress=False)


def stock_controlnet_images(stack, controlnet, prompts, seeds, condition):
    pipeline = StableDiffusionControlNetPipeline(vae=stack.vae, text_encoder=stack.text_encoder, tokenizer=stack.tokenizer,
                                                 unet=stack.unet, controlnet=controlnet, scheduler=make_scheduler(stack, "ddim"),
                                                 safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipeline.set_progress_bar_config(disable=True)
    return pipeline(prompt=prompts, image=condition, num_inference_steps=SETTINGS.steps, guidance_scale=SETTINGS.guidance,
                    controlnet_conditioning_scale=SETTINGS.scale, guess_mode=False, height=64, width=64,
                    generator=[torch.Generator().manual_seed(s) for s in seeds], output_type="np").images


@pytest.mark.parametrize("mask", [None, "ones"])
def test_unmasked_zero_condition_equals_the_stock_controlnet_pipeline(tiny_stack, controlnet, mask):
    seeds, condition = [0, 1, 2, 3], conditions(4)
    masks = [None] * 4 if mask is None else torch.ones(4, 1, 64, 64)
    expected = stock_controlnet_images(tiny_stack, controlnet, PROMPTS, seeds, condition)
    got = ours(tiny_stack, LocalControlNet(controlnet, mode="zero-condition"), PROMPTS, seeds, condition, masks)
    assert np.abs(got.permute(0, 2, 3, 1).numpy() - expected).max() <= 1 / 255
    assert (got - text_only(tiny_stack, PROMPTS, seeds)).abs().max() > 0.05  # the ControlNet really acts


def test_empty_mask_with_masked_residuals_is_exactly_text_only(tiny_stack, controlnet):
    seeds, condition, empty = [5, 6], conditions(2), torch.zeros(2, 1, 64, 64)
    masked = ours(tiny_stack, LocalControlNet(controlnet, mode="mask-residuals"), PROMPTS[:2], seeds, condition, empty)
    assert torch.equal(masked, text_only(tiny_stack, PROMPTS[:2], seeds))


def test_empty_mask_with_zeroed_condition_still_changes_the_image(tiny_stack, controlnet):
    """diffusers' ControlNet given a blank (all-zeros) condition still adds residuals: its encoder reads the noisy latent
    and the prompt, so "zero-condition" with an empty mask is not text-only (it is the leakage this baseline measures)."""
    seeds, condition, empty = [5, 6], conditions(2), torch.zeros(2, 1, 64, 64)
    local = LocalControlNet(controlnet, mode="zero-condition")
    zeroed = ours(tiny_stack, local, PROMPTS[:2], seeds, condition, empty)
    blank = ours(tiny_stack, local, PROMPTS[:2], seeds, torch.zeros(2, 3, 64, 64), [None] * 2)
    assert (zeroed - text_only(tiny_stack, PROMPTS[:2], seeds)).abs().max() > 0.05
    assert (zeroed - blank).abs().max() <= 1e-6  # condition × 0 is the blank condition, whatever the condition was


def test_controlnet_adapter_and_text_only_requests_share_a_batch_and_equal_separate_calls(tiny_stack, controlnet):
    local_controlnet = LocalControlNet(controlnet, mode="mask-residuals", resize="max")
    adapter = LocalAdapter(build_adapter(TINY, "full", in_channels=1, seed=0))
    box = torch.zeros(1, 64, 64)
    box[:, 8:40, 16:56] = 1
    mixed = [Request(PROMPTS[0], 0, conditions(1)[0], box, controlnet=local_controlnet, scale=0.6),
             Request(PROMPTS[1], 1, conditions(1)[0, :1], box, adapter=adapter),
             Request(PROMPTS[2], 2)]
    together = sample(tiny_stack, mixed, None, SETTINGS, progress=False)
    alone = torch.cat([sample(tiny_stack, [request], None, SETTINGS, progress=False) for request in mixed])
    assert (together - alone).abs().max() <= 1 / 255
    reference = text_only(tiny_stack, PROMPTS[:2], [0, 1])
    assert ((alone[:2] - reference).abs().amax(dim=(1, 2, 3)) > 5 / 255).all()  # each control acts, well above the tolerance


# A box covering pixels [0, 10) of both axes of a 64² image, resized to the residuals' sizes (16², 8², 4²): the
# coverage of each cell per axis (4, 8, 16 px cells), written out by hand; the 2-D mask is their outer product.
BOX_PROFILES = {
    "area": {16: [1, 1, 0.5] + [0] * 13, 8: [1, 0.25] + [0] * 6, 4: [0.625, 0, 0, 0]},
    "max": {16: [1, 1, 1] + [0] * 13, 8: [1, 1] + [0] * 6, 4: [1, 0, 0, 0]},
    "nearest": {16: [1, 1, 1] + [0] * 13, 8: [1, 1] + [0] * 6, 4: [1, 0, 0, 0]},  # samples pixels 0, 4, 8, ...
}


@pytest.mark.parametrize("resize", list(BOX_PROFILES))
def test_each_residual_is_multiplied_by_the_mask_resized_to_its_size(controlnet, resize):
    generator = torch.Generator().manual_seed(0)
    latents, text = torch.randn(2, 4, 16, 16, generator=generator), torch.randn(2, 77, 32, generator=generator)
    condition, box = conditions(2), torch.zeros(2, 1, 64, 64)
    box[0, :, :10, :10] = 1
    local = LocalControlNet(controlnet, mode="mask-residuals", resize=resize)
    with torch.no_grad():
        full_down, full_mid = local(latents, 500, text, condition, None, scale=0.8)
        down, mid = local(latents, 500, text, condition, box, scale=0.8)
    assert [r.shape[-1] for r in down] == [16, 16, 8, 8, 4, 4] and mid.shape[-1] == 4  # every level is checked
    for full, masked in zip([*full_down, full_mid], [*down, mid]):
        profile = torch.tensor(BOX_PROFILES[resize][full.shape[-1]])
        torch.testing.assert_close(masked[0], full[0] * torch.outer(profile, profile), rtol=1e-6, atol=1e-6)
        assert masked[1].abs().max() == 0 and full[1].abs().max() > 0  # each sample has its own mask


def test_zero_condition_mode_masks_the_condition_not_the_residuals(controlnet):
    generator = torch.Generator().manual_seed(1)
    latents, text = torch.randn(1, 4, 16, 16, generator=generator), torch.randn(1, 77, 32, generator=generator)
    condition, half = conditions(1), torch.zeros(1, 1, 64, 64)
    half[..., :32] = 1
    local = LocalControlNet(controlnet, mode="zero-condition")
    with torch.no_grad():
        down, mid = local(latents, 500, text, condition, half)
        expected_down, expected_mid = controlnet(latents, 500, text, condition * half, return_dict=False)
    for got, expected in zip([*down, mid], [*expected_down, expected_mid]):
        assert torch.equal(got, expected)


def test_a_request_with_an_adapter_and_a_controlnet_is_refused(controlnet):
    adapter = LocalAdapter(build_adapter(TINY, "full", in_channels=1, seed=0))
    with pytest.raises(ValueError, match="both an adapter and a ControlNet"):
        Request("a red circle", 0, conditions(1)[0], adapter=adapter, controlnet=LocalControlNet(controlnet))


def test_bad_modes_and_shapes_are_clear_errors(controlnet):
    with pytest.raises(ValueError, match="unknown ControlNet mode 'soft'"):
        LocalControlNet(controlnet, mode="soft")
    with pytest.raises(ValueError, match="unknown mask resize mode 'bicubic'"):
        LocalControlNet(controlnet, resize="bicubic")
    with pytest.raises(ValueError, match=r"expects \(N, 3, H, W\)"):
        LocalControlNet(controlnet)(torch.zeros(1, 4, 16, 16), 1, torch.zeros(1, 77, 32), torch.zeros(1, 1, 64, 64))
    with pytest.raises(ValueError, match="the mask must have the image's size"):
        LocalControlNet(controlnet)(torch.zeros(1, 4, 16, 16), 1, torch.zeros(1, 77, 32), conditions(1), torch.ones(1, 1, 16, 16))
