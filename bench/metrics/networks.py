"""The networks a suite's metrics need, loaded (or found missing) before any generation starts.

A metric whose weights are missing is listed with how to provide it and stops the run up front — except LPIPS
with `lpips: auto`, which is then left out and says so. Random-weight networks are used only when the suite asks
for them (mechanics mode, `--base tiny`, rewrites the suite to ask: bench.requirements), and their metric keys
say so (`fid_random-inception`, `lpips_out_lpips-random-alexnet`); so do the rehearsal's stand-ins of the real
files (`fid_rehearsal-inception`, `clip_score_ViT-B-16-rehearsal`, `lpips_out_lpips-rehearsal-alexnet`).
"""

import re
from functools import cached_property

import numpy as np

from bench.metrics.detectors import DETECTORS
from bench.suite import Suite
from localctrl.models.weights import SHAPES_NET_DIR, MetricUnavailable, require
from localctrl.rehearsal import stand_in_root

# The networks' libraries (open_clip, clean-fid, lpips, torchvision) are imported where a network is built: a rerun whose
# scores are all cached builds none, and importing them alone took seconds (localctrl perf, whole-process rerun).


class ClipImageFeatures:
    """CLIP image embeddings as FID features (clean-fid's `clip` mode analogue), named after the CLIP model."""

    def __init__(self, scorer: "ClipScorer"):  # noqa: F821
        self.scorer, self.name = scorer, f"clip-{scorer.name}"

    def __call__(self, images_uint8) -> np.ndarray:
        return np.asarray(self.scorer.image_embeddings(images_uint8).cpu(), dtype=np.float64)


STAND_IN_NAMES = {"inception": "rehearsal-inception", "clip-ViT-B-16/openai": "clip-ViT-B-16/rehearsal",
                  "ViT-B-16/openai": "ViT-B-16/rehearsal", "lpips[alexnet]": "lpips[rehearsal-alexnet]"}
FID_NAMES = {"shapes-net": "shapes-net", "inception": "inception", "random-inception": "random-inception",
             "clip": "clip-ViT-B-16/openai"}
CLIP_NAMES = {"ViT-B-16/openai": "ViT-B-16/openai", "random": "ViT-B-16/random"}
LPIPS_NAMES = {"random": "lpips[random-alexnet]", "auto": "lpips[alexnet]", "on": "lpips[alexnet]"}
WEIGHTS = {"inception": "Inception (clean-fid)", "clip": "CLIP ViT-B/16 (openai)", "lpips": "LPIPS AlexNet backbone"}


class Scorers:
    """The metric networks of a suite: names known (and weights checked) up front, each built on first use.

    A rerun whose scores are all cached never builds them, which keeps it at a fraction of the first run's time.
    """

    def __init__(self, suite: Suite, device: str = "cpu"):
        spec, self.device, self.notes = suite.metrics, device, []
        self.fid_features = spec.fid.features if spec.fid else None
        self.fid_name = FID_NAMES[spec.fid.features] if spec.fid else None
        self.clip_name = CLIP_NAMES.get(spec.clip_score)
        self.lpips_name = LPIPS_NAMES.get(spec.preservation.lpips) if spec.preservation else None
        self.wants_shapes_net = bool(spec.align_shapes or self.fid_name == "shapes-net")
        self.detectors = spec.detectors()  # detector kind → detector name (bench.metrics.detectors)
        needed = [DETECTORS[name].component for name in self.detectors.values() if DETECTORS[name].component]
        if self.fid_name in ("inception", "clip-ViT-B-16/openai"):
            needed.append(WEIGHTS[spec.fid.features])
        if self.clip_name == "ViT-B-16/openai":
            needed.append(WEIGHTS["clip"])
        missing = [error for component in dict.fromkeys(needed) for error in self._check(component)]  # each once
        if self.lpips_name == "lpips[alexnet]" and (problem := self._check(WEIGHTS["lpips"])):
            if spec.preservation.lpips == "on":
                missing += problem
            else:  # auto: leave it out and say so
                self.lpips_name = None
                self.notes.append(f"lpips_out left out: {problem[0]}")
        if missing:
            raise MetricUnavailable("; ".join(e.metric for e in missing), "; ".join(e.missing for e in missing),
                                    " | ".join(e.how for e in missing))
        fid_weights = WEIGHTS.get(self.fid_features or "")
        self.fid_name = self._named(self.fid_name, fid_weights)
        self.clip_name = self._named(self.clip_name, WEIGHTS["clip"])
        self.lpips_name = self._named(self.lpips_name, WEIGHTS["lpips"])
        self.detector_names = {kind: self._detector_name(name) for kind, name in self.detectors.items()}

    @staticmethod
    def _detector_name(name: str) -> str:
        """A detector's name, "rehearsal-…" where its weights are the rehearsal's stand-in."""
        component = DETECTORS[name].component
        return f"rehearsal-{name}" if component and stand_in_root(require(component)) is not None else name

    def detector_key(self, metric: str, kind: str) -> str:
        """Metric key of a fidelity metric read with the suite's detector of `kind`; random or stand-in ones say so."""
        return self.key(metric, self.detector_names[kind])

    def _named(self, name: str | None, component: str | None) -> str | None:
        """A real network's name, or its stand-in name when its file is the rehearsal's (named so in every key)."""
        if name in STAND_IN_NAMES and component and stand_in_root(require(component)) is not None:
            return STAND_IN_NAMES[name]
        return name

    @staticmethod
    def _check(component: str) -> list[MetricUnavailable]:
        try:
            require(component)
        except MetricUnavailable as error:
            return [error]
        return []

    def key(self, metric: str, name: str | None) -> str:
        """Metric key; a random or stand-in network's name is appended so a table can never pass it off as the real one."""
        if not name or ("random" not in name and "rehearsal" not in name):
            return metric
        return f"{metric}_{re.sub(r'[^A-Za-z0-9.-]+', '-', name).strip('-')}"  # MLflow keys: no brackets

    @cached_property
    def shapes_net(self) -> "ShapesNet | None":  # noqa: F821
        from localctrl.shapes.net import load_shapes_net

        return load_shapes_net(SHAPES_NET_DIR).to(self.device).eval() if self.wants_shapes_net else None

    @cached_property
    def fid(self) -> "FeatureExtractor | ClipImageFeatures | None":  # noqa: F821
        from bench.metrics.clip_score import ClipScorer
        from bench.metrics.features import inception_features, random_inception_features, shapes_net_features

        builders = {"shapes-net": lambda: shapes_net_features(self.shapes_net, device=self.device),
                    "random-inception": lambda: random_inception_features(seed=0, device=self.device),
                    "inception": lambda: inception_features(device=self.device),
                    "clip": lambda: ClipImageFeatures(ClipScorer(device=self.device))}
        return builders[self.fid_features]() if self.fid_features else None

    @cached_property
    def clip(self) -> "ClipScorer | None":  # noqa: F821
        from bench.metrics.clip_score import ClipScorer

        return ClipScorer(device=self.device, random_weights=self.clip_name == "ViT-B-16/random") if self.clip_name else None

    @cached_property
    def lpips(self):
        from bench.metrics.masked import load_lpips

        return load_lpips(random_weights=self.lpips_name == "lpips[random-alexnet]", device=self.device) if self.lpips_name else None


def load_scorers(suite: Suite, device: str = "cpu") -> Scorers:
    """The suite's metric networks, checked now and built when first needed; MetricUnavailable lists what is missing."""
    return Scorers(suite, device)
