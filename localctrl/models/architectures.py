"""Architecture configs of the model stacks localctrl can build with random weights.

`SD15` has the exact shapes of Stable Diffusion 1.x (v1.4 and v1.5 share them): it lets speed tests run
on a GPU without downloading weights. `TINY` is a seconds-on-CPU stack for mechanics tests: a 3-level
VAE (64² images → 16² latents), a 2-layer CLIP text encoder on the real CLIP vocabulary, and a small
cross-attention UNet. Matching T2I-Adapters are derived from the UNet (localctrl.models.adapters.adapter_config).
`SDXL` and `TINY_XL` are Stable Diffusion XL's shapes, exact and cut small: a second text encoder (with a
projection: its pooled embedding), the UNet's `text_time` added conditioning (pooled embedding + the size and crop
micro-conditioning), and 3 down blocks, the first without cross-attention.
"""

from dataclasses import dataclass, field

CLIP_VOCAB_SIZE = 49408  # the CLIP BPE vocabulary, shared by SD 1.x and open_clip
CLIP_MAX_LENGTH = 77

# SD 1.x training noise schedule (scheduler_config.json of the official checkpoints).
SD_SCHEDULER = dict(
    num_train_timesteps=1000,
    beta_start=0.00085,
    beta_end=0.012,
    beta_schedule="scaled_linear",
    prediction_type="epsilon",
    clip_sample=False,
    set_alpha_to_one=False,
    steps_offset=1,
)


@dataclass(frozen=True)
class Architecture:
    """Configs of every component of a stack, as keyword arguments of the diffusers/transformers classes."""

    name: str
    image_size: int
    vae: dict
    text_encoder: dict
    unet: dict
    scheduler: dict = field(default_factory=lambda: dict(SD_SCHEDULER))
    text_encoder_2: dict | None = None  # SDXL's second text encoder (CLIPTextModelWithProjection); None: SD 1.x

    @property
    def is_xl(self) -> bool:
        return self.text_encoder_2 is not None


SD15 = Architecture(
    name="sd15",
    image_size=512,
    vae=dict(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=(128, 256, 512, 512),
        layers_per_block=2,
        latent_channels=4,
        sample_size=512,
        scaling_factor=0.18215,
    ),
    text_encoder=dict(
        vocab_size=CLIP_VOCAB_SIZE,
        hidden_size=768,
        intermediate_size=3072,
        num_hidden_layers=12,
        num_attention_heads=12,
        max_position_embeddings=CLIP_MAX_LENGTH,
        hidden_act="quick_gelu",
        projection_dim=768,
    ),
    unet=dict(
        sample_size=64,
        in_channels=4,
        out_channels=4,
        layers_per_block=2,
        block_out_channels=(320, 640, 1280, 1280),
        down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
        up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
        cross_attention_dim=768,
        attention_head_dim=8,
    ),
)

TINY = Architecture(
    name="tiny",
    image_size=64,
    vae=dict(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 3,
        up_block_types=("UpDecoderBlock2D",) * 3,
        block_out_channels=(16, 32, 32),
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=8,
        sample_size=64,
    ),
    text_encoder=dict(
        vocab_size=CLIP_VOCAB_SIZE,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=CLIP_MAX_LENGTH,
        projection_dim=32,
    ),
    unet=dict(
        sample_size=16,
        in_channels=4,
        out_channels=4,
        layers_per_block=1,
        block_out_channels=(32, 64, 64),
        down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=32,
        attention_head_dim=8,
        norm_num_groups=8,
    ),
)

# SDXL's noise schedule (stabilityai/stable-diffusion-xl-base-1.0, scheduler_config.json): SD's, with leading spacing.
SDXL_SCHEDULER = dict(SD_SCHEDULER, timestep_spacing="leading")
# What every SDXL-shaped UNet shares: 3 levels, the first without cross-attention, and the text_time added embedding.
SDXL_UNET_LAYOUT = dict(
    in_channels=4,
    out_channels=4,
    down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
    up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
    use_linear_projection=True,
    addition_embed_type="text_time",
)

SDXL = Architecture(
    name="sdxl",
    image_size=1024,
    vae=dict(SD15.vae, sample_size=1024, scaling_factor=0.13025, force_upcast=True),  # its fp16 VAE overflows
    text_encoder=dict(SD15.text_encoder, projection_dim=768),  # CLIP ViT-L, its penultimate layer
    text_encoder_2=dict(vocab_size=CLIP_VOCAB_SIZE, hidden_size=1280, intermediate_size=5120, num_hidden_layers=32,
                        num_attention_heads=20, max_position_embeddings=CLIP_MAX_LENGTH, hidden_act="gelu",
                        projection_dim=1280),  # OpenCLIP ViT-bigG
    unet=dict(
        SDXL_UNET_LAYOUT,
        sample_size=128,
        layers_per_block=2,
        block_out_channels=(320, 640, 1280),
        transformer_layers_per_block=(1, 2, 10),
        attention_head_dim=(5, 10, 20),
        cross_attention_dim=2048,  # the two encoders' hidden states, concatenated
        addition_time_embed_dim=256,
        projection_class_embeddings_input_dim=2816,  # 6 micro-conditioning numbers × 256 + the pooled 1280
    ),
    scheduler=SDXL_SCHEDULER,
)

TINY_XL = Architecture(
    name="tiny-xl",
    image_size=64,
    vae=dict(TINY.vae, scaling_factor=0.13025, force_upcast=True),
    text_encoder=dict(TINY.text_encoder),
    text_encoder_2=dict(TINY.text_encoder),  # the same small CLIP shape, its own weights (its projection: the pooled 32)
    unet=dict(
        SDXL_UNET_LAYOUT,
        sample_size=16,
        layers_per_block=1,
        block_out_channels=(32, 64, 64),
        transformer_layers_per_block=(1, 1, 2),
        attention_head_dim=(2, 4, 8),
        cross_attention_dim=64,  # 32 + 32
        addition_time_embed_dim=8,
        projection_class_embeddings_input_dim=6 * 8 + 32,
        norm_num_groups=8,
    ),
    scheduler=SDXL_SCHEDULER,
)

ARCHITECTURES = {arch.name: arch for arch in (SD15, TINY, SDXL, TINY_XL)}
