"""Every metric key the benchmark logs: its label, better direction, unit, precision and cap — in one place.

bench (scoring, aggregates), the bench summary and the reports all read it. Keys are `<metric>_<region>` (README,
"Metric keys"; region `in` inside the mask, `out` outside) and the set metrics `fid`, `kid`. A metric computed with a
random-weight network carries the network in its key (`fid_random-inception`, `clip_score_ViT-B-16-random`,
`lpips_out_lpips-random-alexnet`): it is shown under its own name with "(random, mechanics only)", never as the
real metric.
"""

from dataclasses import dataclass

PSNR_CAP_DB = 100.0  # what a perfect match (PSNR +inf) counts as in aggregates: see bench.metrics.bootstrap


@dataclass(frozen=True)
class MetricSpec:
    label: str
    higher_is_better: bool | None  # None: no better direction (shown without ↑/↓ and never bold)
    digits: int = 3
    headline: bool = True  # in the main table by default (the others are in all-metrics.csv)
    unit: str = ""
    cap: float | None = None  # per-sample values above it count as it in means (e.g. +inf PSNR of identical regions)


# Order = column order of the tables.
METRICS: dict[str, MetricSpec] = {
    "fid": MetricSpec("FID", False, 2),
    "kid": MetricSpec("KID", False, 4),
    "align_shapes": MetricSpec("align-shapes", True),
    "clip_score": MetricSpec("CLIP score", True, 2),
    "edge_f1_in": MetricSpec("edge F1 in", True),
    "edge_precision_in": MetricSpec("edge precision in", True, headline=False),
    "edge_recall_in": MetricSpec("edge recall in", True, headline=False),
    "edge_ssim_in": MetricSpec("edge SSIM in", True, headline=False),
    "edge_leakage_out": MetricSpec("edge leakage out", False),
    # ControlNet++'s protocol (bench.metrics.protocol): whole image, 0 px tolerance, a prompt's images pooled
    "edge_f1_all": MetricSpec("edge F1 (ControlNet++)", True),
    "edge_msssim_all": MetricSpec("edge MS-SSIM (ControlNet++)", True),
    # Edge density outside the mask depends on the scene as much as on the method (the text-only image has edges
    # there too): no better direction, so it is reported but never ranked.
    "edge_density_out": MetricSpec("edge density out", None),
    # Depth in 0-255 disparity units: ControlNet++'s RMSE (the prediction scaled by its maximum, no alignment), and
    # RMSE / AbsRel after the least-squares scale and shift in the mask (MiDaS's protocol: only depth's shape counts).
    "depth_rmse_in": MetricSpec("depth RMSE in", False, 2),
    "depth_rmse_aligned_in": MetricSpec("depth RMSE aligned in", False, 2, headline=False),
    "depth_absrel_in": MetricSpec("depth AbsRel in", False, headline=False),
    "depth_leakage_out": MetricSpec("depth leakage out", False),
    "depth_rmse_all": MetricSpec("depth RMSE (ControlNet++)", False, 2),  # whole image, condition min-max normalised
    "seg_miou_in": MetricSpec("seg mIoU in", True),
    "seg_acc_in": MetricSpec("seg acc in", True, headline=False),
    "seg_leakage_out": MetricSpec("seg leakage out", False),
    "seg_miou_all": MetricSpec("seg mIoU (ControlNet++)", True),  # whole images, areas summed over the dataset (mmseg)
    "ssim_out": MetricSpec("SSIM out", True),
    "psnr_out": MetricSpec("PSNR out", True, 2, unit="dB", cap=PSNR_CAP_DB),
    "lpips_out": MetricSpec("LPIPS out", False),
    # What the in-mask numbers stand on: the mask's share of the image, the share of the condition's structure it
    # holds, and how many samples' masks held none (their in-mask fidelity is NaN, left out of the means).
    "mask_area": MetricSpec("mask area", None, headline=False),
    "structure_in": MetricSpec("structure share in", None, headline=False),
    "unmeasured_in": MetricSpec("samples without structure in mask", None, 0, headline=False),
    "samples": MetricSpec("samples", None, 0, headline=False),  # a count (the report's mask-size bins)
}

CI_SUFFIXES = ("_ci_lo", "_ci_hi")


def base_of(key: str) -> tuple[str, str] | None:
    """`fid_random-inception` → ("fid", "random-inception"); `edge_f1_in` → ("edge_f1_in", ""); unknown → None."""
    if key.endswith(CI_SUFFIXES):
        return None
    for base in sorted(METRICS, key=len, reverse=True):  # longest first: `edge_ssim_in` is not `ssim…`
        if key == base:
            return base, ""
        if key.startswith(base + "_"):
            return base, key[len(base) + 1 :]
    return None


CONDITION_GROUPS = {"edge_": "edges", "depth_": "depth", "seg_": "segmentation"}


def group(key: str) -> str:
    """The family a metric's column belongs to: a condition's fidelity (edges, depth, segmentation), preservation, or
    image quality (FID, CLIP score, …); a table that measured several conditions groups its columns by it."""
    found = base_of(key)
    base = found[0] if found else key
    for prefix, name in CONDITION_GROUPS.items():
        if base.startswith(prefix):
            return name
    return "preservation" if base in ("ssim_out", "psnr_out", "lpips_out") else "image"


FIDELITY = {"depth": "depth_rmse_in", "seg": "seg_miou_in"}  # a condition's headline in-mask fidelity (else edge F1)


def fidelity_metric(condition: str | None) -> str:
    """The headline in-mask fidelity metric of a suite's condition: depth RMSE, seg mIoU, or edge F1 for edge maps."""
    return FIDELITY.get(condition or "", "edge_f1_in")


def is_fidelity_in(key: str) -> bool:
    """An in-mask control fidelity metric (edge F1, depth RMSE, seg mIoU, … inside the mask), random variants too."""
    found = base_of(key)
    return found is not None and found[0].startswith(tuple(CONDITION_GROUPS)) and found[0].endswith("_in")


def spec(key: str) -> MetricSpec:
    found = base_of(key)
    if found is None:
        return MetricSpec(key, None, headline=False)
    return METRICS[found[0]]


def cap(key: str) -> float | None:
    return spec(key).cap


def higher_is_better(key: str) -> bool | None:
    return spec(key).higher_is_better


def arrow(key: str) -> str:
    return {True: "↑", False: "↓", None: ""}[higher_is_better(key)]


def label(key: str, fid_features: str | None = None) -> str:
    """Column header: `fid` with shapes-net features is "FID-shapes"; a random network says so."""
    found = base_of(key)
    if found is None:
        return key
    base, suffix = found
    text = METRICS[base].label
    if base in ("fid", "kid") and fid_features == "shapes-net":
        text += "-shapes"  # the toy world's analogue of FID, never to be read as Inception FID
    if METRICS[base].unit:
        text += f" ({METRICS[base].unit})"
    if suffix:
        text += f" ({suffix})"  # the caption adds "random weights: mechanics only"
    return text


def metric_columns(keys: set[str] | list[str], headline_only: bool = True) -> list[str]:
    """Metric keys (no CI bounds, no plan counts) in table order, random-network variants beside their metric."""
    found = {key: base_of(key) for key in keys}
    ordered = []
    for base, metric in METRICS.items():
        if headline_only and not metric.headline:
            continue
        ordered += sorted(key for key, hit in found.items() if hit and hit[0] == base)
    return ordered
