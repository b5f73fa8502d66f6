"""Captions: which implementation and model computed each metric (from the runs' `metric.*` params), and how to read the table."""

import re

from bench.metrics import registry
from reports.runs import SuiteRun

FID_FEATURES = {
    "shapes-net": "FID-shapes / KID-shapes (shapes-net features; the toy world's analogue, not Inception FID)",
    "inception": "FID / KID (Inception features, clean-fid)",
    "clip-ViT-B-16/openai": "FID / KID on CLIP ViT-B/16 openai features",
    "random-inception": "FID / KID random-inception (random weights: mechanics only)",
    "rehearsal-inception": "FID / KID rehearsal-inception (the rehearsal's random stand-in of clean-fid's file: meaningless)",
}
REHEARSAL = ("Rehearsal on seeded random stand-ins of the pretrained weights (localctrl doctor --rehearse): every number "
             "is meaningless.")


def rehearsed(runs: list[SuiteRun]) -> bool:
    """Whether any run measured with the rehearsal's stand-in networks (their names say so in the metric.* params)."""
    return any("rehearsal" in value for run in runs for key, value in run.params.items() if key.startswith("metric."))


def weights_note(name: str) -> str:
    """What a network's name says about its weights: random (mechanics), a rehearsal stand-in, or nothing (real)."""
    if "random" in name:
        return " (random weights: mechanics only)"
    return " (rehearsal stand-in: meaningless)" if "rehearsal" in name else ""
DETECTORS = {"canny": "kornia Canny 0.1/0.2", "canny-opencv": "OpenCV Canny 100/200"}


def model_id(name: str) -> str:
    """`ViT-B-16/openai` → `ViT-B/16 openai`, `lpips[alexnet]` → `LPIPS AlexNet`."""
    if name.startswith("lpips["):
        return "LPIPS " + name.removeprefix("lpips[").removesuffix("]").replace("alexnet", "AlexNet")
    model, _, weights = name.partition("/")
    model = re.sub(r"^ViT-([BLH])-(\d+)", r"ViT-\1/\2", model)
    return f"{model} {weights}".strip()


DEPTH_READERS = {"shapes-depth": "the shapes world's exact depth reader (ground-plane geometry)",
                 "dpt-large": "DPT-large (Intel/dpt-large, transformers)", "dpt-hybrid": "DPT hybrid MiDaS (Intel/dpt-hybrid-midas)",
                 "random-dpt": "a seeded random DPT"}
SEG_READERS = {"upernet-ade20k": "UperNet ConvNeXt-S ADE20K (openmmlab/upernet-convnext-small, transformers)",
               "random-upernet": "a seeded random UperNet",
               "mask2former-ade20k": "Mask2Former Swin-L ADE20K (facebook/mask2former-swin-large-ade-semantic, transformers, "
                                     "shorter side 640 as mmseg tests it)",
               "random-mask2former": "a seeded random Mask2Former"}


def implementations(params: dict[str, str], columns: list[str]) -> list[str]:
    """One phrase per metric family shown, naming its implementation and model id."""
    shown = set(columns)
    phrases = []
    features = params.get("metric.fid.features", "off")
    if features != "off" and any(c.startswith(("fid", "kid")) for c in shown):
        phrases.append(FID_FEATURES.get(features, f"FID / KID ({features} features)"))
    if any(c.startswith("align_shapes") for c in shown):
        phrases.append("align-shapes (shapes-net attribute predictions against the prompt; the toy analogue of CLIP score)")
    clip = params.get("metric.clip", "off")
    if clip != "off" and any(c.startswith("clip_score") for c in shown):
        phrases.append(f"CLIP score: CLIP {model_id(clip)}, open_clip, 100·max(cos, 0){weights_note(clip)}")
    if any(c.startswith("edge_") for c in shown):
        detector = params.get("suite.metrics.edges.detector", "canny")
        tolerance = params.get("suite.metrics.edges.tolerance", "?")
        phrases.append(f"edges: {DETECTORS.get(detector, detector)} on the generated image against the condition, "
                       f"{tolerance} px tolerance")
    if any(c.startswith(("edge_f1_all", "edge_msssim_all")) for c in shown):
        phrases.append("ControlNet++'s protocol: edge F1 over the whole image at 0 px with a prompt's images pooled "
                       "(torchmetrics BinaryF1Score), edge MS-SSIM (its tables' \"SSIM\"; n/a below 161 px)")
    if any(c.startswith("depth_rmse_all") for c in shown):
        phrases.append("ControlNet++'s depth RMSE: over the whole image, the prediction scaled by its maximum against the "
                       "condition min-max normalised to 0-255")
    if any(c.startswith("seg_miou_all") for c in shown):
        phrases.append("ControlNet++'s ADE20K mIoU: whole images, each class's intersection and union summed over every "
                       "image of the method before dividing (mmseg's IoUMetric), unlabelled pixels left out; its interval "
                       "resamples prompts")
    if params.get("suite.metrics.fid.groups") == "seed-mean" and any(c.startswith("fid") for c in shown):
        phrases.append("FID: each seed group's FID, averaged over the groups (ControlNet++), no interval")
    if any(c.startswith("depth_") for c in shown):
        detector = params.get("metric.detector.depth", params.get("suite.metrics.depth.detector", "shapes-depth"))
        source = params.get("metric.condition_model.depth")
        phrases.append(f"depth: {DEPTH_READERS.get(detector.removeprefix('rehearsal-'), detector)}{weights_note(detector)} on the "
                       "generated image against the condition" + (f" ({source} on the real image)" if source else "") +
                       ", 0-255 disparity; RMSE with the prediction scaled by its maximum (ControlNet++), RMSE / AbsRel aligned "
                       "by least-squares scale and shift in the mask; leakage: R² of the aligned prediction outside")
    if any(c.startswith("seg_") for c in shown):
        detector = params.get("metric.detector.labels", params.get("suite.metrics.seg.detector", "shapes-seg"))
        if detector == "shapes-seg":
            phrases.append("segmentation: the shapes world's exact segmenter against ground-truth labels")
        else:
            phrases.append(f"segmentation: {SEG_READERS.get(detector.removeprefix('rehearsal-'), detector)}{weights_note(detector)} "
                           "on the generated image against the condition's labels; mIoU over the classes present, per sample")
        phrases.append("seg leakage: the share of the condition's labelled pixels outside the mask that the image reproduces")
    if any(c.startswith(("ssim_out", "psnr_out", "lpips_out")) for c in shown):
        reference = params.get("suite.metrics.preservation.reference_method", "text-only")
        band = params.get("suite.metrics.preservation.band", "0")
        lpips = params.get("metric.lpips", "off")
        networks = f"; {model_id(lpips)}{weights_note(lpips)}" if lpips != "off" else ""
        phrases.append(f"preservation: outside the mask (band {band} px left out) against the {reference} image with the same prompt "
                       f"and seed{networks}")
    return phrases


def unmeasured_sentence(runs: list[SuiteRun], columns: list[str]) -> str:
    """How many samples in-mask fidelity leaves out (their masks hold none of the condition's structure), per run."""
    if not any(registry.is_fidelity_in(column) for column in columns):
        return ""
    counts = {run.short_id: [m.metrics["unmeasured_in"] for m in run.methods if "unmeasured_in" in m.metrics] for run in runs}
    counts = {run: max(found) for run, found in counts.items() if found}  # the same items for every method of a run
    if not counts:
        return ""
    said = ", ".join(f"{int(n)}" + (f" in run {run}" if len(counts) > 1 else "") for run, n in counts.items())
    return (f"In-mask fidelity leaves out the samples whose mask holds none of the condition's structure ({said}); "
            "intervals resample prompts.")


def table_caption(runs: list[SuiteRun], columns: list[str], ci: str, reference: str | None) -> str:
    """The main table's caption: what was measured, with what, and how to read the marks."""
    first = runs[0]
    items = first.metrics.get("plan_items")
    seeds = first.params.get("suite.seeds", "?")
    where = ", ".join(f"{r.suite} run {r.short_id}" for r in runs)
    sentences = [f"{where}" + (f": {int(items)} items, seeds {seeds}." if items is not None else ".")]
    if rehearsed(runs):
        sentences.insert(0, REHEARSAL)
    phrases = []
    for run in runs:  # compared runs usually share their implementations; list each distinct one once
        phrases += [p for p in implementations(run.params, columns) if p not in phrases]
    sentences.append("Metrics: " + "; ".join(phrases) + "." if phrases else "")
    sentences.append(unmeasured_sentence(runs, columns))
    interval = "mean ± half the width of the 95% bootstrap CI (exact bounds in the CSV)" if ci == "pm" else "mean [95% bootstrap CI]"
    sentences.append(f"Cells: {interval}; ↑/↓: higher/lower is better; best in bold, second underlined per column; "
                     "n/a: not measured for that method.")
    if "edge_density_out" in columns:
        sentences.append("Edge density out has no better direction and is not ranked.")
    if reference:
        sentences.append(f"†: the paired-bootstrap 95% CI of the difference to {reference} (same items and seeds) excludes 0 "
                         "(per cell, no multiple-comparison correction; FID/KID are set metrics and are not paired).")
    return " ".join(s for s in sentences if s)
