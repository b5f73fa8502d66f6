"""The model card of shapes-base: how it was trained and what `world check` measured."""

import json
from pathlib import Path

CARD = "README.md"


def write_model_card(folder: Path, check: dict, grid: str | None = None) -> Path:
    """Write README.md into the pipeline folder from its training.json and a `world check` result."""
    training = json.loads((folder / "training.json").read_text())
    config, timings = training["config"], training["timings_s"]
    align = check["align_samples"]
    lines = [
        "# shapes-base",
        "",
        "A small latent-diffusion text-to-image model of localctrl's **shapes world** (64×64 images of 1–2 flat",
        "shapes on plain or gradient backgrounds). It is a toy: a fast, offline proxy for method development,",
        "not a general image model. Load it with `StableDiffusionPipeline.from_pretrained(<this folder>)` or",
        "`localctrl.models.stacks.load_stack(\"shapes-base\")`.",
        "",
        "## Training",
        "",
        f"- Command: `localctrl world pretrain --seed {config['seed']} --vae-steps {config['vae_steps']} "
        f"--unet-steps {config['unet_steps']} --train-items {config['train_items']}`",
        f"- Device: {training['device']} ({training['threads']} threads), torch {training['torch']}; "
        f"VAE {timings.get('vae_s', 0) / 60:.1f} min, UNet + text encoder {timings.get('unet_s', 0) / 60:.1f} min, "
        f"total {timings.get('total_s', 0) / 60:.1f} min.",
        f"- Data: the first {config['train_items']} train-split scenes of world seed {config['world_seed']} (held-out "
        "(colour, shape, background) combinations never seen).",
        "- VAE: AutoencoderKL (16, 32, 64), 4 latent channels, 4× down, no attention; L1 + L2 + 1e-6·KL, log-variance "
        f"bias −6 at init, batch {config['vae_batch']}, lr {config['vae_lr']} cosine.",
        "- Text encoder: CLIP, 3 layers, hidden 128, word-level tokenizer (one token per world word, 24 max).",
        f"- UNet: (32, 64, 96), cross-attention at every level; ε-prediction, min-SNR-{config['min_snr_gamma']:g}, "
        f"AdamW lr {config['unet_lr']} (warm-up {config['warmup_steps']}, cosine), batch {config['unet_batch']}, "
        f"EMA {config['ema_decay']}, caption dropout {config['caption_dropout']}.",
        f"- MLflow run: `{training['mlflow_run_id']}` (experiment `shapes-pretrain`).",
        "",
        f"## world check ({check['counts']['images']} held-out test scenes, DDIM {check['settings']['steps']} steps, "
        f"CFG {check['settings']['guidance']:g})",
        "",
        "| measurement | value |",
        "|---|---|",
        f"| VAE reconstruction PSNR | {check['vae_psnr_db']:.2f} dB |",
        f"| shapes-net all-correct on VAE reconstructions | {check['net_accuracy_reconstructions']:.3f} |",
        f"| shapes-net all-correct on real images | {check['net_accuracy_real']:.3f} |",
        f"| align-shapes of samples: all / one-object / two-object | {align['all']:.3f} / {align['one_object']:.3f} / {align['two_object']:.3f} |",
        f"| align-shapes of real images (ceiling) | {check['align_real']['all']:.3f} |",
        f"| FID-shapes, samples vs real | {check['fid_shapes_samples_vs_real']:.2f} |",
        f"| FID-shapes, real vs real (floor) | {check['fid_shapes_real_vs_real']:.2f} |",
        "",
        "FID-shapes uses shapes-net's penultimate features, align-shapes its (colour, shape) predictions: they are",
        "this world's stand-ins for Inception FID and CLIP score, not those metrics.",
    ]
    if "readers_real" in check:
        lines += ["", "## The world's readers on real images and on VAE reconstructions", "",
                  "What the fidelity metrics read generated images with, against the exact ground truth: the depth reader "
                  "(each card's disparity from the row it stands on, 0-255), the segmenter, and kornia's Canny (0.1/0.2, 1 px tolerance) "
                  "against the exact edges. On reconstructions they give the ceiling of in-mask fidelity for images this VAE "
                  "can represent. (The depth ground truth was redefined for localctrl's depth condition; the images did not "
                  "change, so this model was not retrained.)", "",
                  "| images | depth RMSE | depth exact pixels | seg pixel accuracy | canny edge F1 |", "|---|---|---|---|---|"]
        for source, name in (("real", "real"), ("reconstructions", "VAE reconstructions")):
            read = check[f"readers_{source}"]
            lines.append(f"| {name} | {read['depth_rmse']:.2f} | {read['depth_exact_pixels']:.3f} | "
                         f"{read['seg_pixel_accuracy']:.3f} | {read['canny_edge_f1']:.3f} |")
    if grid:
        lines += ["", "## Samples (held-out prompts, seeds 0…)", "", f"![samples]({grid})"]
    path = folder / CARD
    path.write_text("\n".join(lines) + "\n")
    return path
