"""`localctrl fetch SUITE`: download exactly the weights a suite lacks, after listing every file and its size.

The only place localctrl downloads weights, and only when asked. What a suite lacks is the benchmark's own up-front
check (`bench.requirements.gaps`); of that, hub ids that are not cached (the base, the methods'
adapters and ControlNets) and the metric networks (`components()`) can be fetched; the rest (data, adapters to train)
is only reported. `plan` is pure: given the hub's repo listings it picks the files localctrl's loaders read, so it is
tested without network. Repos with pickled `.bin` weights only get their `.bin` files, converted to safetensors right
after download (localctrl.models.convert). HF_HUB_OFFLINE (set by the Makefile and the tests) is lifted for fetch's own
hub calls only, and fetch says so.
"""

import importlib
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from bench.requirements import gaps
from localctrl.common.files import atomic
from localctrl.errors import NotAvailableError
from localctrl.models import weights
from localctrl.models.convert import SAFETENSORS_FOR, convert_to_safetensors
from localctrl.models.stacks import PIPELINE_PARTS, SDXL_PARTS

HUB = "the Hugging Face hub"
WEIGHTED_PARTS = ("vae", "text_encoder", "text_encoder_2", "unet")  # the pipeline parts with weights (the others: configs, vocabulary)
# Metric networks that are single files where their library looks (no hub repo): the URL and that place.
URL_FILES: dict[str, tuple[str, Callable[[], Path]]] = {
    "Inception (clean-fid)": (weights.INCEPTION_URL, lambda: weights.weights_dir() / weights.INCEPTION_FILE),
    "LPIPS AlexNet backbone": (weights.ALEXNET_URL, lambda: weights.torch_hub_checkpoints() / weights.ALEXNET_FILE),
}
# Hub repos read by another library, which wants one file (the first of these the repo has), not a diffusers layout.
EXACT_FILES = {weights.CLIP_REPO: weights.OPEN_CLIP_FILES}


class Need(NamedTuple):
    what: str  # what it is for ("base model", "CLIP score (CLIP ViT-B/16 (openai))")
    source: str  # a hub repo id, or a URL
    destination: Path | None = None  # a URL: the file its library reads
    files: tuple[str, ...] = ()  # a hub repo read by another library: the first of these the repo has


@dataclass(frozen=True)
class Item:
    need: Need
    files: dict[str, int | None]  # path in the repo (a URL: the destination) → size in bytes (None: unknown)
    convert: bool = False  # pickled .bin only: converted to safetensors right after download

    @property
    def size(self) -> int:
        return sum(size or 0 for size in self.files.values())


# --- what a suite lacks (local, no network) -----------------------------------------------------------------------

def metric_need(component: weights.Pretrained) -> Need:
    what = f"{component.used_for} ({component.name})"
    if component.name in URL_FILES:
        url, destination = URL_FILES[component.name]
        return Need(what, url, destination())
    return Need(what, component.source, files=EXACT_FILES.get(component.source, ()))


def needs(suite) -> tuple[list[Need], list[str]]:
    """What `suite` lacks that can be downloaded, and the missing lines that cannot (data, folders to train, convert)."""
    metrics = {component.name: component for component in weights.components() if component.metric}
    wanted, others = [], []
    for gap in gaps(suite):
        if gap.source is None:
            others.append(gap.line)
        else:
            wanted.append(metric_need(metrics[gap.source]) if gap.metric else Need(gap.what, gap.source))
    return wanted, others


# --- which files (pure) ----------------------------------------------------------------------------------------------

def folder_files(listing: dict[str, int | None], folder: str) -> list[str]:
    prefix = f"{folder}/" if folder else ""
    return [path for path in listing if path.startswith(prefix) and "/" not in path[len(prefix):]]


def plan_repo(need: Need, listing: dict[str, int | None]) -> Item:
    """The files of hub repo `need.source` (its listing: path → size) that localctrl loads.

    A pipeline (model_index.json): model_index.json and, in the parts load_stack_folder reads (SDXL's second text
    encoder and tokenizer where the repo has them), the configs, tokenizer files and the fp32 weights (`diffusion_pytorch_model.safetensors` / `model.safetensors`). A model: its top-level
    configs and weights. Never the safety checker, fp16 / non_ema variants, `.ckpt` or single-file checkpoints. A
    folder with pickled `.bin` weights only gets the plain-named `.bin`, to be converted after download.
    """
    if need.files:
        chosen = next((file for file in need.files if file in listing), None)
        if chosen is None:
            raise NotAvailableError(f"{need.source} on {HUB} has none of {', '.join(need.files)}; nothing was downloaded")
        return Item(need, {chosen: listing[chosen]})
    pipeline = "model_index.json" in listing
    picked, convert = ["model_index.json"] if pipeline else [], False
    parts = PIPELINE_PARTS + tuple(part for part in SDXL_PARTS if folder_files(listing, part))
    for folder in parts if pipeline else ("",):
        inside = folder_files(listing, folder)
        picked += [path for path in inside if path.endswith((".json", ".txt")) and not path.endswith(".index.json")]
        if pipeline and folder not in WEIGHTED_PARTS:
            continue
        prefix = f"{folder}/" if folder else ""
        found = [prefix + name for name in SAFETENSORS_FOR.values() if prefix + name in listing]
        if not found:  # only pickles: the plain .bin, which convert_to_safetensors turns into the name above
            found = [prefix + name for name in SAFETENSORS_FOR if prefix + name in listing]
            convert = convert or bool(found)
        if not found:
            raise NotAvailableError(
                f"{need.source} on {HUB} has no fp32 weights localctrl can load in {prefix or 'its top level'} "
                f"(looked for {', '.join(SAFETENSORS_FOR.values())} or {', '.join(SAFETENSORS_FOR)}); nothing was downloaded"
            )
        picked += found
    return Item(need, {path: listing[path] for path in picked}, convert)


def plan(wanted: list[Need], listings: dict[str, dict[str, int | None]], url_sizes: dict[str, int | None]) -> list[Item]:
    """What to download for `wanted`, given the hub listings of its repos and the sizes of its URLs."""
    return [Item(need, {str(need.destination): url_sizes.get(need.source)}) if need.destination else
            plan_repo(need, listings[need.source]) for need in wanted]


# --- the network -------------------------------------------------------------------------------------------------------

@contextmanager
def hub_online(say: Callable[[str], None] | None = None) -> Iterator[None]:
    """Lift HF_HUB_OFFLINE for the calls made inside (huggingface_hub reads it from its constants at each request)."""
    from huggingface_hub import constants

    offline = constants.HF_HUB_OFFLINE
    if offline and say:
        say("HF_HUB_OFFLINE is set: localctrl fetch lifts it for its own requests to the hub (nothing else changes)")
    constants.HF_HUB_OFFLINE = False
    try:
        yield
    finally:
        constants.HF_HUB_OFFLINE = offline


@contextmanager
def progress_bars() -> Iterator[None]:
    """huggingface_hub's download bars back on (cli.py turns them off for the noise they make elsewhere; huggingface_hub
    copies HF_HUB_DISABLE_PROGRESS_BARS into its tqdm module at import)."""
    tqdm = importlib.import_module("huggingface_hub.utils.tqdm")  # the module (the package exports a class of that name)
    disabled = tqdm.HF_HUB_DISABLE_PROGRESS_BARS
    tqdm.HF_HUB_DISABLE_PROGRESS_BARS = None
    try:
        yield
    finally:
        tqdm.HF_HUB_DISABLE_PROGRESS_BARS = disabled


def first_line(error: Exception) -> str:
    return f"{type(error).__name__}: {(str(error).strip().splitlines() or [''])[0]}"


def repo_listing(repo: str) -> dict[str, int | None]:
    """Path → size of every file of hub repo `repo` (one request)."""
    from huggingface_hub import HfApi, constants
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError

    try:
        info = HfApi().model_info(repo, files_metadata=True)
    except GatedRepoError:
        raise NotAvailableError(f"{repo} on {HUB} is gated: accept its terms on the hub and log in (`hf auth login`); "
                                "nothing was downloaded") from None
    except RepositoryNotFoundError:
        raise NotAvailableError(f"{repo} was not found on {HUB} (or needs a login); nothing was downloaded") from None
    except Exception as error:  # no network, DNS, proxy, TLS, timeouts: all mean the same to the user
        raise NotAvailableError(f"cannot reach {HUB} ({constants.ENDPOINT}) to list {repo} ({first_line(error)}); "
                                "nothing was downloaded") from None
    return {sibling.rfilename: sibling.size for sibling in info.siblings or []}


def url_size(url: str) -> int | None:
    """Content-Length from an HTTP HEAD request, or None when the server does not answer or say."""
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=10) as response:
            length = response.headers.get("Content-Length")
    except OSError:  # URLError and timeouts; the download itself will say what is wrong
        return None
    return int(length) if length and length.isdigit() else None


def plan_suite(suite, say: Callable[[str], None] = print) -> tuple[list[Item], list[str]]:
    """The files to download for `suite` (listed on the hub), and what it lacks that fetch cannot provide."""
    wanted, others = needs(suite)
    repos = [need.source for need in wanted if need.destination is None]
    listings = {}
    if repos:
        with hub_online(say):
            listings = {repo: repo_listing(repo) for repo in repos}
    sizes = {need.source: url_size(need.source) for need in wanted if need.destination is not None}
    return plan(wanted, listings, sizes), others


def download(items: list[Item], say: Callable[[str], None] = print) -> None:
    """Download the planned files; a repo with pickled weights only is converted to safetensors right after."""
    from huggingface_hub import snapshot_download

    for done, item in enumerate(items):
        kept = f"{done} of {len(items)} sources finished before it are kept; run the same command again to go on"
        source = item.need.source
        if item.need.destination is not None:
            try:
                with atomic(item.need.destination) as temporary:
                    urllib.request.urlretrieve(source, temporary)
            except OSError as error:
                raise NotAvailableError(f"downloading {source} failed ({first_line(error)}); {kept}") from None
            say(f"{source} → {item.need.destination}")
            continue
        try:
            with hub_online(), progress_bars():
                folder = Path(snapshot_download(source, allow_patterns=list(item.files)))
        except Exception as error:  # as in repo_listing: the network's many ways of failing are one to the user
            raise NotAvailableError(f"downloading {source} from {HUB} failed ({first_line(error)}); {kept}") from None
        # snapshot_download falls back to the cache when the hub stops answering: check every file arrived
        absent = [file for file in item.files if not (folder / file).is_file()]
        if absent:
            raise NotAvailableError(f"downloading {source} from {HUB} did not finish ({', '.join(absent)} missing); {kept}")
        say(f"{source} → {folder}")
        if item.convert:
            say(f"{source} has pickled weights only: converting them to safetensors (read with weights_only=True)")
            convert_to_safetensors(folder, say)


def size_text(size: int | None) -> str:
    """Decimal units, as the hub's own pages show sizes ("?" where a server did not say)."""
    from rich.filesize import decimal

    return "?" if size is None else decimal(size)
