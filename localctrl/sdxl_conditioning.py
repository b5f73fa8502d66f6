"""SDXL's text and micro-conditioning, as diffusers' `StableDiffusionXLPipeline` computes them (issue 16's sampler and
trainer build on it; the tests check equality with the pipeline's own `encode_prompt`).

- text: both CLIP encoders read the prompt; each one's penultimate hidden states are concatenated (SDXL's 2048-wide
  cross-attention context) and the second encoder's projected end-of-text embedding is the pooled embedding;
- micro-conditioning (`add_time_ids`): the original size, the crop's top-left corner and the target size, six numbers
  per image that the UNet's `text_time` embedding reads beside the pooled embedding.
"""

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
