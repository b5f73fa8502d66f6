import time

import numpy as np
import pytest
import torch
from diffusers import AutoencoderKL, StableDiffusionPipeline, T2IAdapter, UNet2DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

from localctrl.common.seeding import seeded
from localctrl.local_adapter import LocalAdapter
from localctrl.models.adapters import (
    AdapterMismatchError,
    adapter_feature_shapes,
    build_adapter,
    check_adapter_fits,
    unet_residual_shapes,
)
from localctrl.models.architectures import SD15, TINY
from localctrl.models.stacks import load_stack
from localctrl.models.tokenizers import TokenizerMismatchError
from localctrl.models.weights import ModelNotAvailableError


def state_dicts(stack):
    return {name: module.state_dict() for name, module in stack.modules().items()}


def assert_same_weights(a: dict, b: dict) -> None:
    for name in a:
        assert a[name].keys() == b[name].keys()
        for key in a[name]:
            assert torch.equal(a[name][key], b[name][key]), f"{name}.{key} differs"


def test_tiny_stack_builds_identically_from_the_same_seed(tiny_stack):
    rng_before = torch.random.get_rng_state()
    again = load_stack("tiny", seed=0)
    assert torch.equal(torch.random.get_rng_state(), rng_before), "building a stack must not move the caller's RNG"
    assert_same_weights(state_dicts(tiny_stack), state_dicts(again))
    other = load_stack("tiny", seed=1)
    assert not torch.equal(other.unet.conv_in.weight, tiny_stack.unet.conv_in.weight)


def test_tiny_stack_maps_64px_images_to_16px_latents(tiny_stack):
    assert tiny_stack.image_size == 64 and tiny_stack.vae_scale_factor == 4
    with torch.no_grad():
        latents = tiny_stack.vae.encode(torch.zeros(1, 3, 64, 64)).latent_dist.mean
    assert latents.shape == (1, 4, 16, 16)


@pytest.mark.parametrize("kind", ["full", "light"])
def test_one_denoising_step_uses_every_adapter_feature(tiny_stack, kind):
    adapter = build_adapter(TINY, kind, in_channels=1, seed=0)
    tiny_stack.check_adapter(adapter)
    ids = tiny_stack.tokenizer(["a red circle", "a blue square"], padding="max_length", max_length=77, return_tensors="pt").input_ids
    latents = torch.randn(2, 4, 16, 16, generator=torch.Generator().manual_seed(0))
    timestep = torch.tensor([500, 500])
    with torch.no_grad():
        text = tiny_stack.text_encoder(ids)[0]
        features = adapter(torch.rand(2, 1, 64, 64, generator=torch.Generator().manual_seed(1)))
        residuals = [f.clone() for f in features]
        controlled = tiny_stack.unet(latents, timestep, text, down_intrablock_additional_residuals=residuals).sample
        plain = tiny_stack.unet(latents, timestep, text).sample
    assert controlled.shape == (2, 4, 16, 16)
    assert residuals == [], "the UNet pops one residual per down block: all of them must have been consumed"
    assert not torch.allclose(controlled, plain), "adapter features must change the prediction"


def test_adapter_with_wrong_channels_is_an_error_naming_both_shapes(tiny_stack):
    wrong = T2IAdapter(in_channels=3, channels=[32, 64, 128], num_res_blocks=1, downscale_factor=4)
    with pytest.raises(AdapterMismatchError) as raised:
        tiny_stack.check_adapter(wrong)
    assert "(128, 4, 4)" in str(raised.value) and "(64, 4, 4)" in str(raised.value)


def test_adapter_with_missing_feature_maps_is_an_error(tiny_stack):
    too_few = T2IAdapter(in_channels=3, channels=[32, 64], num_res_blocks=1, downscale_factor=4, adapter_type="full_adapter")
    with pytest.raises(AdapterMismatchError, match=r"\[\(32, 16, 16\), \(64, 8, 8\)\] do not match"):
        tiny_stack.check_adapter(too_few)


def test_residual_shapes_known_answers():
    with torch.device("meta"):
        sd_unet = UNet2DConditionModel(**SD15.unet)
    assert unet_residual_shapes(sd_unet, 64) == [(320, 64, 64), (640, 32, 32), (1280, 16, 16), (1280, 8, 8)]
    for kind in ("full", "light"):
        assert adapter_feature_shapes(build_adapter(SD15, kind), 512) == unet_residual_shapes(sd_unet, 64)


def test_sd15_architecture_has_sd15_parameter_counts():
    with torch.device("meta"):  # shapes only: no memory, no init time
        unet = UNet2DConditionModel(**SD15.unet)
        vae = AutoencoderKL(**SD15.vae)
        text_encoder = CLIPTextModel(CLIPTextConfig(**SD15.text_encoder))
    count = lambda module: sum(p.numel() for p in module.parameters())  # noqa: E731
    assert count(unet) == 859_520_964  # SD 1.5 UNet
    assert count(vae) == 83_653_863
    assert count(text_encoder) == 123_060_480  # CLIP ViT-L/14 text tower


def test_tiny_stack_roundtrips_through_the_diffusers_folder_format(tiny_stack, tmp_path):
    folder = tiny_stack.save_pretrained(tmp_path / "tiny")
    loaded = load_stack(folder)
    assert_same_weights(state_dicts(tiny_stack), state_dicts(loaded))
    assert loaded.tokenizer("a green triangle").input_ids == tiny_stack.tokenizer("a green triangle").input_ids
    assert type(loaded.scheduler) is type(tiny_stack.scheduler)

    # Stock diffusers loads the same folder and draws the same image as our stack's pipeline.
    stock = StableDiffusionPipeline.from_pretrained(folder)
    run = dict(prompt="a red circle", num_inference_steps=2, output_type="np", height=64, width=64)
    ours = tiny_stack.pipeline()(generator=torch.Generator().manual_seed(3), **run).images
    theirs = stock(generator=torch.Generator().manual_seed(3), **run).images
    assert ours.shape == (1, 64, 64, 3)
    np.testing.assert_array_equal(ours, theirs)


def test_adapter_roundtrips_through_the_diffusers_folder_format(tmp_path):
    adapter = build_adapter(TINY, "light", seed=5)
    adapter.save_pretrained(tmp_path / "adapter", safe_serialization=True)
    assert (tmp_path / "adapter" / "diffusion_pytorch_model.safetensors").exists()
    loaded = T2IAdapter.from_pretrained(tmp_path / "adapter")
    for key, value in adapter.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[key])


def test_hub_id_offline_fails_fast_naming_the_model():
    started = time.monotonic()
    with pytest.raises(ModelNotAvailableError) as raised:
        load_stack("CompVis/stable-diffusion-v1-4")
    assert time.monotonic() - started < 10
    message = str(raised.value)
    assert "CompVis/stable-diffusion-v1-4" in message and "local folder" in message and "localctrl fetch" in message


@pytest.mark.parametrize("name, cached", [("stabilityai/stable-diffusion-xl-base-1.0", True), ("org/model.safetensors", False),
                                          ("weights/unet.bin", False)])
def test_a_dot_in_a_hub_name_is_a_hub_id_but_a_weights_file_is_not(name, cached):
    """`…-1.0` is looked up in the cache (and named as missing from it); a file name is refused as not a folder."""
    with pytest.raises(ModelNotAvailableError, match="not in the Hugging Face cache" if cached else "is not a folder"):
        load_stack(name)


def test_a_two_token_tokenizer_is_refused(tiny_stack, tmp_path):
    # The trap itself: offline, from_pretrained on a hub id returns a 2-token tokenizer without error.
    trap = CLIPTokenizer.from_pretrained("openai/clip-vit-large-patch14")
    assert len(trap) < 10
    folder = tiny_stack.save_pretrained(tmp_path / "tiny")
    trap.save_pretrained(folder / "tokenizer")
    with pytest.raises(TokenizerMismatchError, match="has 2 tokens but the text encoder expects 49408"):
        load_stack(folder)


def test_a_folder_missing_parts_is_an_error_naming_them(tmp_path):
    (tmp_path / "half" / "vae").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="lacks text_encoder/, tokenizer/, unet/, scheduler/"):
        load_stack(tmp_path / "half")


def test_unknown_adapter_kind_is_an_error():
    with pytest.raises(ValueError, match="unknown adapter kind 'xl'; known: full, light, full_xl"):
        build_adapter(TINY, "xl")


def test_adapters_are_derived_from_the_unet_and_fit_it(tiny_stack):
    from localctrl.shapes.base_model import build_untrained_base

    shapes = build_untrained_base(0)
    shapes.check_adapter(build_adapter(shapes, "full"))
    with pytest.raises(ValueError, match=r"last two down blocks have \[64, 96\] channels"):
        build_adapter(shapes, "light")
    for kind in ("full", "light"):
        tiny_stack.check_adapter(build_adapter(tiny_stack, kind))


def test_a_full_xl_adapter_fits_an_sdxl_style_unet_and_every_masked_map_is_consumed():
    """SDXL's layout (first down block without cross-attention): four maps, the last added after the mid block."""
    xl_layout = dict(down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
                     up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"))
    with seeded(0):
        unet = UNet2DConditionModel(**{**TINY.unet, **xl_layout})
    adapter = build_adapter(TINY, "full_xl", in_channels=1, seed=0)
    check_adapter_fits(adapter, unet, 64, 4)
    assert adapter_feature_shapes(adapter, 64) == [(32, 8, 8), (64, 8, 8), (64, 4, 4), (64, 4, 4)]
    with pytest.raises(AdapterMismatchError):
        check_adapter_fits(build_adapter(TINY, "full", in_channels=1), unet, 64, 4)
    local = LocalAdapter(adapter, resize="area")
    condition, latents, text = torch.rand(1, 1, 64, 64), torch.randn(1, 4, 16, 16), torch.randn(1, 77, 32)
    with torch.no_grad():
        plain = unet(latents, 500, text).sample
        residuals = local(condition, torch.ones(1, 1, 64, 64))
        controlled = unet(latents, 500, text, down_intrablock_additional_residuals=residuals).sample
        masked_out = unet(latents, 500, text, down_intrablock_additional_residuals=local(condition, torch.zeros(1, 1, 64, 64))).sample
    assert residuals == [] and not torch.allclose(controlled, plain)
    assert torch.equal(masked_out, plain)


def test_sdxl_architecture_has_sdxl_parameter_counts():
    from transformers import CLIPTextModelWithProjection

    from localctrl.models.architectures import SDXL

    with torch.device("meta"):  # shapes only
        unet = UNet2DConditionModel(**SDXL.unet)
        second = CLIPTextModelWithProjection(CLIPTextConfig(**SDXL.text_encoder_2))
    count = lambda module: sum(p.numel() for p in module.parameters())  # noqa: E731
    assert count(unet) == 2_567_463_684  # stabilityai/stable-diffusion-xl-base-1.0's UNet
    assert count(second) == 694_659_840  # OpenCLIP ViT-bigG text tower with its projection


def test_tiny_xl_is_an_sdxl_stack_that_stock_diffusers_samples_saves_and_loads(tmp_path):
    """`tiny-xl`: SDXL's layout (two text encoders, text_time conditioning) in seconds; the round trip through the
    pipeline folder keeps every weight, and stock StableDiffusionXLPipeline draws the same image from the folder."""
    from diffusers import StableDiffusionXLPipeline

    stack = load_stack("tiny-xl")
    assert stack.is_xl and not load_stack("tiny").is_xl and set(stack.modules()) == {"vae", "text_encoder", "text_encoder_2", "unet"}
    assert_same_weights(state_dicts(stack), state_dicts(load_stack("tiny-xl")))  # seeded
    folder = stack.save_pretrained(tmp_path / "tiny-xl")
    assert (folder / "text_encoder_2" / "model.safetensors").is_file() and (folder / "tokenizer_2").is_dir()
    loaded = load_stack(folder)
    assert loaded.is_xl and type(loaded.scheduler) is type(stack.scheduler)
    assert_same_weights(state_dicts(stack), state_dicts(loaded))
    run = dict(prompt="a red circle", num_inference_steps=2, output_type="np", height=64, width=64)
    ours = stack.pipeline()(generator=torch.Generator().manual_seed(3), **run).images
    theirs = StableDiffusionXLPipeline.from_pretrained(folder, add_watermarker=False)(generator=torch.Generator().manual_seed(3), **run).images
    assert ours.shape == (1, 64, 64, 3)
    np.testing.assert_array_equal(ours, theirs)


def test_an_sdxl_folder_says_whether_an_empty_negative_prompt_is_zeros(tmp_path):
    """model_index.json's force_zeros_for_empty_prompt travels with the folder (SDXL base: True, the default)."""
    stack = load_stack("tiny-xl")
    assert stack.force_zeros_for_empty_prompt and load_stack(stack.save_pretrained(tmp_path / "zeros")).force_zeros_for_empty_prompt
    stack.force_zeros_for_empty_prompt = False
    assert not load_stack(stack.save_pretrained(tmp_path / "encoded")).force_zeros_for_empty_prompt


def test_sdxl_prompts_and_micro_conditioning_are_encoded_as_the_sdxl_pipeline_encodes_them():
    from localctrl.text_conditioning import add_time_ids, encode_prompts_xl

    stack = load_stack("tiny-xl")
    prompts = ["a red circle", "a blue square on a grey background"]
    context, pooled = encode_prompts_xl(stack, prompts)
    theirs, _, theirs_pooled, _ = stack.pipeline().encode_prompt(prompts, device="cpu", do_classifier_free_guidance=False)
    assert context.shape == (2, 77, 64) and pooled.shape == (2, 32)
    assert torch.equal(context, theirs) and torch.equal(pooled, theirs_pooled)
    ids = stack.pipeline()._get_add_time_ids((64, 48), (0, 8), (64, 64), dtype=torch.float32,
                                             text_encoder_projection_dim=stack.text_encoder_2.config.projection_dim)
    assert torch.equal(add_time_ids(2, (64, 48), (0, 8), (64, 64)), ids.repeat(2, 1))
