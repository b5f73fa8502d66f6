"""What a suite needs from outside the package (base, data, method weights, metric weights), checked up front.

`missing_requirements` lists every missing piece with how to provide it, so a run fails once with the whole list
instead of at the first gap. `mechanics_suite` is `--base tiny`: the same plan (methods, metrics, sampler) on the
shapes world (when the suite's data is missing) with seeded random stand-ins for every pretrained network (hub ids
and missing folders; existing local folders are kept and must fit the tiny base), each named so in notes and keys.
"""

from pathlib import Path

from bench.metrics.networks import WEIGHTS
from bench.suite import Suite
from localctrl.data.manifest import MANIFEST
from localctrl.errors import LocalctrlError
from localctrl.models.convert import PickledWeightsError, check_safetensors
from localctrl.models.stacks import RANDOM_BASES, SHIPPED_BASES
from localctrl.models.weights import MetricUnavailable, ModelNotAvailableError, require, resolve_pretrained
from localctrl.rehearsal import is_stand_in, stand_in_root


class MissingRequirements(LocalctrlError):
    def __init__(self, suite: str, missing: list[str]):
        self.missing = missing
        super().__init__(f"suite '{suite}' cannot run here; missing:\n" + "\n".join(f"  - {line}" for line in missing) +
                         "\n(`--base tiny` runs its mechanics on the shapes world with random stand-ins.)")


def _pretrained(name: str, what: str, subfolders: tuple[str, ...] = ("",)) -> str | None:
    """Why the model `name` cannot be loaded (not here, or pickled weights only: `localctrl convert`), or None."""
    if str(name) in RANDOM_BASES or str(name) in SHIPPED_BASES or name == "random":
        return None
    try:
        check_safetensors(resolve_pretrained(name, what=what), what, subfolders, name=str(name))
    except (ModelNotAvailableError, PickledWeightsError) as error:
        return str(error)
    return None


def _metric(component: str) -> str | None:
    try:
        require(component)
    except MetricUnavailable as error:
        return f"{error.metric}: {error.missing}. {error.how}"
    return None


def missing_requirements(suite: Suite) -> list[str]:
    missing = [_pretrained(suite.base, "base model", ("vae", "unet", "text_encoder"))]
    if suite.data.source != "shapes" and not (Path(suite.data.source) / MANIFEST).is_file():
        missing.append(f"data: no {MANIFEST} in {suite.data.source}; build it with `localctrl data prepare` (README, Real data: recipes)")
    users: dict[str, list[str]] = {}  # weights → the methods using them (one line each, however many methods share it)
    for name, method in suite.methods.items():
        if method.weights and method.weights != "random" and not Path(method.weights).is_dir():
            users.setdefault(method.weights, []).append(name)
    for weights, names in users.items():
        what = f"weights of method(s) {', '.join(names)} ({suite.methods[names[0]].kind})"
        if weights.count("/") == 1 and not weights.startswith((".", "/", "~")):
            missing.append(_pretrained(weights, what))
        else:
            missing.append(f"{what}: folder {weights} does not exist (adapters: train them with `localctrl train`, README)")
    metrics = suite.metrics
    if metrics.fid and metrics.fid.features in ("inception", "clip"):
        missing.append(_metric(WEIGHTS[metrics.fid.features]))
    if metrics.clip_score == "ViT-B-16/openai":
        missing.append(_metric(WEIGHTS["clip"]))
    if metrics.preservation and metrics.preservation.lpips == "on":
        missing.append(_metric(WEIGHTS["lpips"]))
    return list(dict.fromkeys(line for line in missing if line))  # each once, in order


def mechanics_suite(suite: Suite) -> tuple[Suite, list[str]]:
    """`--base tiny`: shapes-world data, random adapters/ControlNets/metric networks; returns the notes saying so."""
    notes, data = [], suite.data
    if data.source != "shapes" and not (Path(data.source) / MANIFEST).is_file():
        notes.append(f"mechanics mode (base tiny): shapes world instead of {data.source}, which is missing")
        data = data.model_copy(update={"source": "shapes", "split": "test"})
    methods = {}
    for name, method in suite.methods.items():
        if method.weights and method.weights != "random" and not Path(method.weights).is_dir():  # hub ids, missing folders
            notes.append(f"mechanics mode: methods.{name} uses a seeded random {method.kind} instead of {method.weights}")
            method = method.model_copy(update={"weights": "random"})
        methods[name] = method
    metrics = suite.metrics
    fid = metrics.fid
    if fid and fid.features in ("inception", "clip"):
        notes.append(f"mechanics mode: FID with random-inception features instead of {fid.features}")
        fid = fid.model_copy(update={"features": "random-inception"})
    clip = "random" if metrics.clip_score != "off" else "off"
    preservation = metrics.preservation
    if preservation and preservation.lpips in ("on", "auto"):
        preservation = preservation.model_copy(update={"lpips": "random"})
    metrics = metrics.model_copy(update={"fid": fid, "clip_score": clip, "preservation": preservation})
    update = {"data": data, "methods": methods, "metrics": metrics, "base": "tiny"}
    if suite.sampler.precision != "fp32":
        update["sampler"] = suite.sampler.model_copy(update={"precision": "fp32"})  # CPU: exact and not slower at this size
    return suite.model_copy(update=update), notes


def stand_ins(suite: Suite) -> list[str]:
    """What of the suite is the rehearsal's (`localctrl doctor --rehearse`): its base, data, method weights and metric
    networks that are seeded random stand-ins."""
    parts = [("base", suite.base)] + ([("data", suite.data.source)] if suite.data.source != "shapes" else [])
    parts += [(f"methods.{name}", method.weights) for name, method in suite.methods.items() if method.weights not in (None, "random")]
    found = [f"{what} {name}" for what, name in parts if is_stand_in(name)]
    metrics = suite.metrics
    needed = [WEIGHTS[metrics.fid.features]] if metrics.fid and metrics.fid.features in WEIGHTS else []
    needed += [WEIGHTS["clip"]] if metrics.clip_score == "ViT-B-16/openai" else []
    needed += [WEIGHTS["lpips"]] if metrics.preservation and metrics.preservation.lpips in ("on", "auto") else []
    return found + [component for component in needed if _metric(component) is None and stand_in_root(require(component))]
