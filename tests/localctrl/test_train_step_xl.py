"""The training step on an SDXL stack (tiny-xl): conditioned as diffusers' train_t2i_adapter_sdxl.py conditions it."""

import torch
import torch.nn.functional as F
from diffusers import DDPMScheduler

from localctrl.local_adapter import LocalAdapter
from localctrl.models.adapters import build_adapter
from localctrl.models.stacks import load_stack
from localctrl.text_conditioning import TextEncoderCache
from localctrl.train_step import control_loss, freeze, noisy_latents

CAPTIONS = ["a red circle", "two green triangles"]


def test_the_sdxl_loss_reads_both_encoders_the_pooled_embedding_and_the_size_numbers_as_the_diffusers_trainer():
    stack = load_stack("tiny-xl")
    freeze(stack, torch.float32, "cpu")
    adapter = LocalAdapter(build_adapter(stack, "full_xl", in_channels=1, seed=1))
    scheduler = DDPMScheduler.from_config(stack.scheduler.config)
    generator = torch.Generator().manual_seed(0)
    images = torch.rand(2, 3, 64, 64, generator=generator)
    conditions, masks = (torch.rand(2, 1, 64, 64, generator=generator) > 0.8).float(), torch.ones(2, 1, 64, 64)
    latents, noise, timesteps, noisy = noisy_latents(stack, scheduler, images, "cubic", generator)
    text = TextEncoderCache(stack, torch.device("cpu"), torch.float32, alone=True)(CAPTIONS)
    ours = control_loss(stack, adapter, scheduler, scheduler.alphas_cumprod, latents, noise, timesteps, noisy, text, conditions,
                        masks, True, "area", None)

    # What the diffusers trainer computes: encode_prompt's embeddings, (original, crop, target) = (64², 0, 64²) time ids.
    pipeline = stack.pipeline()
    context, _, pooled, _ = pipeline.encode_prompt(CAPTIONS, device="cpu", do_classifier_free_guidance=False)
    time_ids = pipeline._get_add_time_ids((64, 64), (0, 0), (64, 64), dtype=torch.float32,
                                          text_encoder_projection_dim=stack.text_encoder_2.config.projection_dim).repeat(2, 1)
    with torch.no_grad():
        output = stack.unet(noisy, timesteps, context, added_cond_kwargs={"text_embeds": pooled, "time_ids": time_ids},
                            down_intrablock_additional_residuals=adapter.adapter(conditions)).sample
    assert torch.allclose(ours.loss, F.mse_loss(output, noise), rtol=1e-6, atol=0)
    assert torch.equal(text.time_ids, time_ids)


def test_sdxl_latents_are_scaled_by_its_vae_factor_and_its_vae_stays_in_fp32_under_mixed_precision():
    stack = load_stack("tiny-xl")
    freeze(stack, torch.bfloat16, "cpu")
    assert stack.vae.dtype == torch.float32 and stack.unet.dtype == torch.bfloat16 and stack.text_encoder_2.dtype == torch.bfloat16
    images = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    latents, *_ = noisy_latents(stack, DDPMScheduler.from_config(stack.scheduler.config), images, "cubic",
                                torch.Generator().manual_seed(1))
    posterior = stack.vae.encode(images * 2 - 1).latent_dist
    expected = posterior.mean + posterior.std * torch.randn(posterior.mean.shape, generator=torch.Generator().manual_seed(1))
    assert latents.dtype == torch.bfloat16 and stack.vae.config.scaling_factor == 0.13025
    assert torch.equal(latents, (expected * 0.13025).to(torch.bfloat16))
