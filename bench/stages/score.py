"""Scoring: per-sample metric rows for one method (→ parquet) and its aggregates with 95% CIs (→ JSON), cached.

Per-sample metric keys (bench.metrics.registry names them all): edge_{precision,recall,f1,ssim}_in,
edge_density_out, edge_leakage_out, depth_{rmse,rmse_aligned,absrel}_in, depth_leakage_out, seg_{miou,acc}_in,
seg_leakage_out, {ssim,psnr,lpips}_out (against the text-only image with the same prompt and seed), align_shapes,
clip_score; each aggregate carries `_ci_lo` / `_ci_hi`. Set metrics: fid
(with a bootstrap CI) and kid against the suite's real reference images; for `protocol: controlnetpp`, the
dataset-level seg mIoU (seg_miou_all). The score key (bench.keys) covers the
images' task keys, the evaluation masks and ground truth, and the metric settings, so a rerun with nothing changed
reads the files back.
"""

import json
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from scipy.linalg import LinAlgWarning

from bench.keys import score_key
from bench.metrics import registry
from bench.metrics.bootstrap import mean_ci
from bench.metrics.detectors import DETECTORS
from bench.metrics.fidelity import (
    depth_errors,
    depth_leakage,
    depth_rmse,
    edge_fidelity,
    edge_leakage,
    seg_leakage,
    seg_scores,
)
from bench.metrics.frechet import fid_bootstrap_ci, fid_from_features, kid_from_features
from bench.metrics.masked import exclude_band, masked_lpips, masked_psnr, masked_ssim
from bench.metrics.networks import Scorers
from bench.metrics.protocol import dataset_class_areas, dataset_miou_ci, edge_ms_ssim, pooled_edge_f1, whole_image_depth_rmse
from bench.stages.detect import Detections
from bench.stages.items import CHUNK, BenchItems
from bench.stages.plan import Task
from bench.suite import Suite
from localctrl.common.files import atomic, read_rgb, recorded_problem, write_text
from localctrl.data.conditions import CHANNELS, IGNORE_LABEL
from localctrl.shapes.net import align_shapes

BATCH = 64


def per_sample(suite: Suite, items: BenchItems, tasks: list[Task], reference: list[Task] | None,
               detections: dict[str, Detections], scorers: Scorers) -> pd.DataFrame:
    spec, columns = suite.metrics, []
    for start in range(0, len(tasks), BATCH):
        part = tasks[start : start + BATCH]
        item = items.load_for([t.item for t in part])  # this batch's items only
        images = torch.stack([read_rgb(t.path) for t in part])
        inside = item.masks
        outside = 1 - inside
        # Nothing to control where the mask holds none of the condition's structure: in-mask fidelity is undefined
        # (NaN, left out of means and counted in `unmeasured_in`), not "perfect" as empty sets would score.
        held = (item.structure * inside).sum(dim=(1, 2, 3))
        values: dict[str, torch.Tensor | np.ndarray] = {
            "mask_area": inside.mean(dim=(1, 2, 3)),
            "structure_in": held / item.structure.sum(dim=(1, 2, 3)).clamp(min=1)}
        if "edges" in detections:
            detected = detections["edges"].load(part)
            reference_edges = item.reference_edges
            fidelity = edge_fidelity(detected, reference_edges, inside, spec.edges.tolerance)
            values |= {f"edge_{name}_in": fidelity[name] for name in ("precision", "recall", "f1")}
            values["edge_ssim_in"] = fidelity["edge_ssim"]
            values["edge_density_out"] = edge_fidelity(detected, reference_edges, outside, spec.edges.tolerance)["density"]
            values["edge_leakage_out"] = edge_leakage(detected, reference_edges, outside, spec.edges.tolerance)
        if "depth" in detections:  # as stored: in 0-255, a relative detector's scaled by its maximum (ControlNet++'s RMSE)
            predicted, target, key = detections["depth"].load(part), item.depth, scorers.detector_key
            aligned = depth_errors(predicted, target, inside)  # scale-and-shift aligned in the mask, as MiDaS evaluates
            values |= {key("depth_rmse_in", "depth"): depth_rmse(predicted, target, inside),
                       key("depth_rmse_aligned_in", "depth"): aligned["rmse"], key("depth_absrel_in", "depth"): aligned["absrel"],
                       key("depth_leakage_out", "depth"): depth_leakage(predicted, target, outside)}
            if suite.protocol == "controlnetpp":
                values[key("depth_rmse_all", "depth")] = whole_image_depth_rmse(predicted, target)
        if "labels" in detections:
            labels, detector, key = detections["labels"].load(part).long(), DETECTORS[scorers.detectors["labels"]], scorers.detector_key
            seg = seg_scores(labels, item.semantic[:, None], inside, num_classes=detector.classes, ignore_index=IGNORE_LABEL)
            background = detector.background if detector.background is not None else -1  # -1: every pixel is labelled
            values |= {key("seg_miou_in", "labels"): seg["miou"], key("seg_acc_in", "labels"): seg["pixel_acc"],
                       key("seg_leakage_out", "labels"): seg_leakage(labels, item.semantic[:, None], outside, background)}
        if spec.preservation and reference is not None:
            others = torch.stack([read_rgb(reference[start + k].path) for k in range(len(part))]).float() / 255
            region = exclude_band(outside, inside, spec.preservation.band)
            mine = images.float() / 255
            values |= {"ssim_out": masked_ssim(mine, others, region), "psnr_out": masked_psnr(mine, others, region)}
            if scorers.lpips_name is not None:
                values[scorers.key("lpips_out", scorers.lpips_name)] = masked_lpips(mine, others, region, scorers.lpips)
        if spec.align_shapes:
            with torch.no_grad():
                values["align_shapes"] = align_shapes(scorers.shapes_net(images.float() / 255), item.prompts)
        if scorers.clip_name is not None:
            values[scorers.key("clip_score", scorers.clip_name)] = scorers.clip.scores(images, item.prompts)
        for name in values:
            if registry.is_fidelity_in(name):
                values[name] = torch.where(held > 0, torch.as_tensor(values[name]).double(), float("nan"))
        frame = pd.DataFrame({name: np.asarray(torch.as_tensor(v).double()) for name, v in values.items()})
        frame.insert(0, "item_id", [items.ids[r] for r in item.rows])
        frame.insert(1, "seed", [t.seed for t in part])
        frame.insert(2, "key", [t.key for t in part])
        columns.append(frame)
    return pd.concat(columns, ignore_index=True)


def controlnetpp_edges(items: BenchItems, tasks: list[Task], detections: dict[str, Detections]) -> pd.DataFrame:
    """ControlNet++'s edge F1 and MS-SSIM (bench.metrics.protocol) per task row: a prompt's images are scored together
    against its condition, and every row of the prompt carries the prompt's F1."""
    by_item: dict[int, list[int]] = {}
    for row, task in enumerate(tasks):
        by_item.setdefault(task.item, []).append(row)
    f1, ms_ssim = np.full(len(tasks), np.nan), np.full(len(tasks), np.nan)
    for item, rows in by_item.items():
        detected = detections["edges"].load([tasks[row] for row in rows])
        condition = (items.load([item]).conditions > 0.5).float().expand(len(rows), -1, -1, -1)
        f1[rows] = pooled_edge_f1(detected, condition)
        ms_ssim[rows] = edge_ms_ssim(detected, condition).numpy()
    return pd.DataFrame({"edge_f1_all": f1, "edge_msssim_all": ms_ssim})


def controlnetpp_seg(items: BenchItems, tasks: list[Task], detections: dict[str, Detections], classes: int) -> tuple[float, float, float]:
    """ControlNet++'s ADE20K mIoU (bench.metrics.protocol) of a method's images, with its interval over prompts."""
    by_item: dict[int, list[Task]] = {}
    for task in tasks:
        by_item.setdefault(task.item, []).append(task)
    areas = [dataset_class_areas(detections["labels"].load(part).long(),
                         items.load([item]).semantic[:, None].expand(len(part), -1, -1, -1), classes) for item, part in by_item.items()]
    return dataset_miou_ci(np.stack([a for a, _ in areas]), np.stack([u for _, u in areas]), n_boot=200, seed=0)


def image_features(extract, paths: list) -> np.ndarray:
    """Features of image files, read a chunk at a time (the set is never in memory at once, only its features); a chunk
    is the extractor's own batch, so the features are those of one call on all images."""
    chunk = getattr(extract, "batch_size", CHUNK)
    return np.concatenate([extract(torch.stack([read_rgb(path) for path in paths[start : start + chunk]]))
                           for start in range(0, len(paths), chunk)])


def aggregates(frame: pd.DataFrame, generated_features: np.ndarray | None, reference_features: np.ndarray | None,
               suite: Suite, scorers: Scorers, seeds: list[int] | None = None) -> dict[str, float]:
    result = {}
    for column in frame.columns.drop(["item_id", "seed", "key"]):  # intervals resample prompts, each with all its seeds
        mean, lo, hi = mean_ci(frame[column].to_numpy(), seed=0, cap=registry.cap(column), groups=frame["item_id"].to_numpy())
        result |= {column: mean, f"{column}_ci_lo": lo, f"{column}_ci_hi": hi}
    if "structure_in" in frame:
        result["unmeasured_in"] = float((frame["structure_in"] == 0).sum())  # samples left out of in-mask fidelity
    if generated_features is not None and reference_features is not None and len(generated_features) >= 2:
        fid = scorers.key("fid", scorers.fid_name)
        with warnings.catch_warnings():  # singular covariances (N ≤ D) are reported once by the run, not per sqrtm call
            warnings.simplefilter("ignore", LinAlgWarning)
            if suite.metrics.fid.groups == "seed-mean" and seeds is not None:  # ControlNet++: each seed group's FID, averaged
                by_seed = np.asarray(seeds)
                estimate = float(np.mean([fid_from_features(generated_features[by_seed == seed], reference_features)
                                          for seed in sorted(set(seeds))]))
                lo = hi = float("nan")  # a mean of a few set metrics: no interval is claimed
            else:
                estimate = fid_from_features(generated_features, reference_features)
                lo, hi = fid_bootstrap_ci(generated_features, reference_features, n_boot=200, seed=0, estimate=estimate)
            result |= {fid: estimate, f"{fid}_ci_lo": lo, f"{fid}_ci_hi": hi}
        if suite.metrics.fid.kid:
            subset = min(len(generated_features), len(reference_features), 1000)
            result[scorers.key("kid", scorers.fid_name)] = kid_from_features(generated_features, reference_features,
                                                                             max_subset_size=subset, seed=0)
    return result


def score_method(suite: Suite, items: BenchItems, method: str, tasks: list[Task], reference: list[Task] | None,
                 detections: dict, scorers: Scorers, reference_features: np.ndarray | None, fid_key: str | None,
                 out: Path, say: Callable[[str], None] = print) -> tuple[pd.DataFrame, dict, Path]:
    """Per-sample rows and aggregates of one method, from the cache when its key matches and both files are intact
    (each as written: its size and sha256 match its record; `say` names what is not)."""
    key = score_key(method, [t.key for t in tasks], [t.key for t in reference or []], {**suite.metrics.model_dump(mode="json"), "protocol": suite.protocol},
                    items.key, fid_key,
                    [scorers.fid_name, scorers.lpips_name, scorers.clip_name,
                     *(DETECTORS[scorers.detectors[kind]].folder(name) for kind, name in scorers.detector_names.items())])
    table, summary = out / "scores" / f"{method}-{key}.parquet", out / "scores" / f"{method}-{key}.json"
    problems = {path: problem for path in (table, summary) if (problem := recorded_problem(path)) is not None}
    if not problems:
        return pd.read_parquet(table), json.loads(summary.read_text()), table
    for path, problem in problems.items():
        if problem != "missing":
            say(f"{path} {problem}: scored again")
    frame = per_sample(suite, items, tasks, reference, detections, scorers)
    if suite.protocol == "controlnetpp" and "edges" in detections and CHANNELS[suite.condition] == 1:
        frame = pd.concat([frame, controlnetpp_edges(items, tasks, detections)], axis=1)
    features = None
    if scorers.fid_name is not None and reference_features is not None:
        features = image_features(scorers.fid, [t.path for t in tasks])
    result = aggregates(frame, features, reference_features, suite, scorers, seeds=[t.seed for t in tasks])
    if suite.protocol == "controlnetpp" and "labels" in detections:  # a set metric: the whole dataset's areas at once
        miou = scorers.detector_key("seg_miou_all", "labels")
        estimate, lo, hi = controlnetpp_seg(items, tasks, detections, DETECTORS[scorers.detectors["labels"]].classes)
        result |= {miou: estimate, f"{miou}_ci_lo": lo, f"{miou}_ci_hi": hi}
    with atomic(table, record=True) as temporary:
        frame.to_parquet(temporary, index=False)
    write_text(summary, json.dumps(result, indent=2, sort_keys=True) + "\n", record=True)
    return frame, result, table
