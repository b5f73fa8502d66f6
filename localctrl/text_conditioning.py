"""What the UNet reads of a batch's prompts, for SD 1.x and SDXL stacks, as diffusers' pipelines compute it.

- SD 1.x: the text encoder's last hidden states (the cross-attention context).
- SDXL (`StableDiffusionXLPipeline.encode_prompt` and `_get_add_time_ids`; the tests check equality): both CLIP
  encoders read the prompt; each one's penultimate hidden states are concatenated (SDXL's 2048-wide context) and the
  second encoder's projected end-of-text embedding is the pooled embedding. The UNet's `text_time` embedding reads it
  beside the micro-conditioning (`add_time_ids`): the original size, the crop's top-left corner and the target size,
  six numbers per image. localctrl's items are already crops at the model's size, so original = target = that size
  and the crop is (0, 0), what the SDXL pipelines use by default.
- An empty negative prompt on SDXL is zeros (context and pooled), the SDXL pipelines' `force_zeros_for_empty_prompt`.
"""

from collections import ChainMap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from localctrl.models.stacks import Stack


@torch.no_grad()
def encode_prompts_xl(stack: Stack, prompts: list[str]) -> tuple[Tensor, Tensor]:
    """(context (N, 77, d1 + d2), pooled (N, d2)) of prompts, on the text encoders' device."""
    contexts, pooled = [], None
    for tokenizer, encoder in ((stack.tokenizer, stack.text_encoder), (stack.tokenizer_2, stack.text_encoder_2)):
        ids = tokenizer(prompts, padding="max_length", max_length=tokenizer.model_max_length, truncation=True,
                        return_tensors="pt").input_ids.to(encoder.device)
        output = encoder(ids, output_hidden_states=True)
        pooled = output[0]  # the second encoder's (it is the last): text_embeds, the projected end-of-text token
        contexts.append(output.hidden_states[-2])  # the penultimate layer, as SDXL was trained (clip_skip None)
    return torch.cat(contexts, dim=-1), pooled


def add_time_ids(count: int, original: tuple[int, int], crop: tuple[int, int] = (0, 0),
                 target: tuple[int, int] | None = None) -> Tensor:
    """(count, 6): original (h, w), crop top-left (y, x), target (h, w; default: the original) per image."""
    row = [*original, *crop, *(target or original)]
    return torch.tensor([row] * count, dtype=torch.float32)


@dataclass
class TextConditioning:
    """A batch's text conditioning: the context, and for SDXL the pooled embedding and the size/crop numbers."""

    context: Tensor  # (N, tokens, dim)
    pooled: Tensor | None = None  # (N, d2), SDXL only
    time_ids: Tensor | None = None  # (N, 6), SDXL only

    def added_cond_kwargs(self) -> dict[str, Tensor] | None:
        return None if self.pooled is None else {"text_embeds": self.pooled, "time_ids": self.time_ids}

    def unet_kwargs(self) -> dict:
        """The UNet's (or a ControlNet's) keyword arguments for this conditioning."""
        return {"encoder_hidden_states": self.context, "added_cond_kwargs": self.added_cond_kwargs()}

    def __getitem__(self, rows) -> "TextConditioning":
        return TextConditioning(*(None if part is None else part[rows] for part in (self.context, self.pooled, self.time_ids)))

    @staticmethod
    def cat(parts: Sequence["TextConditioning"]) -> "TextConditioning":
        first = parts[0]
        joined = lambda name: None if getattr(first, name) is None else torch.cat([getattr(p, name) for p in parts])  # noqa: E731
        return TextConditioning(joined("context"), joined("pooled"), joined("time_ids"))


class TextEncoderCache:
    """Prompt → its TextConditioning row, each unique prompt encoded once per sampler call or training run.

    `alone`: encode each prompt in a batch of its own. A prompt's embedding then does not depend on the prompts it was
    encoded beside (matmul kernels change with the batch size: SDXL's pooled projection differs in its last bits),
    which a resumed training run, starting with an empty cache, needs to repeat the uninterrupted one bit for bit.
    `stored`: rows encoded before (prompt → (context, pooled or None) in `dtype`; the latent cache's), looked up first.
    """

    def __init__(self, stack: Stack, device: torch.device, dtype: torch.dtype, alone: bool = False,
                 stored: Mapping[str, tuple[Tensor, Tensor | None]] | None = None):
        self.stack, self.device, self.dtype, self.alone = stack, device, dtype, alone
        self.cache = ChainMap({}, stored) if stored is not None else {}  # new rows go to the first map
        size = stack.image_size
        self.time_ids = add_time_ids(1, (size, size)).to(device, dtype) if stack.is_xl else None

    @torch.no_grad()
    def __call__(self, prompts: Sequence[str]) -> TextConditioning:
        missing = sorted(set(prompts) - self.cache.keys())
        if missing:
            for group in ([prompt] for prompt in missing) if self.alone else [missing]:
                self._encode(group)
        rows = [self.cache[prompt] for prompt in prompts]
        context = torch.stack([row[0] for row in rows]).to(self.device)
        if not self.stack.is_xl:
            return TextConditioning(context)
        pooled = torch.stack([row[1] for row in rows]).to(self.device)
        return TextConditioning(context, pooled, self.time_ids.repeat(len(prompts), 1))

    def _encode(self, prompts: list[str]) -> None:
        if self.stack.is_xl:
            context, pooled = encode_prompts_xl(self.stack, prompts)
            self.cache.update(zip(prompts, zip(context.to(self.dtype), pooled.to(self.dtype))))
        else:
            embeddings = self.stack.text_encoder(self.stack.token_ids(prompts).to(self.device))[0].to(self.dtype)
            self.cache.update((prompt, (row, None)) for prompt, row in zip(prompts, embeddings))

    def negative(self, prompt: str, count: int) -> TextConditioning:
        """The unconditional branch of classifier-free guidance for `count` images."""
        encoded = self([prompt] * count)
        if self.stack.is_xl and prompt == "" and self.stack.force_zeros_for_empty_prompt:
            return TextConditioning(torch.zeros_like(encoded.context), torch.zeros_like(encoded.pooled), encoded.time_ids)
        return encoded
