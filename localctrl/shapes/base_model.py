"""shapes-base: the small latent-diffusion text-to-image model of the shapes world (architecture and location).

Sized for 2 CPU cores (docs/method.md, "The shapes world"): an AutoencoderKL with 4 latent channels and 4× downsampling
(64² images → 16² latents) without attention, so it is fully convolutional; a 3-layer CLIP text encoder on a
word-level tokenizer (captions ≤ 24 tokens, so cross-attention looks at 24 keys, not SD's 77); a UNet with
cross-attention at every level (binding colours to shapes is decided at the coarse levels).
"""


from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

from localctrl.common.seeding import seeded
from localctrl.models.architectures import SD_SCHEDULER
from localctrl.models.stacks import Stack
from localctrl.models.tokenizers import word_tokenizer
from localctrl.shapes.scene import vocabulary

MAX_PROMPT_TOKENS = 24

VAE = dict(
    in_channels=3,
    out_channels=3,
    down_block_types=("DownEncoderBlock2D",) * 3,
    up_block_types=("UpDecoderBlock2D",) * 3,
    block_out_channels=(16, 32, 64),
    layers_per_block=1,
    latent_channels=4,
    norm_num_groups=8,
    sample_size=64,
    mid_block_add_attention=False,
)
TEXT_ENCODER = dict(hidden_size=128, intermediate_size=512, num_hidden_layers=3, num_attention_heads=4)
UNET = dict(
    sample_size=16,
    in_channels=4,
    out_channels=4,
    layers_per_block=1,
    block_out_channels=(32, 64, 96),
    down_block_types=("CrossAttnDownBlock2D",) * 3,
    up_block_types=("CrossAttnUpBlock2D",) * 3,
    cross_attention_dim=TEXT_ENCODER["hidden_size"],
    attention_head_dim=4,
    norm_num_groups=16,
)


def shapes_tokenizer() -> CLIPTokenizer:
    return word_tokenizer(vocabulary(), max_length=MAX_PROMPT_TOKENS)


def text_encoder_config(tokenizer: CLIPTokenizer) -> CLIPTextConfig:
    return CLIPTextConfig(
        vocab_size=len(tokenizer),
        max_position_embeddings=MAX_PROMPT_TOKENS,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        **TEXT_ENCODER,
    )


def build_untrained_base(seed: int = 0) -> Stack:
    """shapes-base before training: seeded random weights (training starts here)."""
    tokenizer = shapes_tokenizer()
    with seeded(seed):
        vae = AutoencoderKL(**VAE)
    with seeded(seed + 1):
        text_encoder = CLIPTextModel(text_encoder_config(tokenizer))
    with seeded(seed + 2):
        unet = UNet2DConditionModel(**UNET)
    # DDIM is what evaluation samples with; training reads the same betas through DDPMScheduler.from_config.
    return Stack(vae, text_encoder, tokenizer, unet, DDIMScheduler.from_config(SD_SCHEDULER), source=f"shapes-base-untrained(seed={seed})")
