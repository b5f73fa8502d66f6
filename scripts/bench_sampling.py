"""Throughput of localctrl's sampler and trainer on the tiny stack (issue 4's benchmark; not a test).

    .venv/bin/python scripts/bench_sampling.py [--images 32] [--batch 16] [--steps 20]

Measures, in one run and on one machine: images/s of `localctrl.sampling.sample` at --batch vs diffusers'
StableDiffusionAdapterPipeline called once per image (what the reference code did) and at the same batch;
then training steps/s and peak RSS of `localctrl.train` on the tiny stack. Prints a table with ratios.
"""

import argparse
import dataclasses
import os
import resource
import tempfile
import time

import torch
from diffusers import StableDiffusionAdapterPipeline

from localctrl.adapters import build_adapter
from localctrl.architectures import TINY
from localctrl.local_adapter import LocalAdapter
from localctrl.sampling import Request, SamplerSettings, make_scheduler, sample
from localctrl.stacks import load_stack


def timed(function, repeats: int = 1) -> float:
    function()  # warm-up: first calls allocate and pick kernels
    start = time.perf_counter()
    for _ in range(repeats):
        function()
    return (time.perf_counter() - start) / repeats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=32)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--train-steps", type=int, default=20)
    args = parser.parse_args()
    torch.manual_seed(0)
    stack = load_stack("tiny")
    adapter = LocalAdapter(build_adapter(TINY, "full", in_channels=1, seed=0))
    conditions = (torch.rand(args.images, 1, 64, 64) > 0.8).float()
    masks = torch.zeros(args.images, 1, 64, 64)
    masks[:, :, 8:40, 16:56] = 1
    prompts = [f"a {c} circle and a blue square" for c in ("red", "green", "yellow", "purple")] * (args.images // 4 + 1)
    requests = [Request(prompts[k], k, conditions[k], masks[k]) for k in range(args.images)]
    settings = SamplerSettings(steps=args.steps, guidance=7.5, batch_size=args.batch)

    pipeline = StableDiffusionAdapterPipeline(vae=stack.vae, text_encoder=stack.text_encoder, tokenizer=stack.tokenizer, unet=stack.unet,
                                              adapter=adapter.adapter, scheduler=make_scheduler(stack, "ddim"), safety_checker=None,
                                              feature_extractor=None, requires_safety_checker=False)
    pipeline.set_progress_bar_config(disable=True)

    def stock(batch: int):
        for start in range(0, args.images, batch):
            pipeline(prompt=prompts[start : start + batch], image=conditions[start : start + batch], num_inference_steps=args.steps,
                     guidance_scale=7.5, height=64, width=64, output_type="np",
                     generator=[torch.Generator().manual_seed(k) for k in range(start, min(start + batch, args.images))])

    bf16 = dataclasses.replace(settings, precision="bf16")
    with torch.no_grad():
        ours = timed(lambda: sample(stack, requests, adapter, settings, progress=False))
        per_image = timed(lambda: stock(1))
        same_batch = timed(lambda: stock(args.batch))
        ours_bf16 = timed(lambda: sample(stack, requests, adapter, bf16, progress=False))
        with torch.autocast("cpu", dtype=torch.bfloat16):  # the stock pipeline given the same autocast
            per_image_bf16 = timed(lambda: stock(1))
            same_batch_bf16 = timed(lambda: stock(args.batch))

    from localctrl.train import train
    from localctrl.train_config import load_train_config

    with tempfile.TemporaryDirectory() as folder:
        os.environ.setdefault("MLFLOW_TRACKING_URI", f"sqlite:///{folder}/mlflow.db")
        config = load_train_config(overrides=["base=tiny", f"steps={args.train_steps}", f"validate_every={args.train_steps}",
                                              "data.validation_items=4", "validation_steps=2", f"out={folder}/train"])
        start = time.perf_counter()
        train(config)
        train_seconds = time.perf_counter() - start
    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    rate = lambda seconds: args.images / seconds  # noqa: E731
    print(f"\ntiny stack, {args.images} images, {args.steps} DDIM steps, CFG 7.5, {torch.get_num_threads()} threads")
    print(f"{'sampler':<58}{'images/s':>10}{'ours ÷ it':>12}")
    rows = [("fp32", ours, per_image, same_batch), ("bf16 autocast", ours_bf16, per_image_bf16, same_batch_bf16)]
    for precision, mine, one, batched in rows:
        print(f"{f'localctrl sample, batch {args.batch}, {precision}':<58}{rate(mine):>10.2f}{1:>12.2f}")
        print(f"{f'diffusers adapter pipeline, one image a call, {precision}':<58}{rate(one):>10.2f}{one / mine:>12.2f}")
        print(f"{f'diffusers adapter pipeline, batch {args.batch}, {precision}':<58}{rate(batched):>10.2f}{batched / mine:>12.2f}")
    print(f"{'localctrl bf16 ÷ diffusers fp32 one image a call':<58}{'':>10}{per_image / ours_bf16:>12.2f}")
    print(f"training: {args.train_steps / train_seconds:.2f} steps/s (batch 4 × accumulation 2, incl. set-up and one validation); "
          f"peak RSS {peak_rss_mb:.0f} MB")


if __name__ == "__main__":
    main()
