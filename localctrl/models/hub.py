"""Find pretrained weights on disk: a local folder, or the Hugging Face cache. Fail fast and clearly."""

from pathlib import Path

from huggingface_hub import constants, snapshot_download
from huggingface_hub.errors import HFValidationError

# Configs, tokenizer files and the main safetensors weights of a diffusers model or pipeline folder; not
# the pickled, fp16/EMA variants or single-file checkpoints that hub repos also hold (tens of GB for SD).
WEIGHT_PATTERNS = [
    "*.json",
    "*.txt",
    "diffusion_pytorch_model.safetensors",
    "model.safetensors",
    "*/diffusion_pytorch_model.safetensors",
    "*/model.safetensors",
]
SKIPPED_PATTERNS = ["safety_checker/*"]


class ModelNotAvailableError(FileNotFoundError):
    """Pretrained weights that are neither a local folder nor in the Hugging Face cache."""


def how_to_provide(repo_id: str) -> str:
    return (
        f"To provide it: pass a local folder in diffusers format instead of '{repo_id}', or on a machine with "
        f"network run `hf download {repo_id}` and copy its Hugging Face cache to this machine "
        f"(set HF_HOME or HF_HUB_CACHE to point at it; the cache looked in is {constants.HF_HUB_CACHE})."
    )


def resolve_pretrained(name_or_path: str | Path, what: str = "model") -> Path:
    """Return the local folder holding `name_or_path` (a folder, or a hub id already in the cache).

    A hub id is downloaded only when the hub is reachable and HF_HUB_OFFLINE is not set; any failure is
    one `ModelNotAvailableError` naming the model and how to supply it, raised in seconds.
    """
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        return path
    repo_id = str(name_or_path)
    if path.suffix or repo_id.startswith((".", "/", "~")) or repo_id.count("/") != 1:
        raise ModelNotAvailableError(f"{what} '{repo_id}' is not a folder (and does not look like a hub id 'org/name').")
    try:
        return Path(snapshot_download(repo_id, local_files_only=True))
    except HFValidationError as error:
        raise ModelNotAvailableError(f"{what} '{repo_id}' is neither a local folder nor a valid hub id: {error}") from None
    except FileNotFoundError:
        pass  # not cached: try the hub below unless offline
    if constants.HF_HUB_OFFLINE:
        raise ModelNotAvailableError(
            f"{what} '{repo_id}' is not in the Hugging Face cache and HF_HUB_OFFLINE is set. {how_to_provide(repo_id)}"
        )
    try:
        return Path(snapshot_download(repo_id, allow_patterns=WEIGHT_PATTERNS, ignore_patterns=SKIPPED_PATTERNS))
    except Exception as error:  # network, auth, missing repo: all end the same way for the user
        raise ModelNotAvailableError(
            f"{what} '{repo_id}' could not be downloaded ({type(error).__name__}: {str(error).splitlines()[0]}). "
            f"{how_to_provide(repo_id)}"
        ) from None


def find_cached(repo_id: str, filename: str) -> Path | None:
    """The cached file `filename` of hub repo `repo_id`, or None; never touches the network."""
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(repo_id, filename)
    return Path(found) if isinstance(found, str) else None
