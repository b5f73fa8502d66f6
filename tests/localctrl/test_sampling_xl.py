"""Our batched sampler on an SDXL stack (tiny-xl) against diffusers' SDXL pipelines, image for image."""

import numpy as np
import pytest
import torch
from diffusers import StableDiffusionXLAdapterPipeline, StableDiffusionXLControlNetPipeline

from localctrl.local_adapter import LocalAdapter
from localctrl.local_controlnet import LocalControlNet
from localctrl.models.adapters import build_adapter
from localctrl.models.controlnets import build_controlnet
from localctrl.models.stacks import load_stack
from localctrl.sampling import Request, SamplerSettings, make_scheduler, sample

PROMPTS = ["a red circle", "a blue square on a white background", "a red circle", "two green triangles"]
SETTINGS = SamplerSettings(steps=4, guidance=7.5, batch_size=4, scale=0.8, scheduler="euler")
SEEDS = [0, 1, 2, 3]


@pytest.fixture(scope="module")
def xl_stack():
    return load_stack("tiny-xl", seed=0)


@pytest.fixture(scope="module")
def xl_adapter(xl_stack):
    return LocalAdapter(build_adapter(xl_stack, "full_xl", in_channels=1, seed=7))


@pytest.fixture(scope="module")
def xl_controlnet(xl_stack):
    return build_controlnet(xl_stack, seed=3)


def edges(n: int, channels: int = 1) -> torch.Tensor:
    maps = (torch.rand(n, 1, 64, 64, generator=torch.Generator().manual_seed(11)) > 0.8).float()
    return maps.expand(n, channels, 64, 64).clone()


def stock_kwargs(settings=SETTINGS, seeds=SEEDS) -> dict:
    return dict(prompt=PROMPTS, num_inference_steps=settings.steps, guidance_scale=settings.guidance, height=64, width=64,
                generator=[torch.Generator().manual_seed(s) for s in seeds], output_type="np")


def parts(stack) -> dict:
    return dict(vae=stack.vae, text_encoder=stack.text_encoder, text_encoder_2=stack.text_encoder_2, tokenizer=stack.tokenizer,
                tokenizer_2=stack.tokenizer_2, unet=stack.unet, scheduler=make_scheduler(stack, SETTINGS.scheduler))


def ours(stack, requests, adapter=None, settings=SETTINGS) -> np.ndarray:
    return sample(stack, requests, adapter, settings, progress=False).permute(0, 2, 3, 1).numpy()


def test_the_sdxl_adapter_features_include_the_extra_map_after_the_mid_block(xl_stack, xl_adapter):
    features = xl_adapter(edges(1))
    assert len(features) == len(xl_stack.unet.down_blocks) + 1  # full_xl: one map per down block, and one more
    assert features[-1].shape == features[-2].shape  # the extra one enters after the mid block, at its size


def test_full_mask_equals_the_stock_sdxl_adapter_pipeline(xl_stack, xl_adapter):
    pipeline = StableDiffusionXLAdapterPipeline(**parts(xl_stack), adapter=xl_adapter.adapter)
    pipeline.set_progress_bar_config(disable=True)
    condition = edges(4)
    expected = pipeline(image=condition, adapter_conditioning_scale=SETTINGS.scale, **stock_kwargs()).images
    got = ours(xl_stack, [Request(p, s, c, torch.ones(1, 64, 64)) for p, s, c in zip(PROMPTS, SEEDS, condition)], xl_adapter)
    assert np.abs(got - expected).max() <= 1 / 255
    text_only = ours(xl_stack, [Request(p, s) for p, s in zip(PROMPTS, SEEDS)])
    assert np.abs(got - text_only).max() > 10 / 255  # the adapter does change the images: the equality is not vacuous


@pytest.mark.parametrize("negative", ["", "blurry, low quality"])
def test_empty_mask_equals_the_stock_sdxl_pipeline(xl_stack, xl_adapter, negative):
    """An empty negative prompt is zeros on SDXL (force_zeros_for_empty_prompt); any other is encoded."""
    pipeline = xl_stack.pipeline()
    pipeline.scheduler = make_scheduler(xl_stack, SETTINGS.scheduler)
    pipeline.set_progress_bar_config(disable=True)
    expected = pipeline(negative_prompt=negative or None, **stock_kwargs()).images
    settings = SETTINGS.model_copy(update={"negative_prompt": negative})
    requests = [Request(p, s, c, torch.zeros(1, 64, 64)) for p, s, c in zip(PROMPTS, SEEDS, edges(4))]
    assert np.abs(ours(xl_stack, requests, xl_adapter, settings) - expected).max() <= 1 / 255


def test_unmasked_controlnet_equals_the_stock_sdxl_controlnet_pipeline(xl_stack, xl_controlnet):
    pipeline = StableDiffusionXLControlNetPipeline(**parts(xl_stack), controlnet=xl_controlnet, add_watermarker=False)
    pipeline.set_progress_bar_config(disable=True)
    condition = edges(4, channels=3)
    expected = pipeline(image=condition, controlnet_conditioning_scale=SETTINGS.scale, guess_mode=False, **stock_kwargs()).images
    local = LocalControlNet(xl_controlnet)
    got = ours(xl_stack, [Request(p, s, c, controlnet=local) for p, s, c in zip(PROMPTS, SEEDS, condition)])
    assert np.abs(got - expected).max() <= 1 / 255
    empty = ours(xl_stack, [Request(p, s, c, torch.zeros(1, 64, 64), controlnet=local)
                            for p, s, c in zip(PROMPTS, SEEDS, condition)])
    text_only = ours(xl_stack, [Request(p, s) for p, s in zip(PROMPTS, SEEDS)])
    assert np.abs(got - text_only).max() > 10 / 255 and np.array_equal(empty, text_only)


def test_adapter_controlnet_and_text_only_requests_share_an_sdxl_batch_and_equal_separate_calls(xl_stack, xl_adapter,
                                                                                               xl_controlnet):
    mask = torch.zeros(1, 64, 64)
    mask[:, 8:40, 16:56] = 1
    local = LocalControlNet(xl_controlnet)
    requests = [Request(PROMPTS[0], 0, edges(1)[0], mask, adapter=xl_adapter), Request(PROMPTS[1], 1),
                Request(PROMPTS[2], 2, edges(1, 3)[0], mask, controlnet=local), Request(PROMPTS[3], 3, edges(1)[0], None,
                                                                                         adapter=xl_adapter)]
    together = ours(xl_stack, requests)
    alone = np.concatenate([ours(xl_stack, [request], settings=SETTINGS.model_copy(update={"batch_size": 1}))
                            for request in requests])
    assert np.abs(together - alone).max() <= 1 / 255
