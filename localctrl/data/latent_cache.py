"""The latent cache: every training image's VAE posterior and every caption's text encoding, computed once.

A training step otherwise runs the frozen VAE encoder on its images and the text encoder on its new captions, the
same work every epoch. The cache stores, for each train item of an ExampleSet (in its order), the posterior's mean
and std (so a step still draws `mean + std · ε` from its own generator: `train_step.sample_noisy`, the same draws as
when encoding on the fly) and, for each unique caption and the empty one caption dropout uses, what
`TextEncoderCache` would have made of it (SDXL: both encoders' context and the pooled embedding). Conditions and
masks are still made per batch.

On disk: `<cache_dir>/<key>/` with .npy files (float32, read memory-mapped: a worker process reads only its rows),
the captions in row order (captions.json) and meta.json, written last: a folder without it is incomplete and is
rebuilt. Every file is written atomically. The key hashes the VAE's and text encoders' weights (and tokenizers), the
data (the manifest's bytes and each image's path, size and mtime; for the shapes world its seed, item count and
split), the image size and the dtype: any change gives another folder, built anew.

Valid because training applies no augmentation (no random crops or flips): an item's latents never change between
epochs. If augmentation is ever added, the cache must be refused with it (or store each augmented view).
"""

import json
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack
from pathlib import Path

import numpy as np
import torch
from rich.progress import Progress

from localctrl.common.files import atomic, read_json, sha256, write_text
from localctrl.common.hashing import json_hash, module_hash
from localctrl.common.locks import locked
from localctrl.common.progress import step_bar
from localctrl.data.examples import ExampleSet
from localctrl.data.manifest import MANIFEST
from localctrl.errors import InputError
from localctrl.models.stacks import Stack
from localctrl.text_conditioning import TextEncoderCache
from localctrl.train_step import encode_posterior

VERSION = 1  # bump when what is stored, or how, changes: every cache is then rebuilt
META, CAPTIONS = "meta.json", "captions.json"
# Images per VAE call while building: a GPU is faster in batches, a CPU one image at a time (at 512² SD's VAE encodes
# 3.8 s an image alone, 5.1 s an image in batches of 8, on 2 cores). Captions are encoded one at a time regardless.
CHUNK = {"cpu": 1}
CAPTION_CHUNK = 64  # captions whose rows are held in memory at once


def data_identity(examples: ExampleSet) -> dict:
    """What the examples' images and captions are made from, without reading them."""
    if examples.source == "shapes":
        return {"world_seed": examples.world_seed, "items": len(examples), "split": examples.split}
    images = []
    for item in examples.items:
        stat = item.image.stat()
        images.append([str(item.image), stat.st_size, stat.st_mtime_ns])
    return {"manifest": sha256(Path(examples.source) / MANIFEST), "images": json_hash(images)}


def tokenizer_identity(tokenizer) -> str:
    """A tokenizer's vocabulary, merges and length: what turns a caption into the ids its encoder reads."""
    ranks = getattr(tokenizer, "bpe_ranks", {})
    return json_hash([sorted(tokenizer.get_vocab().items()), [" ".join(pair) for pair in sorted(ranks, key=ranks.get)],
                      tokenizer.model_max_length, str(tokenizer.pad_token)])


def cache_identity(stack: Stack, examples: ExampleSet, dtype: torch.dtype) -> dict:
    """Everything the cached arrays depend on; `dtype`: the frozen modules' (the text rows and the images are cast to it)."""
    encoders = [(stack.tokenizer, stack.text_encoder)] + ([(stack.tokenizer_2, stack.text_encoder_2)] if stack.is_xl else [])
    return {"version": VERSION, "vae": module_hash(stack.vae),
            "text_encoders": [[module_hash(encoder), tokenizer_identity(tokenizer)] for tokenizer, encoder in encoders],
            "data": json_hash(data_identity(examples)), "image_size": examples.image_size, "dtype": str(dtype)}


def cache_key(identity: dict) -> str:
    return json_hash(identity)[:16]


def load_array(path: Path) -> np.ndarray:
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as error:
        raise InputError(f"{path}: not a readable latent-cache array ({error}); delete {path.parent} to rebuild it") from None


class StoredText(Mapping):
    """caption → (context, pooled or None) rows in `dtype`, read from the memory-mapped arrays on lookup."""

    def __init__(self, context: np.ndarray, pooled: np.ndarray | None, captions: list[str], dtype: torch.dtype):
        self.context, self.pooled, self.dtype = context, pooled, dtype
        self.rows = {caption: row for row, caption in enumerate(captions)}

    def __getitem__(self, caption: str) -> tuple[torch.Tensor, torch.Tensor | None]:
        row = self.rows[caption]
        read = lambda array: torch.from_numpy(np.array(array[row])).to(self.dtype)  # noqa: E731 (a copy: mmaps are read-only)
        return read(self.context), read(self.pooled) if self.pooled is not None else None

    def __contains__(self, caption) -> bool:
        return caption in self.rows

    def __iter__(self) -> Iterator[str]:
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)


class LatentCache:
    """A built cache, opened: `posterior(positions)` for the VAE part, `text` for `TextEncoderCache(stored=...)`."""

    def __init__(self, folder: Path, dtype: torch.dtype):
        self.folder, self.meta = folder, read_json(folder / META, "latent cache record")
        self.mean, self.std = load_array(folder / "mean.npy"), load_array(folder / "std.npy")
        pooled = load_array(folder / "pooled.npy") if (folder / "pooled.npy").is_file() else None
        self.text = StoredText(load_array(folder / "context.npy"), pooled, read_json(folder / CAPTIONS, "latent cache captions"),
                               dtype)
        if len(self.mean) != self.meta["items"] or len(self.text.context) != len(self.text):
            raise InputError(f"{folder}: its arrays do not match its record; delete the folder to rebuild it")

    def __len__(self) -> int:
        return len(self.mean)

    def __reduce__(self):  # to a worker process: the folder, reopened there (pickling a memmap would copy the arrays)
        return LatentCache, (self.folder, self.text.dtype)

    def posterior(self, positions: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean, std) float32 of the items at `positions` (cast them to the VAE's dtype and device to use them)."""
        return torch.from_numpy(self.mean[positions]), torch.from_numpy(self.std[positions])


class Rows:
    """An .npy file of `count` rows filled a chunk at a time (memory-mapped, never whole in memory); it replaces its path
    only when the ExitStack it was opened on closes without an error."""

    def __init__(self, files: ExitStack, path: Path, count: int):
        self.temporary, self.count, self.array = files.enter_context(atomic(path)), count, None

    def write(self, start: int, values: torch.Tensor) -> None:
        values = values.detach().float().cpu().numpy()
        if self.array is None:
            self.array = np.lib.format.open_memmap(self.temporary, mode="w+", dtype=np.float32, shape=(self.count, *values.shape[1:]))
        self.array[start:start + len(values)] = values

    def close(self) -> None:
        self.array.flush()
        self.array = None  # unmapped before `atomic` moves the file into place


def build(stack: Stack, examples: ExampleSet, folder: Path, identity: dict, device: torch.device, dtype: torch.dtype,
          progress: Progress | None = None) -> None:
    """Encode every item's image and every caption (each alone, as training's TextEncoderCache does) into `folder`."""
    captions = sorted({examples.caption(position) for position in range(len(examples))} | {""})
    encode_text = TextEncoderCache(stack, device, dtype, alone=True)
    chunk = CHUNK.get(torch.device(device).type, 8)
    image_chunks = [list(range(start, min(start + chunk, len(examples)))) for start in range(0, len(examples), chunk)]
    text_chunks = [captions[start:start + CAPTION_CHUNK] for start in range(0, len(captions), CAPTION_CHUNK)]
    with ExitStack() as files, step_bar(progress, "latent cache", len(image_chunks) + len(text_chunks)) as bar:
        mean, std = Rows(files, folder / "mean.npy", len(examples)), Rows(files, folder / "std.npy", len(examples))
        context = Rows(files, folder / "context.npy", len(captions))
        pooled = Rows(files, folder / "pooled.npy", len(captions)) if stack.is_xl else None
        for positions in image_chunks:
            posterior = encode_posterior(stack, examples.images(positions).to(device, dtype))  # images as training casts them
            mean.write(positions[0], posterior[0])
            std.write(positions[0], posterior[1])
            bar.advance()
        for start, group in zip(range(0, len(captions), CAPTION_CHUNK), text_chunks):
            text = encode_text(group)
            context.write(start, text.context)
            if pooled is not None:
                pooled.write(start, text.pooled)
            encode_text.cache.clear()  # only this chunk's rows in memory
            bar.advance()
        for rows in (mean, std, context, *([pooled] if pooled else [])):
            rows.close()
    write_text(folder / CAPTIONS, json.dumps(captions, ensure_ascii=False) + "\n")
    record = {"identity": identity, "items": len(examples), "captions": len(captions)}
    write_text(folder / META, json.dumps(record, indent=2) + "\n")  # last: the folder is complete


def complete(folder: Path, identity: dict) -> bool:
    return (folder / META).is_file() and read_json(folder / META, "latent cache record").get("identity") == identity


def changes_since_last(root: Path, identity: dict) -> str:
    """Which inputs differ from the newest other complete cache under `root` ('' when there is none)."""
    records = sorted(root.glob(f"*/{META}"), key=lambda path: path.stat().st_mtime_ns) if root.is_dir() else []
    for record in reversed(records):
        before = read_json(record, "latent cache record").get("identity", {})
        if before != identity:
            return ", ".join(name for name in identity if before.get(name) != identity[name])
    return ""


def latent_cache(stack: Stack, examples: ExampleSet, root: Path, device: torch.device, dtype: torch.dtype, main: bool = True,
                 wait: Callable[[], None] = lambda: None, progress: Progress | None = None,
                 say: Callable[[str], None] = print) -> LatentCache:
    """The cache of `examples` under `root`, built first by the main process when missing; the other processes `wait`
    (a barrier every process calls) and then open it. Call after `freeze`: the key hashes the weights as they run."""
    identity = cache_identity(stack, examples, dtype)
    folder = Path(root) / cache_key(identity)
    if main and not complete(folder, identity):
        with locked(folder.with_name(folder.name + ".lock"), f"building the latent cache {folder}", say):
            if not complete(folder, identity):  # another run may have built it while this one waited
                changed = changes_since_last(Path(root), identity)
                say(f"latent cache {folder}: building it ({f'changed: {changed}' if changed else 'none yet for these weights and data'})")
                build(stack, examples, folder, identity, device, dtype, progress)
    wait()
    return LatentCache(folder, dtype)
