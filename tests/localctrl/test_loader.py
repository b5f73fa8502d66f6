"""The training input pipeline: worker count and resumption leave batches unchanged; the latent cache trains the same
(up to float rounding), is keyed by the weights and the data, and spares the VAE and the image decoding."""

import json
import pickle

import numpy as np
import pytest
import torch
from diffusers import DDPMScheduler
from safetensors.torch import load_file
from typer.testing import CliRunner

from localctrl.common.checkpoints import step_generator
from localctrl.config import load_train_config
from localctrl.data.examples import ExampleSet
from localctrl.data.latent_cache import META, latent_cache
from localctrl.data.loader import training_loader
from localctrl.data.manifest import MANIFEST
from localctrl.local_adapter import LocalAdapter
from localctrl.models.adapters import build_adapter, default_kind
from localctrl.models.stacks import load_stack
from localctrl.shapes.dataset import write_shapes_dataset
from localctrl.shapes.scene import WorldConfig
from localctrl.text_conditioning import TextEncoderCache
from localctrl.train_step import control_loss, drop_captions, freeze

SMALL = ["base=tiny", "optim.batch_size=2", "optim.grad_accum=2", "caption_dropout=0.5", "masks.kinds={box: 0.5, object: 0.5}"]


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    """A manifest dataset at the tiny stack's size: shapes-world items with their exact edges as a condition."""
    return write_shapes_dataset(tmp_path_factory.mktemp("data") / "world", 24, seed=0, config=WorldConfig(size=64), workers=1)


def config(*extra):
    return load_train_config(overrides=[*SMALL, *extra])


def batches(examples, settings, start=0, cache=None):
    return [[(b.batch, b.posterior) for b in step] for step in training_loader(examples, settings, start, [0, 1], cache)]


def same(a, b) -> bool:
    fields = ("images", "conditions", "masks")
    return a.captions == b.captions and all(torch.equal(getattr(a, f), getattr(b, f)) for f in fields)


@pytest.mark.parametrize("source", ["manifest", "shapes"])
def test_batches_are_the_same_for_any_worker_count_and_for_a_resumed_start(manifest, source):
    settings = config("steps=5", "data.shapes_items=16", *([f"data.source={manifest}"] if source == "manifest" else []))
    examples = ExampleSet(settings.data, settings.condition, 64, "train", settings.data.train_items())
    by_workers = {w: batches(examples, settings.model_copy(update={"data": settings.data.model_copy(update={"workers": w})}))
                  for w in (0, 1, 2)}
    assert len(by_workers[0]) == 5 and all(len(step) == 2 for step in by_workers[0])
    for workers in (1, 2):
        assert all(same(a, b) for step_a, step_b in zip(by_workers[0], by_workers[workers])
                   for (a, _), (b, _) in zip(step_a, step_b)), workers
    resumed = batches(examples, settings, start=3)
    assert len(resumed) == 2 and all(same(a, b) for step_a, step_b in zip(by_workers[0][3:], resumed)
                                     for (a, _), (b, _) in zip(step_a, step_b))
    assert not same(by_workers[0][0][0][0], by_workers[0][0][1][0])  # the micro-batches differ from each other


@pytest.fixture(scope="module", params=["tiny", "tiny-xl"])
def tiny(request):
    """The tiny SD 1.x stack, and its SDXL twin (two text encoders, a pooled embedding), frozen."""
    stack = load_stack(request.param, seed=0)
    freeze(stack, torch.float32, torch.device("cpu"))
    return stack


def micro_loss(stack, item, encode_text, settings, step=0, g=0):
    """The loss of one micro-batch as localctrl.train computes it, with a fixed adapter."""
    adapter = LocalAdapter(build_adapter(stack, default_kind(stack), 1, seed=0))
    scheduler = DDPMScheduler.from_config(stack.scheduler.config)
    generator = step_generator(settings.seed, f"noise-{g}", step)
    latents, noise, timesteps, noisy = item.noisy_latents(stack, scheduler, settings.timesteps, generator, torch.device("cpu"),
                                                          torch.float32)
    text = encode_text(drop_captions(item.batch.captions, settings.caption_dropout, generator))
    return control_loss(stack, adapter, scheduler, scheduler.alphas_cumprod, latents, noise, timesteps, noisy, text,
                        item.batch.conditions, item.batch.masks, True, "area", settings.z0).loss


def test_a_micro_batch_from_the_latent_cache_has_the_loss_of_one_encoded_on_the_fly_sd1_and_sdxl(manifest, tiny, tmp_path, monkeypatch):
    settings = config("steps=1", f"data.source={manifest}", "condition=edges", "optim.batch_size=4")
    examples = ExampleSet(settings.data, settings.condition, 64, "train", None)
    cache = latent_cache(tiny, examples, tmp_path, torch.device("cpu"), torch.float32, say=lambda line: None)
    fly = next(iter(training_loader(examples, settings, 0, [0], None)))[0]
    cached = next(iter(training_loader(examples, settings, 0, [0], cache)))[0]
    assert cached.batch.images is None and fly.batch.images is not None  # a manifest condition: no image decoded
    expected = micro_loss(tiny, fly, TextEncoderCache(tiny, torch.device("cpu"), torch.float32, alone=True), settings)
    with monkeypatch.context() as patched:  # from the cache, neither the VAE nor a text encoder runs
        patched.setattr(tiny.vae, "encode", lambda *a: pytest.fail("the VAE encoded"))
        for encoder in filter(None, (tiny.text_encoder, tiny.text_encoder_2)):
            patched.setattr(encoder, "forward", lambda *a, **k: pytest.fail("a text encoder ran"))
        got = micro_loss(tiny, cached, TextEncoderCache(tiny, torch.device("cpu"), torch.float32, alone=True,
                                                        stored=cache.text), settings)
    shipped = pickle.dumps(cache)  # how a spawned worker gets it: its folder, reopened there, not its arrays
    assert len(shipped) < 1000 and torch.equal(pickle.loads(shipped).posterior([2, 1])[1], cache.posterior([2, 1])[1])
    assert "" in cache.text and len(cache.text) == len({examples.caption(k) for k in range(len(examples))} | {""})
    assert torch.allclose(got, expected, rtol=1e-5, atol=1e-7) and expected > 0


def test_a_changed_vae_or_manifest_gives_another_cache_folder_which_is_built_anew(manifest, tmp_path):
    stack = load_stack("tiny", seed=0)
    freeze(stack, torch.float32, torch.device("cpu"))
    settings = config(f"data.source={manifest}", "condition=edges")
    examples = ExampleSet(settings.data, settings.condition, 64, "train", None)
    said = []
    build = lambda examples: latent_cache(stack, examples, tmp_path, torch.device("cpu"), torch.float32, say=said.append)  # noqa: E731
    first = build(examples)
    assert build(examples).folder == first.folder and len(said) == 1  # unchanged: reused, nothing said
    with torch.no_grad():
        stack.vae.encoder.conv_in.weight[0, 0, 0, 0] += 0.5
    perturbed = build(examples)
    assert perturbed.folder != first.folder and (perturbed.folder / META).is_file()
    assert said[-1].endswith("(changed: vae)") and not np.array_equal(first.mean, perturbed.mean)

    copy = tmp_path / "copy"  # the same items, one caption edited
    rows = [json.loads(line) for line in (manifest / MANIFEST).read_text().splitlines()]
    edited_row = next(row for row in rows if row["split"] == "train")
    edited_row["caption"] += " (edited)"
    copy.mkdir()
    (copy / MANIFEST).write_text("".join(json.dumps(row) + "\n" for row in rows))
    for name in ("images", "edges", "seg", "depth", "instance", "masks"):
        (copy / name).symlink_to(manifest / name)
    edited = build(ExampleSet(settings.data.model_copy(update={"source": str(copy)}), "edges", 64, "train", None))
    assert edited.folder not in (first.folder, perturbed.folder) and said[-1].endswith("(changed: data)")
    assert len(said) == 3 and edited_row["caption"] in edited.text and edited_row["caption"] not in first.text


def test_train_with_the_latent_cache_and_two_workers_gives_the_weights_of_no_workers(manifest, tmp_path):
    from cli import app

    settings = [*SMALL, f"data.source={manifest}", "condition=edges", "steps=3", "validate_every=3", "checkpoint_every=3",
                "data.validation_items=2", "validation_steps=2", "optim.lr=1e-3", f"data.cache_dir={tmp_path / 'cache'}"]
    weights = {}
    for name, extra in {"plain": [], "cached": ["data.cache_latents=true"],
                        "cached-2-workers": ["data.cache_latents=true", "data.workers=2"]}.items():
        outcome = CliRunner().invoke(app, ["train", *(f"--set={o}" for o in [*settings, *extra, f"out={tmp_path / name}"])])
        assert outcome.exit_code == 0, outcome.output
        weights[name] = load_file(tmp_path / name / "adapter-last" / "diffusion_pytorch_model.safetensors")
    assert len(list((tmp_path / "cache").glob(f"*/{META}"))) == 1  # built once, reused by the second cached run
    plain, cached, workers = weights["plain"], weights["cached"], weights["cached-2-workers"]
    assert all(torch.equal(cached[key], workers[key]) for key in cached)  # workers never change results
    # The cache: float rounding (the VAE's last bits change with its batch size), far below what the 3 steps changed (in
    # norm: AdamW turns a near-zero gradient's rounding into a full-size step of either sign, so single weights may differ).
    initial = build_adapter(load_stack("tiny", seed=0), "full", 1, seed=0).state_dict()
    moved = torch.cat([(plain[key] - initial[key]).flatten() for key in plain]).norm()
    apart = torch.cat([(plain[key] - cached[key]).flatten() for key in plain]).norm()
    assert moved > 0.1 and apart < 1e-3 * moved, (moved, apart)
