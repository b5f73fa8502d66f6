"""`world check`: how good the shipped shapes models are, measured on held-out scenes.

Reports VAE reconstruction PSNR and shapes-net all-correct accuracy on reconstructions and on real
images; align-shapes of real images and of shapes-base samples for held-out captions (one- and
two-object prompts apart); FID-shapes of samples vs real, beside real-vs-real (the floor); and how well the
world's readers (the depth reader, the segmenter, kornia's Canny as the edge metric uses it) read real images and
VAE reconstructions back against the exact ground truth: the ceiling of in-mask fidelity for an image the base
can represent.
"""


import numpy as np
import torch
from cleanfid.fid import frechet_distance
from pydantic import ConfigDict

from localctrl.config import Section
from localctrl.data.conditions import canny
from localctrl.models.stacks import Stack
from localctrl.shapes.depth_reader import read_depth
from localctrl.shapes.net import ShapesNet, align_shapes, reconstruct, scene_correct
from localctrl.shapes.render import render, render_images
from localctrl.shapes.scene import Scene, split_scenes
from localctrl.shapes.segmenter import segment
from localctrl.validation import edge_scores


class CheckSettings(Section):
    model_config = ConfigDict(frozen=True)
    samples: int = 256  # generated images (and real images per split)
    world_seed: int = 0  # the world shapes-base trained on: its val/test splits are held out
    sample_seed: int = 0  # image k uses torch.Generator().manual_seed(sample_seed + k)
    steps: int = 30
    guidance: float = 4.0
    batch_size: int = 64


def held_out_scenes(settings: CheckSettings, split: str) -> list[Scene]:
    """The first `samples` scenes of a held-out split, in index order."""
    return [scene for _, scene in split_scenes(settings.world_seed, split, settings.samples)]


@torch.no_grad()
def judge(net: ShapesNet, images: torch.Tensor, batch_size: int = 256):
    """shapes-net outputs for uint8 images (N, 3, H, W), batched, concatenated."""
    outputs = [net(chunk.float() / 255) for chunk in images.split(batch_size)]
    return type(outputs[0])(*(torch.cat(parts) for parts in zip(*outputs)))


@torch.no_grad()
def generate(stack: Stack, captions: list[str], settings: CheckSettings) -> torch.Tensor:
    """Stock diffusers sampling (DDIM, CFG), one seeded generator per image; uint8 (N, 3, H, W) as saved PNGs."""
    from diffusers import DDIMScheduler

    pipeline = stack.pipeline()
    pipeline.scheduler = DDIMScheduler.from_config(stack.scheduler.config)
    pipeline.set_progress_bar_config(disable=True)
    images = []
    for start in range(0, len(captions), settings.batch_size):
        prompts = captions[start : start + settings.batch_size]
        generators = [torch.Generator().manual_seed(settings.sample_seed + start + k) for k in range(len(prompts))]
        result = pipeline(prompt=prompts, generator=generators, num_inference_steps=settings.steps, guidance_scale=settings.guidance,
                          height=stack.image_size, width=stack.image_size, output_type="np").images
        images.append(torch.from_numpy((result * 255).round().astype(np.uint8)).permute(0, 3, 1, 2))
    return torch.cat(images)


def fid(features_a: torch.Tensor, features_b: torch.Tensor) -> float:
    """Fréchet distance between two feature sets (clean-fid's implementation)."""
    a, b = features_a.double().numpy(), features_b.double().numpy()
    return float(frechet_distance(a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False)))


def psnr(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-image PSNR (dB) of uint8 images."""
    mse = (a.float() - b.float()).pow(2).flatten(1).mean(1)
    return 10 * torch.log10(255**2 / mse.clamp(min=1e-10))


def readers(images: torch.Tensor, scenes: list[Scene]) -> dict:
    """The world's readers on uint8 images (N, 3, H, W) of `scenes` against their exact ground truth."""
    truth = [render(scene, images.shape[-1]) for scene in scenes]
    pictures = images.permute(0, 2, 3, 1).numpy()
    depth = np.stack([read_depth(picture) for picture in pictures]).astype(np.float64)
    true_depth = np.stack([t.depth for t in truth]).astype(np.float64)
    labels, true_labels = np.stack([segment(picture) for picture in pictures]), np.stack([t.semantic for t in truth])
    edges = torch.from_numpy(np.stack([t.edges for t in truth]) > 0).float()[:, None]
    f1 = edge_scores(canny(images.float() / 255), edges, torch.ones_like(edges), tolerance=1).f1
    return {"depth_rmse": float(np.sqrt(((depth - true_depth) ** 2).mean(axis=(1, 2))).mean()),
            "depth_exact_pixels": float((depth == true_depth).mean()),
            "seg_pixel_accuracy": float((labels == true_labels).mean()), "canny_edge_f1": float(f1.mean())}


def world_check(stack: Stack, net: ShapesNet, settings: CheckSettings = CheckSettings()) -> tuple[dict, torch.Tensor, list[str]]:
    """(measurements, the generated uint8 images, their prompts)."""
    test, val = held_out_scenes(settings, "test"), held_out_scenes(settings, "val")
    real, real_other = render_images(test, 64), render_images(val, 64)
    reconstructions = reconstruct(stack.vae, real)
    judged_real, judged_recon = judge(net, real), judge(net, reconstructions)

    captions = [scene.caption for scene in test]
    samples = generate(stack, captions, settings)
    judged_samples = judge(net, samples)
    one = torch.tensor([len(scene.objects) == 1 for scene in test])
    align_real, align_samples = align_shapes(judged_real, test), align_shapes(judged_samples, test)
    return {
        "settings": settings.model_dump(),
        "vae_psnr_db": float(psnr(reconstructions, real).mean()),
        "net_accuracy_reconstructions": float(scene_correct(judged_recon, test).float().mean()),
        "net_accuracy_real": float(scene_correct(judged_real, test).float().mean()),
        "align_real": {"all": float(align_real.mean()), "one_object": float(align_real[one].mean()), "two_object": float(align_real[~one].mean())},
        "align_samples": {"all": float(align_samples.mean()), "one_object": float(align_samples[one].mean()),
                          "two_object": float(align_samples[~one].mean())},
        "fid_shapes_samples_vs_real": fid(judged_samples.features, judged_real.features),
        "fid_shapes_real_vs_real": fid(judged_real.features, judge(net, real_other).features),
        "readers_real": readers(real, test),
        "readers_reconstructions": readers(reconstructions, test),
        "counts": {"images": len(test), "one_object": int(one.sum()), "two_object": int((~one).sum())},
    }, samples, captions
