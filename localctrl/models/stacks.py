"""Model stacks: VAE + text encoder + tokenizer + UNet + scheduler, from one name.

`load_stack(base)` accepts
- `tiny` / `sd15-random` (SD 1.x), `tiny-xl` / `sdxl-random` (SDXL): built from `architectures` with seeded random
  weights (mechanics and speed tests);
- `shapes-base`: the shapes world's text-to-image model, trained by this project and shipped with it;
- a local folder in the diffusers pipeline layout (what `Stack.save_pretrained` writes);
- a hub id such as `stable-diffusion-v1-5/stable-diffusion-v1-5`, taken from the Hugging Face cache.
An SDXL stack (a pipeline folder with `text_encoder_2/` and `tokenizer_2/`) also holds the second text encoder and its
tokenizer, and the SDXL pipelines' `force_zeros_for_empty_prompt` (model_index.json; the SDXL default, True, elsewhere).
"""

from dataclasses import dataclass
from pathlib import Path

import diffusers
import torch
from diffusers import (
    AutoencoderKL,
    DDPMScheduler,
    StableDiffusionPipeline,
    StableDiffusionXLPipeline,
    T2IAdapter,
    UNet2DConditionModel,
)
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

from localctrl.common.files import read_json
from localctrl.common.seeding import seeded
from localctrl.models.adapters import check_adapter_fits
from localctrl.models.architectures import SD15, SDXL, TINY, TINY_XL, Architecture
from localctrl.models.convert import check_safetensors
from localctrl.models.tokenizers import check_tokenizer_fits, clip_tokenizer
from localctrl.models.weights import SHAPES_BASE_DIR, ModelNotAvailableError, resolve_pretrained, shipped_folder

RANDOM_BASES = {"tiny": TINY, "sd15-random": SD15, "tiny-xl": TINY_XL, "sdxl-random": SDXL}
SHIPPED_BASES = {"shapes-base": SHAPES_BASE_DIR}
PIPELINE_PARTS = ("vae", "text_encoder", "tokenizer", "unet", "scheduler")
SDXL_PARTS = ("text_encoder_2", "tokenizer_2")  # what an SDXL pipeline folder adds


@dataclass
class Stack:
    vae: AutoencoderKL
    text_encoder: CLIPTextModel
    tokenizer: CLIPTokenizer
    unet: UNet2DConditionModel
    scheduler: diffusers.SchedulerMixin
    source: str  # the name it was loaded from, recorded in runs
    text_encoder_2: CLIPTextModelWithProjection | None = None  # SDXL's second text encoder; None: SD 1.x
    tokenizer_2: CLIPTokenizer | None = None
    force_zeros_for_empty_prompt: bool = True  # SDXL: an empty negative prompt is zeros (localctrl.text_conditioning)

    @property
    def is_xl(self) -> bool:
        return self.text_encoder_2 is not None

    @property
    def vae_scale_factor(self) -> int:
        return 2 ** (len(self.vae.config.block_out_channels) - 1)

    @property
    def image_size(self) -> int:
        """The native (square) image size: the UNet's sample size in pixels."""
        return self.unet.config.sample_size * self.vae_scale_factor

    def modules(self) -> dict[str, torch.nn.Module]:
        second = {"text_encoder_2": self.text_encoder_2} if self.is_xl else {}
        return {"vae": self.vae, "text_encoder": self.text_encoder, **second, "unet": self.unet}

    def to(self, device: str | torch.device | None = None, dtype: torch.dtype | None = None) -> "Stack":
        # dtype only when given: diffusers warns about fp32 modules whenever `to` gets a dtype keyword, even None
        moves = {"device": device} | ({"dtype": dtype} if dtype is not None else {})
        for module in self.modules().values():
            module.to(**moves)
        return self

    def parameter_counts(self) -> dict[str, int]:
        return {name: sum(p.numel() for p in module.parameters()) for name, module in self.modules().items()}

    def token_ids(self, prompts: list[str]) -> torch.Tensor:
        """Prompt token ids padded to the tokenizer's length, as diffusers' pipelines encode them."""
        return self.tokenizer(prompts, padding="max_length", max_length=self.tokenizer.model_max_length, truncation=True,
                              return_tensors="pt").input_ids

    def cut_prompts(self, prompts: list[str]) -> list[str]:
        """The prompts longer than the text encoder reads (the tokenizer's model_max_length): their ends are dropped."""
        unique = sorted(set(prompts))
        lengths = [len(ids) for ids in self.tokenizer(unique, truncation=False, verbose=False).input_ids]
        return [prompt for prompt, length in zip(unique, lengths) if length > self.tokenizer.model_max_length]

    def check_adapter(self, adapter: T2IAdapter, image_size: int | None = None) -> None:
        check_adapter_fits(adapter, self.unet, image_size or self.image_size, self.vae_scale_factor)

    def pipeline(self) -> StableDiffusionPipeline | StableDiffusionXLPipeline:
        """The stock diffusers text-to-image pipeline over this stack's modules (no safety checker, no watermark)."""
        if self.is_xl:
            return StableDiffusionXLPipeline(vae=self.vae, text_encoder=self.text_encoder, text_encoder_2=self.text_encoder_2,
                                             tokenizer=self.tokenizer, tokenizer_2=self.tokenizer_2, unet=self.unet,
                                             scheduler=self.scheduler, add_watermarker=False,
                                             force_zeros_for_empty_prompt=self.force_zeros_for_empty_prompt)
        return StableDiffusionPipeline(
            vae=self.vae,
            text_encoder=self.text_encoder,
            tokenizer=self.tokenizer,
            unet=self.unet,
            scheduler=self.scheduler,
            safety_checker=None,
            feature_extractor=None,
            requires_safety_checker=False,
        )

    def save_pretrained(self, folder: str | Path) -> Path:
        """Write the diffusers pipeline folder (safetensors) that `load_stack(folder)` and stock diffusers load."""
        self.pipeline().save_pretrained(folder, safe_serialization=True)
        return Path(folder)


def load_stack(base: str | Path, seed: int = 0, dtype: torch.dtype | None = None) -> Stack:
    """The stack named `base`: a random-weight architecture name, a pipeline folder, or a cached hub id."""
    if str(base) in RANDOM_BASES:
        stack = build_random_stack(RANDOM_BASES[str(base)], seed=seed)
        return stack.to(dtype=dtype) if dtype is not None else stack
    if str(base) in SHIPPED_BASES:
        folder = shipped_folder(str(base), SHIPPED_BASES[str(base)], "model_index.json")
        return load_stack_folder(folder, source=str(base), dtype=dtype)
    return load_stack_folder(resolve_pretrained(base, what="base model"), source=str(base), dtype=dtype)


def build_random_stack(arch: Architecture, seed: int = 0) -> Stack:
    """All modules of `arch` with random weights drawn from `seed` (identical weights for the same seed)."""
    with seeded(seed):
        vae = AutoencoderKL(**arch.vae)
    with seeded(seed + 1):
        text_encoder = CLIPTextModel(CLIPTextConfig(**arch.text_encoder))
    with seeded(seed + 2):
        unet = UNet2DConditionModel(**arch.unet)
    second = {}
    if arch.is_xl:
        with seeded(seed + 3):
            second = {"text_encoder_2": CLIPTextModelWithProjection(CLIPTextConfig(**arch.text_encoder_2)).eval(),
                      "tokenizer_2": clip_tokenizer()}
    stack = Stack(
        vae=vae.eval(),
        text_encoder=text_encoder.eval(),
        tokenizer=clip_tokenizer(),
        unet=unet.eval(),
        scheduler=DDPMScheduler.from_config(arch.scheduler),
        source=f"{arch.name}-random(seed={seed})",
        **second,
    )
    check_tokenizer_fits(stack.tokenizer, arch.text_encoder["vocab_size"], stack.source)
    return stack


def load_stack_folder(folder: Path, source: str | None = None, dtype: torch.dtype | None = None) -> Stack:
    """A stack from a diffusers pipeline folder; weights from safetensors only (never unpickled)."""
    source = source or str(folder)
    missing = [part for part in PIPELINE_PARTS if not (folder / part).is_dir()]
    if missing:
        raise ModelNotAvailableError(
            f"base model {source} ({folder}) lacks {', '.join(p + '/' for p in missing)}: expected the diffusers "
            f"pipeline layout with {', '.join(p + '/' for p in PIPELINE_PARTS)}"
        )
    check_safetensors(folder, f"base model {source}", subfolders=("vae", "unet", "text_encoder"), name=source)
    # transformers 5 loads in the dtype a config names (SDXL's text encoders say float16) unless told: one dtype for all.
    text_dtype = dtype or torch.float32
    text_encoder = CLIPTextModel.from_pretrained(folder, subfolder="text_encoder", use_safetensors=True, dtype=text_dtype)
    tokenizer = CLIPTokenizer.from_pretrained(folder, subfolder="tokenizer")
    check_tokenizer_fits(tokenizer, text_encoder.config.vocab_size, source)
    scheduler_class = getattr(diffusers, DDPMScheduler.load_config(folder, subfolder="scheduler")["_class_name"])
    second = {}
    if (folder / SDXL_PARTS[0]).is_dir():  # SDXL's layout
        check_safetensors(folder, f"base model {source}", subfolders=("text_encoder_2",), name=source)
        second = {"text_encoder_2": CLIPTextModelWithProjection.from_pretrained(folder, subfolder="text_encoder_2",
                                                                                use_safetensors=True, dtype=text_dtype).eval(),
                  "tokenizer_2": CLIPTokenizer.from_pretrained(folder, subfolder="tokenizer_2")}
        index = folder / "model_index.json"
        if index.is_file():
            second["force_zeros_for_empty_prompt"] = read_json(index, "pipeline index").get("force_zeros_for_empty_prompt", True)
    return Stack(
        vae=AutoencoderKL.from_pretrained(folder, subfolder="vae", use_safetensors=True, torch_dtype=dtype).eval(),
        text_encoder=text_encoder.eval(),
        tokenizer=tokenizer,
        unet=UNet2DConditionModel.from_pretrained(folder, subfolder="unet", use_safetensors=True, torch_dtype=dtype).eval(),
        scheduler=scheduler_class.from_pretrained(folder, subfolder="scheduler"),
        source=source,
        **second,
    )
