"""The networks a suite's metrics need, loaded (or found missing) before any generation starts.

A metric whose weights are missing is listed with how to provide it and stops the run up front — except LPIPS
with `lpips: auto`, which is then left out and says so. Random-weight networks are used only when the suite asks
for them (mechanics mode, `--base tiny`, rewrites the suite to ask: bench.requirements), and their metric keys say so (`fid_random-inception`, `lpips_out_lpips-random-alexnet`).
"""

import re
from dataclasses import dataclass, field

import numpy as np

from bench.metrics import MetricUnavailable, load_lpips
from bench.metrics.clip_score import ClipScorer
from bench.metrics.features import FeatureExtractor, inception_features, random_inception_features, shapes_net_features
from bench.suite_schema import Suite
from localctrl.shapes.net import ShapesNet, load_shapes_net
from localctrl.shipped import SHAPES_NET_DIR


@dataclass
class Scorers:
    fid: FeatureExtractor | None = None
    lpips: object | None = None
    clip: ClipScorer | None = None
    shapes_net: ShapesNet | None = None
    notes: list[str] = field(default_factory=list)  # what was left out or substituted, printed and logged

    def key(self, metric: str, name: str | None) -> str:
        """Metric key; a random-weight network's name is appended so a table can never pass it off as the real one."""
        if not name or "random" not in name:
            return metric
        return f"{metric}_{re.sub(r'[^A-Za-z0-9.-]+', '-', name).strip('-')}"  # MLflow keys: no brackets


def load_scorers(suite: Suite, device: str = "cpu") -> Scorers:
    """Build every network the metrics need; raise one MetricUnavailable-listing error naming all that are missing."""
    spec, scorers, missing = suite.metrics, Scorers(), []
    needs_shapes_net = spec.align_shapes or (spec.fid and spec.fid.features == "shapes-net")
    if needs_shapes_net:
        scorers.shapes_net = load_shapes_net(SHAPES_NET_DIR).to(device).eval()
    if spec.fid:
        features = spec.fid.features
        try:
            if features == "shapes-net":
                scorers.fid = shapes_net_features(scorers.shapes_net, device=device)
            elif features == "random-inception":
                scorers.fid = random_inception_features(seed=0, device=device)
            elif features == "inception":
                scorers.fid = inception_features(device=device)
            else:  # clip image features
                scorers.fid = clip_features(device)
        except MetricUnavailable as error:
            missing.append(error)
    if spec.clip_score != "off":
        try:
            scorers.clip = ClipScorer(device=device, random_weights=spec.clip_score == "random")
        except MetricUnavailable as error:
            missing.append(error)
    if spec.preservation and spec.preservation.lpips != "off":
        try:
            scorers.lpips = load_lpips(random_weights=spec.preservation.lpips == "random", device=device)
        except MetricUnavailable as error:
            if spec.preservation.lpips != "auto":
                missing.append(error)
            scorers.notes.append(f"lpips_out left out: {error}")
    if missing:
        raise MetricUnavailable("; ".join(e.metric for e in missing), "; ".join(e.missing for e in missing),
                                " | ".join(e.how for e in missing))
    return scorers


class ClipImageFeatures:
    """CLIP image embeddings as FID features (clean-fid's `clip` mode analogue), named after the CLIP model."""

    def __init__(self, scorer: ClipScorer):
        self.scorer, self.name = scorer, f"clip-{scorer.name}"

    def __call__(self, images_uint8) -> np.ndarray:
        return np.asarray(self.scorer.image_embeddings(images_uint8).cpu(), dtype=np.float64)


def clip_features(device: str) -> ClipImageFeatures:
    return ClipImageFeatures(ClipScorer(device=device))
