"""Our batched sampler against diffusers' own pipelines, image for image."""


import numpy as np
import pytest
import torch
from diffusers import StableDiffusionAdapterPipeline

from localctrl.local_adapter import LocalAdapter
from localctrl.models.adapters import build_adapter
from localctrl.models.architectures import TINY
from localctrl.sampling import Request, SamplerSettings, make_scheduler, sample

PROMPTS = ["a red circle", "a blue square on a white background", "a red circle", "two green triangles"]
SETTINGS = SamplerSettings(steps=4, guidance=7.5, batch_size=4)


@pytest.fixture(scope="module")
def local_adapter():
    return LocalAdapter(build_adapter(TINY, "full", in_channels=1, seed=7), resize="area")


def conditions(n: int) -> torch.Tensor:
    return (torch.rand(n, 1, 64, 64, generator=torch.Generator().manual_seed(11)) > 0.8).float()


def stock_adapter_images(stack, adapter, prompts, seeds, condition, scheduler="ddim"):
    pipeline = StableDiffusionAdapterPipeline(vae=stack.vae, text_encoder=stack.text_encoder, tokenizer=stack.tokenizer, unet=stack.unet,
                                              adapter=adapter, scheduler=make_scheduler(stack, scheduler), safety_checker=None,
                                              feature_extractor=None, requires_safety_checker=False)
    pipeline.set_progress_bar_config(disable=True)
    return pipeline(prompt=prompts, image=condition, num_inference_steps=SETTINGS.steps, guidance_scale=SETTINGS.guidance,
                    height=64, width=64, generator=[torch.Generator().manual_seed(s) for s in seeds], output_type="np").images


def ours(stack, adapter, prompts, seeds, condition, mask, **changes):
    requests = [Request(p, s, c, m) for p, s, c, m in zip(prompts, seeds, condition, mask)]
    images = sample(stack, requests, adapter, SamplerSettings(**{**SETTINGS.model_dump(), **changes}), progress=False)
    return images.permute(0, 2, 3, 1).numpy()


@pytest.mark.parametrize("scheduler", ["ddim", "euler"])
def test_full_mask_equals_the_stock_adapter_pipeline(tiny_stack, local_adapter, scheduler):
    seeds, condition = [0, 1, 2, 3], conditions(4)
    expected = stock_adapter_images(tiny_stack, local_adapter.adapter, PROMPTS, seeds, condition, scheduler)
    got = ours(tiny_stack, local_adapter, PROMPTS, seeds, condition, torch.ones(4, 1, 64, 64), scheduler=scheduler)
    assert np.abs(got - expected).max() <= 1 / 255


def test_empty_mask_equals_the_stock_text_to_image_pipeline(tiny_stack, local_adapter):
    seeds = [5, 6, 7, 8]
    pipeline = tiny_stack.pipeline()
    pipeline.scheduler = make_scheduler(tiny_stack, "ddim")
    pipeline.set_progress_bar_config(disable=True)
    expected = pipeline(prompt=PROMPTS, num_inference_steps=SETTINGS.steps, guidance_scale=SETTINGS.guidance, output_type="np",
                        generator=[torch.Generator().manual_seed(s) for s in seeds]).images
    got = ours(tiny_stack, local_adapter, PROMPTS, seeds, conditions(4), torch.zeros(4, 1, 64, 64))
    assert np.abs(got - expected).max() <= 1 / 255


def test_batch_of_8_equals_one_at_a_time(tiny_stack, local_adapter):
    prompts, seeds, condition = PROMPTS * 2, list(range(10, 18)), conditions(8)
    masks = torch.zeros(8, 1, 64, 64)
    masks[:, :, 16:48, 8:40] = 1
    masks[3] = 1
    together = ours(tiny_stack, local_adapter, prompts, seeds, condition, masks, batch_size=8)
    alone = ours(tiny_stack, local_adapter, prompts, seeds, condition, masks, batch_size=1)
    assert np.abs(together - alone).max() <= 1 / 255


def test_conditioning_factor_zero_is_text_only(tiny_stack, local_adapter):
    seeds, condition, mask = [0, 1], conditions(2), torch.ones(2, 1, 64, 64)
    without = ours(tiny_stack, local_adapter, PROMPTS[:2], seeds, condition, torch.zeros(2, 1, 64, 64))
    factor_zero = ours(tiny_stack, local_adapter, PROMPTS[:2], seeds, condition, mask, conditioning_factor=0.0)
    controlled = ours(tiny_stack, local_adapter, PROMPTS[:2], seeds, condition, mask)
    assert np.array_equal(without, factor_zero) and not np.array_equal(without, controlled)


def test_bf16_autocast_stays_close_to_fp32_and_unknown_precision_is_refused(tiny_stack, local_adapter):
    seeds, condition, mask = [0, 1], conditions(2), torch.ones(2, 1, 64, 64)
    exact = ours(tiny_stack, local_adapter, PROMPTS[:2], seeds, condition, mask)
    half = ours(tiny_stack, local_adapter, PROMPTS[:2], seeds, condition, mask, precision="bf16")
    assert half.dtype == np.float32 and not np.array_equal(exact, half)  # autocast really ran in bf16
    assert np.abs(exact - half).mean() < 0.01
    with pytest.raises(ValueError, match="precision\n  Input should be 'fp32', 'bf16' or 'fp16'"):
        ours(tiny_stack, local_adapter, PROMPTS[:2], seeds, condition, mask, precision="fp8")


def test_requests_with_different_adapters_share_a_batch_and_equal_separate_calls(tiny_stack, local_adapter):
    other = LocalAdapter(build_adapter(TINY, "full", in_channels=1, seed=8), resize="max")
    condition, mask = conditions(3), torch.ones(3, 1, 64, 64)
    mixed = [Request(PROMPTS[0], 0, condition[0], mask[0]), Request(PROMPTS[1], 1, condition[1], mask[1], adapter=other, scale=0.5),
             Request(PROMPTS[2], 2)]
    together = sample(tiny_stack, mixed, local_adapter, SETTINGS, progress=False)
    first = sample(tiny_stack, mixed[:1], local_adapter, SETTINGS, progress=False)
    second = sample(tiny_stack, [Request(PROMPTS[1], 1, condition[1], mask[1])], other, SETTINGS.model_copy(update={"scale": 0.5}), progress=False)
    text_only = sample(tiny_stack, mixed[2:], None, SETTINGS, progress=False)
    assert (together - torch.cat([first, second, text_only])).abs().max() <= 1 / 255


def test_channels_last_stays_within_a_grey_level_of_the_default_layout(local_adapter):
    from localctrl.models.stacks import load_stack

    stack = load_stack("tiny", seed=0)  # its own stack: channels_last converts the modules in place
    seeds, condition, mask = [0, 1], conditions(2), torch.ones(2, 1, 64, 64)
    default = ours(stack, local_adapter, PROMPTS[:2], seeds, condition, mask)
    channels_last = ours(stack, local_adapter, PROMPTS[:2], seeds, condition, mask, channels_last=True)
    assert stack.unet.conv_in.weight.is_contiguous(memory_format=torch.channels_last)
    assert np.abs(default - channels_last).max() <= 1 / 255


def blended(stack, adapter, prompts, seeds, condition, blend, **changes):
    requests = [Request(p, s, c, None, blend=b) for p, s, c, b in zip(prompts, seeds, condition, blend)]
    images = sample(stack, requests, adapter, SamplerSettings(**{**SETTINGS.model_dump(), **changes}), progress=False)
    return images.permute(0, 2, 3, 1).numpy()


def test_blended_latents_keep_the_controlled_trajectory_inside_and_the_text_only_one_outside(tiny_stack, local_adapter):
    """Blended Latent Diffusion's two limits are the stock pipelines (a blend mask of ones: the adapter pipeline; of
    zeros: text to image); a box keeps the text-only image outside it, away from the seam the VAE smooths."""
    seeds, condition = [0, 1, 2, 3], conditions(4)
    stock = stock_adapter_images(tiny_stack, local_adapter.adapter, PROMPTS, seeds, condition)
    assert np.abs(blended(tiny_stack, local_adapter, PROMPTS, seeds, condition, torch.ones(4, 1, 64, 64)) - stock).max() <= 1 / 255
    text_only = ours(tiny_stack, local_adapter, PROMPTS, seeds, condition, torch.zeros(4, 1, 64, 64))
    assert np.abs(blended(tiny_stack, local_adapter, PROMPTS, seeds, condition, torch.zeros(4, 1, 64, 64)) - text_only).max() <= 1 / 255
    box = torch.zeros(4, 1, 64, 64)
    box[:, :, 16:48, 16:48] = 1
    got = blended(tiny_stack, local_adapter, PROMPTS, seeds, condition, box, batch_size=2)  # twins join each batch of 2
    far = np.ones((64, 64), bool)
    far[8:56, 8:56] = False  # 8 px (two latent cells) from the box
    inside = np.abs(got - stock)[:, 20:44, 20:44].mean()
    outside_change = np.abs(got - text_only)[:, far].mean()
    assert np.abs(got - text_only)[:, 20:44, 20:44].mean() > 10 * outside_change  # the inside is controlled, the outside is not
    assert inside < np.abs(text_only - stock)[:, 20:44, 20:44].mean()  # inside is nearer the controlled image than text only


def test_a_blend_mask_of_the_wrong_size_is_refused(tiny_stack, local_adapter):
    from localctrl.errors import InputError

    with pytest.raises(InputError, match=r"blend mask has shape \(1, 32, 32\), expected \(1, 64, 64\)"):
        sample(tiny_stack, [Request("a red circle", 0, conditions(1)[0], None, blend=torch.ones(1, 32, 32))], local_adapter,
               SETTINGS, progress=False)
