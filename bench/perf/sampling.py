"""Sampling throughput: localctrl's batched sampler vs diffusers' StableDiffusionAdapterPipeline on the same modules.

Both get the same prompts, conditions, seeds, scheduler, steps and guidance; the stock pipeline runs unmodified
(one call per `batch` images). Each measurement is warmed up by one short call at the same batch size (first calls
allocate memory and pick kernels), then timed over whole batches with the device synchronised, repeated until its
spread is small (bench.perf.timing).
"""


import torch
from diffusers import StableDiffusionAdapterPipeline, StableDiffusionXLAdapterPipeline

from bench.perf.flops import count_flops, mfu
from bench.perf.timing import Timing, measure
from localctrl.config import SamplerSettings
from localctrl.local_adapter import LocalAdapter
from localctrl.models.stacks import Stack
from localctrl.sampling import Request, make_scheduler, sample

PROMPTS = [f"a {colour} circle and a blue square on a grey background" for colour in ("red", "green", "yellow", "purple")]
WARMUP_STEPS = 2


def perf_requests(count: int, image_size: int, channels: int = 1, seed: int = 0) -> list[Request]:
    """`count` requests with sparse random edge conditions and a box mask (contents do not change the cost)."""
    generator = torch.Generator().manual_seed(seed)
    conditions = (torch.rand(count, channels, image_size, image_size, generator=generator) > 0.8).float()
    mask = torch.zeros(1, image_size, image_size)
    mask[:, image_size // 8 : image_size * 5 // 8, image_size // 4 : image_size * 7 // 8] = 1
    return [Request(PROMPTS[k % len(PROMPTS)], k, conditions[k], mask) for k in range(count)]


def stock_pipeline(stack: Stack, adapter: LocalAdapter, scheduler: str):
    """diffusers' adapter pipeline over the stack's modules: StableDiffusionAdapterPipeline, or the SDXL one."""
    if stack.is_xl:
        pipeline = StableDiffusionXLAdapterPipeline(vae=stack.vae, text_encoder=stack.text_encoder, text_encoder_2=stack.text_encoder_2,
                                                    tokenizer=stack.tokenizer, tokenizer_2=stack.tokenizer_2, unet=stack.unet,
                                                    adapter=adapter.adapter, scheduler=make_scheduler(stack, scheduler))
        pipeline.set_progress_bar_config(disable=True)
        return pipeline
    pipeline = StableDiffusionAdapterPipeline(vae=stack.vae, text_encoder=stack.text_encoder, tokenizer=stack.tokenizer, unet=stack.unet,
                                              adapter=adapter.adapter, scheduler=make_scheduler(stack, scheduler), safety_checker=None,
                                              feature_extractor=None, requires_safety_checker=False)
    pipeline.set_progress_bar_config(disable=True)
    return pipeline


def run_stock(pipeline: StableDiffusionAdapterPipeline, requests: list[Request], batch: int, settings: SamplerSettings,
              image_size: int) -> None:
    """The reference usage: one pipeline call per `batch` requests (batch 1 = one call per image)."""
    for start in range(0, len(requests), batch):
        part = requests[start : start + batch]
        pipeline(prompt=[r.prompt for r in part], image=torch.stack([r.condition for r in part]), num_inference_steps=settings.steps,
                 guidance_scale=settings.guidance, height=image_size, width=image_size, output_type="np",
                 generator=[torch.Generator().manual_seed(r.seed) for r in part])


def time_ours(stack: Stack, adapter: LocalAdapter, requests: list[Request], settings: SamplerSettings, **repeats) -> Timing:
    short = settings.model_copy(update={"steps": WARMUP_STEPS})
    return measure(lambda: sample(stack, requests, adapter, settings, progress=False),
                   lambda: sample(stack, requests[: settings.batch_size], adapter, short, progress=False), stack.unet.device,
                   **repeats)


def time_stock(pipeline: StableDiffusionAdapterPipeline, requests: list[Request], batch: int, settings: SamplerSettings,
               image_size: int, autocast_dtype: torch.dtype | None = None, **repeats) -> Timing:
    """`autocast_dtype`: run the stock pipeline under that autocast (what our sampler's `precision` setting does)."""
    device = pipeline.unet.device
    short = settings.model_copy(update={"steps": WARMUP_STEPS})

    def run(part: list[Request], run_settings: SamplerSettings) -> None:
        with torch.autocast(device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
            run_stock(pipeline, part, batch, run_settings, image_size)

    return measure(lambda: run(requests, settings), lambda: run(requests[:batch], short), device, **repeats)


@torch.no_grad()
def flops_per_batch(stack: Stack, adapter: LocalAdapter, batch: int, guided: bool, autocast_dtype: torch.dtype | None = None) -> dict:
    """FLOPs of one UNet call at this batch (both CFG branches in one call), of the adapter (once per image) and of the VAE
    decode, each counted by FlopCounterMode on a real call with the sampler's shapes and dtype."""
    unet, device = stack.unet, stack.unet.device
    dtype, size = unet.dtype, stack.image_size
    latent = size // stack.vae_scale_factor
    rows = 2 * batch if guided else batch
    conditions = torch.zeros(batch, adapter.adapter.config.in_channels, size, size, device=device, dtype=dtype)
    masks = torch.ones(batch, 1, size, size, device=device, dtype=dtype)
    latents = torch.zeros(rows, unet.config.in_channels, latent, latent, device=device, dtype=dtype)
    text = torch.zeros(rows, stack.tokenizer.model_max_length, unet.config.cross_attention_dim, device=device, dtype=dtype)
    timestep = torch.tensor(500, device=device)
    added = {"added_cond_kwargs": {"text_embeds": torch.zeros(rows, stack.text_encoder_2.config.projection_dim, device=device, dtype=dtype),
                                   "time_ids": torch.zeros(rows, 6, device=device, dtype=dtype)}} if stack.is_xl else {}
    with torch.autocast(device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
        adapter_flops = count_flops(adapter, conditions, masks)
        features = [torch.cat([f] * (rows // batch)) for f in adapter(conditions, masks)]
        unet_flops = count_flops(unet, latents, timestep, encoder_hidden_states=text, down_intrablock_additional_residuals=features,
                                 **added)
        vae_flops = count_flops(stack.vae.decode, latents[:batch])
    return {"unet_call": unet_flops, "unet_rows": rows, "adapter": adapter_flops, "vae_decode": vae_flops}


def model_flops(flops: dict, steps: int, images: int, batch: int) -> dict:
    """Model FLOPs of sampling `images` images in whole batches: per batch, `steps` UNet calls + the adapter once
    (`unet_adapter`, the MFU numerator), and the same plus one VAE decode (`with_vae`)."""
    calls = -(-images // batch)
    unet_adapter = calls * (steps * flops["unet_call"] + flops["adapter"])
    return {"unet_adapter": unet_adapter, "with_vae": unet_adapter + calls * flops["vae_decode"]}


def sampling_row(sampler: str, variant: str, precision: str, batch: int, images: int, timing: Timing, flops: dict | None = None,
                 peak: float | None = None) -> dict:
    """One sampling measurement: its median wall time (and every repeat), images/s at that median, MFU."""
    wall = timing.median
    row = {"sampler": sampler, "variant": variant, "precision": precision, "batch": batch, "images": images, **timing.summary(),
           "images_per_s": images / wall}
    if flops is not None and peak:
        row |= {"model_flops": flops["unet_adapter"], "mfu": mfu(flops["unet_adapter"], wall, peak),
                "mfu_with_vae": mfu(flops["with_vae"], wall, peak)}
    return row
