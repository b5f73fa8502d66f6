"""The keys of the benchmark's caches: what each cached file depends on, hashed, so that a rerun finds exactly it.

A changed input changes exactly the keys of what it changes (and so regenerates only that); the same inputs give the
same key on any machine. tests/bench/test_keys.py states, key by key, what must and must not change it.

- task key (one generated image): base weights, method key, prompt, seed, sampler key, and the condition and mask
  bytes when the method uses them;
- method key: the control model's weights and how it is used at inference (scale, resize, mask use, ControlNet mode);
- sampler key: the settings that change images (not the batch size);
- training key: the resolved training config, without its output folder (names the trained-adapter folder);
- score key: the tasks' keys, the reference method's, the items' masks and ground truth, the metric settings and
  networks, and SCORE_VERSION;
- FID reference key: the real images, the feature extractor and the resolution.
"""

import hashlib

import torch

from localctrl.common.hashing import json_hash, module_hash, tensor_hash  # noqa: F401  (bench.keys names them too)
from localctrl.config import DataSettings, SamplerSettings, TrainConfig
from localctrl.shapes.render import GROUND_TRUTH_VERSIONS
from localctrl.shapes.segmenter import VERSION as SEGMENTER_VERSION

SCORE_VERSION = 2  # 2: in-mask fidelity NaN where the mask holds no structure; bump when a metric's code changes what it computes: cached scores are then recomputed
# Sampler settings in every sampler key; those added to SamplerSettings since enter a key only when set, so images
# cached before they existed keep their keys.
SAMPLER_KEY_FIELDS = ("scheduler", "steps", "guidance", "precision")
# How training batches are made (localctrl.data.loader, .latent_cache), not what they hold: in no training key, so
# adapters trained before these settings existed keep their keys (cache_latents only when set).
INPUT_PIPELINE_FIELDS = (*DataSettings.SCHEDULING_FIELDS, "cache_latents")


class StackedHash:
    """`tensor_hash(torch.cat(parts))`, computed part by part (the same value), so the parts are never in memory at once."""

    def __init__(self, rows: int):
        self.rows, self.digest = rows, None

    def update(self, part: torch.Tensor) -> None:
        """The next rows, in order."""
        data = part.detach().cpu().contiguous()
        if self.digest is None:  # tensor_hash's header: the whole tensor's dtype and shape
            self.digest = hashlib.sha256(f"{data.dtype}{(self.rows, *data.shape[1:])}".encode())
        self.digest.update(data.view(torch.uint8).numpy().tobytes() if data.numel() else b"")

    def hexdigest(self) -> str:
        return self.digest.hexdigest()


def stack_key(stack) -> str:
    """The base's identity: its weights, not its name (a retrained shapes-base regenerates)."""
    return json_hash([module_hash(stack.unet), module_hash(stack.vae), module_hash(stack.text_encoder), stack.image_size])


def sampler_key(settings: SamplerSettings) -> dict:
    """Sampler settings that change images; the batch size does not (beyond float rounding: see the sampler's tests)."""
    values, defaults = settings.model_dump(exclude={"batch_size"}), SamplerSettings().model_dump()
    return {name: value for name, value in values.items() if name in SAMPLER_KEY_FIELDS or value != defaults[name]}


def method_key(kind: str, mask_at_inference: bool, scale: float, resize: str | None, weights: str | None,
               local: str | None) -> str:
    """A method's identity for its images: `weights` is the control model's module_hash (None for text only), `local`
    how control is kept inside the mask (bench.suite.MethodSpec.local)."""
    return json_hash({"kind": kind, "mask_at_inference": mask_at_inference, "scale": scale, "resize": resize, "weights": weights,
                      "local": local})


def task_key(base: str, method: str, prompt: str, seed: int, sampler: dict, condition: str | None, mask: str | None) -> str:
    """One image's key; `condition` and `mask` are tensor hashes, None where the method does not use them."""
    return json_hash({"base": base, "method": method, "prompt": prompt, "seed": seed, "sampler": sampler, "condition": condition,
                      "mask": mask})


def training_key(config: TrainConfig) -> str:
    """The trained adapter's folder name: every training setting but where it is written and how its batches are made,
    and, for a condition of the shapes world whose ground truth has changed, the version of that ground truth; for seg
    there, the version of the segmenter that validation picks adapter-best with (so no stale adapter is reused)."""
    settings = config.model_dump(mode="json", exclude={"out": True, "data": set(INPUT_PIPELINE_FIELDS)})
    if config.data.cache_latents:  # trains the same up to float rounding: its own adapter, keys without it unchanged
        settings["data"]["cache_latents"] = True
    if config.data.source == "shapes" and config.condition in GROUND_TRUTH_VERSIONS:
        settings["ground_truth_version"] = GROUND_TRUTH_VERSIONS[config.condition]
    if config.data.source == "shapes" and config.condition == "seg":
        settings["segmenter_version"] = SEGMENTER_VERSION
    return json_hash(settings)[:16]


def items_key(ids: list[str], masks: str, reference_edges: str, semantic: str | None, depth: str | None = None,
              structure: str | None = None) -> str:
    """What scores depend on in the items besides the images: ids, and the tensor hashes of all evaluation masks, ground
    truth and the conditions' structure (StackedHash over the items in order)."""
    return json_hash([ids, masks, reference_edges, semantic, depth, structure])


def score_key(method: str, tasks: list[str], reference: list[str], metrics: dict, items: str, fid_reference: str | None,
              networks: list[str | None]) -> str:
    """A method's scores: its images (task keys), the reference method's, the items, the metric settings and networks."""
    return json_hash({"method": method, "tasks": tasks, "reference": reference, "metrics": metrics, "items": items,
                      "fid_reference": fid_reference, "networks": networks, "version": SCORE_VERSION})[:16]


def fid_reference_key(images: str, features: str, size: int) -> str:
    """`images`: the tensor hash of the real reference images, all of them in order (StackedHash)."""
    return json_hash({"images": images, "features": features, "size": size})[:16]


def bench_key(suite: dict, limit: int | None, item_ids: list[str], networks: dict[str, str] | None = None,
              weights: dict[str, str | None] | None = None) -> str:
    """The suite invocation's MLflow parent run: the resolved suite, --limit, the items, the weights each method used
    (a retrained adapter is another run, not a param conflict) and, where they are not the suite's own (a rehearsal's
    stand-ins), the metric networks' names."""
    return json_hash({"suite": suite, "limit": limit, "items": item_ids, "weights": weights}
                     | ({"networks": networks} if networks else {}))
