"""What a suite needs from outside the package (base, data, method weights, metric weights), checked up front.

`missing_requirements` lists every missing piece with how to provide it, so a run fails once with the whole list
instead of at the first gap. `mechanics_suite` is `--base tiny` (`--base tiny-xl` for SDXL suites): the same plan
(methods, metrics, sampler) on the shapes world (when the suite's data is missing) with seeded random stand-ins for
every pretrained network (hub ids and missing folders; existing local folders are kept and must fit the tiny base),
each named so in notes and keys.
"""

from pathlib import Path
from typing import NamedTuple

from bench.metrics.detectors import DETECTORS, RANDOM
from bench.metrics.networks import WEIGHTS
from bench.suite import Suite
from localctrl.data.manifest import MANIFEST
from localctrl.errors import LocalctrlError
from localctrl.models.convert import PickledWeightsError, check_safetensors
from localctrl.models.detectors import NETWORKS, check_network
from localctrl.models.stacks import RANDOM_BASES, SHIPPED_BASES
from localctrl.models.weights import MetricUnavailable, ModelNotAvailableError, require, resolve_pretrained
from localctrl.rehearsal import is_stand_in, stand_in_root

MECHANICS_BASES = ("tiny", "tiny-xl")  # the random bases that switch a run to mechanics mode
MECHANICS_REFERENCE_ITEMS = 64  # `--base tiny`: real reference images FID is compared with (the suite's may be 5,000)


class MissingRequirements(LocalctrlError):
    def __init__(self, suite: str, missing: list[str]):
        self.missing = missing
        super().__init__(f"suite '{suite}' cannot run here; missing:\n" + "\n".join(f"  - {line}" for line in missing) +
                         "\n(`--base tiny`, or `--base tiny-xl` for an SDXL suite, runs its mechanics on the shapes world "
                         "with random stand-ins.)")


class Gap(NamedTuple):
    """One thing a suite lacks: the line saying how to provide it, and what `localctrl fetch` could download for it."""

    line: str
    source: str | None = None  # a hub id or a metric component's name that can be downloaded; None: data, training, convert
    what: str = ""  # what it is for ("base model", "weights of method(s) …")
    metric: bool = False  # `source` names a metric component (localctrl.models.weights.components)


def _pretrained(name: str, what: str, subfolders: tuple[str, ...] = ("",)) -> Gap | None:
    """Why the model `name` cannot be loaded (not here: fetch it; pickled weights only: `localctrl convert`), or None."""
    if str(name) in RANDOM_BASES or str(name) in SHIPPED_BASES or name == "random":
        return None
    try:
        check_safetensors(resolve_pretrained(name, what=what), what, subfolders, name=str(name))
    except ModelNotAvailableError as error:
        return Gap(str(error), str(name), what)
    except PickledWeightsError as error:
        return Gap(str(error))
    return None


def _metric(component: str) -> Gap | None:
    try:
        require(component)
    except MetricUnavailable as error:
        return Gap(f"{error.metric}: {error.missing}. {error.how}", component, metric=True)
    if component in DETECTOR_COMPONENTS:  # transformers folders: loaded from safetensors only
        try:
            check_network(DETECTOR_COMPONENTS[component])
        except PickledWeightsError as error:
            return Gap(str(error))
    return None


DETECTOR_COMPONENTS = {network.component: name for name, network in NETWORKS.items()}  # component → network name


def metric_components(suite: Suite, lpips_auto: bool) -> list[str]:
    """The pretrained networks (localctrl.models.weights component names) that the suite's metrics load; LPIPS under
    `lpips: auto` only with `lpips_auto` (a run leaves it out when it is missing)."""
    metrics, lpips = suite.metrics, ("on", "auto") if lpips_auto else ("on",)
    needed = [WEIGHTS[metrics.fid.features]] if metrics.fid and metrics.fid.features in WEIGHTS else []
    needed += [WEIGHTS["clip"]] if metrics.clip_score == "ViT-B-16/openai" else []
    needed += [WEIGHTS["lpips"]] if metrics.preservation and metrics.preservation.lpips in lpips else []
    needed += [DETECTORS[name].component for name in suite.metrics.detectors().values() if DETECTORS[name].component]
    return list(dict.fromkeys(needed))


def gaps(suite: Suite) -> list[Gap]:
    """Everything the suite lacks, each once, in order: base, data, method weights, metric networks."""
    found = [_pretrained(suite.base, "base model", ("vae", "unet", "text_encoder"))]
    if suite.data.source != "shapes" and not (Path(suite.data.source) / MANIFEST).is_file():
        found.append(Gap(f"data: no {MANIFEST} in {suite.data.source}; build it with `localctrl data prepare` "
                         "(README, Real data: recipes)"))
    users: dict[str, list[str]] = {}  # weights → the methods using them (one line each, however many methods share it)
    for name, method in suite.methods.items():
        if method.weights and method.weights != "random" and not Path(method.weights).is_dir():
            users.setdefault(method.weights, []).append(name)
    for weights, names in users.items():
        what = f"weights of method(s) {', '.join(names)} ({suite.methods[names[0]].kind})"
        if weights.count("/") == 1 and not weights.startswith((".", "/", "~")):
            found.append(_pretrained(weights, what))
        else:
            found.append(Gap(f"{what}: folder {weights} does not exist (adapters: train them with `localctrl train`, README)"))
    found += [_metric(component) for component in metric_components(suite, lpips_auto=False)]
    return list({gap.line: gap for gap in found if gap}.values())


def missing_requirements(suite: Suite) -> list[str]:
    return [gap.line for gap in gaps(suite)]


def mechanics_suite(suite: Suite) -> tuple[Suite, list[str]]:
    """A suite on a mechanics base (MECHANICS_BASES): shapes-world data, random adapters/ControlNets/metric networks;
    returns the notes saying so."""
    notes, data = [], suite.data
    if data.source != "shapes" and not (Path(data.source) / MANIFEST).is_file():
        notes.append(f"mechanics mode (base {suite.base}): shapes world instead of {data.source}, which is missing")
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
    if fid and fid.reference_items > MECHANICS_REFERENCE_ITEMS:  # random features: the number means nothing either way
        notes.append(f"mechanics mode: FID against {MECHANICS_REFERENCE_ITEMS} reference images instead of {fid.reference_items}")
        fid = fid.model_copy(update={"reference_items": MECHANICS_REFERENCE_ITEMS})
    clip = "random" if metrics.clip_score != "off" else "off"
    preservation = metrics.preservation
    if preservation and preservation.lpips in ("on", "auto"):
        preservation = preservation.model_copy(update={"lpips": "random"})
    update = {"fid": fid, "clip_score": clip, "preservation": preservation}
    for field in ("depth", "seg"):
        part = getattr(metrics, field)
        if part is not None and part.detector in RANDOM:
            notes.append(f"mechanics mode: {field} read with {RANDOM[part.detector]} instead of {part.detector}")
            update[field] = part.model_copy(update={"detector": RANDOM[part.detector]})
    metrics = metrics.model_copy(update=update)
    update = {"data": data, "methods": methods, "metrics": metrics}
    if suite.sampler.precision != "fp32":
        update["sampler"] = suite.sampler.model_copy(update={"precision": "fp32"})  # CPU: exact and not slower at this size
    return suite.model_copy(update=update), notes


def stand_ins(suite: Suite) -> list[str]:
    """What of the suite is the rehearsal's (`localctrl doctor --rehearse`): its base, data, method weights and metric
    networks that are seeded random stand-ins."""
    parts = [("base", suite.base)] + ([("data", suite.data.source)] if suite.data.source != "shapes" else [])
    parts += [(f"methods.{name}", method.weights) for name, method in suite.methods.items() if method.weights not in (None, "random")]
    found = [f"{what} {name}" for what, name in parts if is_stand_in(name)]
    return found + [component for component in metric_components(suite, lpips_auto=True)
                    if _metric(component) is None and stand_in_root(require(component))]
