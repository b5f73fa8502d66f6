"""The training input pipeline: a DataLoader that makes the next steps' batches in worker processes while this one trains.

A training batch depends only on (seed, step, micro-batch g) (`ExampleSet.training_batch`), so the dataset is
map-style over steps: item i is the micro-batches of step `start + i` for this process (g = micro × processes +
process index, the sequence `localctrl.train` walks), and any worker count, or a resumed start step, gives the same
batches. With the latent cache, each micro-batch carries its items' cached VAE posterior, and a condition read from
the manifest spares decoding the images at all.

Workers started by fork (Linux's default) share the examples and the cache's memory maps; under spawn or forkserver the
cache travels as its folder and is reopened there (`LatentCache.__reduce__`), never as its arrays.
"""

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from diffusers import DDPMScheduler
from torch.utils.data import DataLoader, Dataset

from localctrl.config import TrainConfig
from localctrl.data.conditions import FROM_MANIFEST
from localctrl.data.examples import Batch, ExampleSet
from localctrl.data.latent_cache import LatentCache
from localctrl.errors import InputError
from localctrl.models.stacks import Stack
from localctrl.train_step import encode_posterior, sample_noisy


@dataclass
class MicroBatch:
    batch: Batch
    posterior: tuple[torch.Tensor, torch.Tensor] | None = None  # the items' cached VAE (mean, std), float32; None: encode

    def noisy_latents(self, stack: Stack, scheduler: DDPMScheduler, timestep_kind: str, generator: torch.Generator,
                      device: torch.device, dtype: torch.dtype):
        """`train_step.sample_noisy` of the posterior on `device` in the VAE's dtype: the cached one, or the VAE's
        encoding of the images (cast to `dtype`, the frozen modules', first: what training has always done)."""
        if self.posterior is None:
            posterior = encode_posterior(stack, self.batch.images.to(device, dtype))
        else:
            posterior = tuple(part.to(device, stack.vae.dtype, non_blocking=True) for part in self.posterior)
        return sample_noisy(stack, scheduler, posterior, timestep_kind, generator)

    def pin_memory(self) -> "MicroBatch":
        """Page-locked copies (DataLoader's pin_memory calls this), for asynchronous copies to the GPU."""
        pin = lambda value: value.pin_memory() if isinstance(value, torch.Tensor) else value  # noqa: E731
        batch = dataclasses.replace(self.batch, **{f.name: pin(getattr(self.batch, f.name)) for f in dataclasses.fields(Batch)})
        return MicroBatch(batch, tuple(map(pin, self.posterior)) if self.posterior is not None else None)


class TrainingSteps(Dataset):
    """Item i: the micro-batches (`micro_batches`: their indices g, in order) of training step `start + i`."""

    def __init__(self, examples: ExampleSet, config: TrainConfig, start: int, micro_batches: Sequence[int],
                 cache: LatentCache | None = None):
        self.examples, self.config, self.start, self.micro_batches, self.cache = examples, config, start, list(micro_batches), cache
        # With cached latents the images are only needed where the condition is computed from them.
        self.images = cache is None or config.condition not in FROM_MANIFEST
        if cache is not None and len(cache) != len(examples):
            raise InputError(f"the latent cache {cache.folder} holds {len(cache)} items, the training set {len(examples)}: "
                             "delete that folder to rebuild it")

    def __len__(self) -> int:
        return max(self.config.steps - self.start, 0)

    def __getitem__(self, index: int) -> list[MicroBatch]:
        config, step = self.config, self.start + index
        batches = [self.examples.training_batch(config.seed, step, g, config.optim.batch_size, config.masks, config.masked,
                                                images=self.images) for g in self.micro_batches]
        return [MicroBatch(batch, self.cache.posterior(batch.positions) if self.cache else None) for batch in batches]


def training_loader(examples: ExampleSet, config: TrainConfig, start: int, micro_batches: Sequence[int],
                    cache: LatentCache | None = None, pin_memory: bool = False) -> DataLoader:
    """Steps start, start + 1, … up to `config.steps`, made by `config.data.workers` processes (0: in this one), each
    `config.data.prefetch` steps ahead."""
    workers = config.data.workers
    return DataLoader(TrainingSteps(examples, config, start, micro_batches, cache), batch_size=None, shuffle=False,
                      num_workers=workers, prefetch_factor=config.data.prefetch if workers else None, pin_memory=pin_memory,
                      generator=torch.Generator().manual_seed(config.seed))  # its worker seeds: not from the global RNG
