"""Stand-ins of the hub repos localctrl loads: SD 1.x and SDXL pipelines, TencentARC T2I-Adapters, lllyasviel's and
diffusers' ControlNets, and the depth and segmentation networks, each as the real repo lays it out on its main branch.

What is real: the file names, the config files' keys and values (the old diffusers/transformers versions that
wrote them included), the weights' formats and dtypes (fp32 safetensors beside pickled `.bin` and fp16 variants
where the repo has them; `.bin` only where the repo has only that). What is not: widths are cut (SD's UNet 32–64
channels instead of 320–1280, a 32-wide CLIP text encoder) and the UNet's sample size is 8 (64² images), so a
rehearsal runs in minutes on a CPU; weights are seeded random. Left out: SD 1.5's top-level single-file
checkpoints (v1-5-pruned*.ckpt/safetensors) and the non-EMA UNet variants, and SDXL's single-file checkpoint, its
ONNX/OpenVINO folders and its vae_1_0/, which localctrl never reads.
"""

import json
from pathlib import Path

import torch
from safetensors.torch import save_file

from localctrl.common.seeding import seeded
from localctrl.models.architectures import CLIP_MAX_LENGTH, CLIP_VOCAB_SIZE
from localctrl.models.tokenizers import clip_bpe

WIDTHS = [32, 64, 64, 64]  # SD's [320, 640, 1280, 1280], cut; 32 keeps GroupNorm's 32 groups
TEXT_WIDTH = 32  # CLIP ViT-L/14's text width 768, cut; also the UNet's cross_attention_dim


def write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")  # how diffusers/transformers write configs


def write_weights(module: torch.nn.Module, folder: Path, stem: str, formats: tuple[str, ...], bin_stem: str = "") -> None:
    """`stem.safetensors` (diffusers' metadata), `stem.bin` (a pickled plain state dict, as torch.save writes it; named
    `bin_stem.bin` where transformers calls it pytorch_model.bin), `stem.fp16.safetensors`: whichever of
    "safetensors", "bin", "fp16" the real repo has."""
    folder.mkdir(parents=True, exist_ok=True)
    state = {key: tensor.detach().contiguous().clone() for key, tensor in module.state_dict().items()}
    if "safetensors" in formats:
        save_file(state, folder / f"{stem}.safetensors", metadata={"format": "pt"})
    if "bin" in formats:
        torch.save(state, folder / f"{bin_stem or stem}.bin")
    if "fp16" in formats:
        save_file({k: v.half() for k, v in state.items()}, folder / f"{stem}.fp16.safetensors", metadata={"format": "pt"})


def without_zero_weights(module: torch.nn.Module) -> torch.nn.Module:
    """Small random values where a fresh module has all-zero weights (ControlNet's zero convolutions): a trained
    network's are not zero, and zeros would make the stand-in a no-op that hides a wiring bug."""
    with torch.no_grad():
        for name, parameter in module.named_parameters():
            if name.endswith("weight") and not parameter.any():
                parameter.normal_(0.0, 0.02)
    return module


# --- Stable Diffusion 1.x pipelines ----------------------------------------------------------------------------------

def sd_pipeline(folder: Path, diffusers_version: str, seed: int) -> Path:
    """SD 1.4/1.5's diffusers layout: model_index.json, unet/ vae/ text_encoder/ tokenizer/ scheduler/ safety_checker/
    feature_extractor/, the configs as those repos hold them (widths cut)."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from diffusers.pipelines.stable_diffusion.safety_checker import StableDiffusionSafetyChecker
    from transformers import CLIPConfig, CLIPTextConfig, CLIPTextModel

    write_json(folder / "model_index.json", {
        "_class_name": "StableDiffusionPipeline", "_diffusers_version": diffusers_version,
        "feature_extractor": ["transformers", "CLIPImageProcessor"],
        "safety_checker": ["stable_diffusion", "StableDiffusionSafetyChecker"],
        "scheduler": ["diffusers", "PNDMScheduler"], "text_encoder": ["transformers", "CLIPTextModel"],
        "tokenizer": ["transformers", "CLIPTokenizer"], "unet": ["diffusers", "UNet2DConditionModel"],
        "vae": ["diffusers", "AutoencoderKL"]})
    unet = {"_class_name": "UNet2DConditionModel", "_diffusers_version": diffusers_version, "act_fn": "silu",
            "attention_head_dim": 8, "block_out_channels": WIDTHS, "center_input_sample": False,
            "cross_attention_dim": TEXT_WIDTH, "down_block_types": ["CrossAttnDownBlock2D"] * 3 + ["DownBlock2D"],
            "downsample_padding": 1, "flip_sin_to_cos": True, "freq_shift": 0, "in_channels": 4, "layers_per_block": 2,
            "mid_block_scale_factor": 1, "norm_eps": 1e-05, "norm_num_groups": 32, "out_channels": 4, "sample_size": 8,
            "up_block_types": ["UpBlock2D"] + ["CrossAttnUpBlock2D"] * 3}
    vae = {"_class_name": "AutoencoderKL", "_diffusers_version": diffusers_version, "act_fn": "silu",
           "block_out_channels": WIDTHS, "down_block_types": ["DownEncoderBlock2D"] * 4, "in_channels": 3,
           "latent_channels": 4, "layers_per_block": 2, "norm_num_groups": 32, "out_channels": 3, "sample_size": 64,
           "up_block_types": ["UpDecoderBlock2D"] * 4}  # no scaling_factor key: the real file has none (0.18215 default)
    text = {"_name_or_path": "openai/clip-vit-large-patch14", "architectures": ["CLIPTextModel"],
            "attention_dropout": 0.0, "bos_token_id": 0, "dropout": 0.0, "eos_token_id": 2, "hidden_act": "quick_gelu",
            "hidden_size": TEXT_WIDTH, "initializer_factor": 1.0, "initializer_range": 0.02, "intermediate_size": 37,
            "layer_norm_eps": 1e-05, "max_position_embeddings": CLIP_MAX_LENGTH, "model_type": "clip_text_model",
            "num_attention_heads": 4, "num_hidden_layers": 12, "pad_token_id": 1, "projection_dim": TEXT_WIDTH,
            "torch_dtype": "float32", "transformers_version": "4.22.0.dev0", "vocab_size": CLIP_VOCAB_SIZE}
    with seeded(seed):
        write_weights(UNet2DConditionModel.from_config(unet), folder / "unet", "diffusion_pytorch_model",
                      ("safetensors", "bin", "fp16"))
    with seeded(seed + 1):
        write_weights(AutoencoderKL.from_config(vae), folder / "vae", "diffusion_pytorch_model", ("safetensors", "bin", "fp16"))
    with seeded(seed + 2):
        write_weights(CLIPTextModel(CLIPTextConfig.from_dict(text)), folder / "text_encoder", "model",
                      ("safetensors", "bin", "fp16"), bin_stem="pytorch_model")
    with seeded(seed + 3):
        checker = CLIPConfig(text_config={"hidden_size": TEXT_WIDTH, "intermediate_size": 37, "num_hidden_layers": 2,
                                          "num_attention_heads": 4},
                             vision_config={"hidden_size": TEXT_WIDTH, "intermediate_size": 37, "num_hidden_layers": 2,
                                            "num_attention_heads": 4, "patch_size": 14, "image_size": 224},
                             projection_dim=TEXT_WIDTH)
        safety = StableDiffusionSafetyChecker(checker)
        safety.config.architectures = ["StableDiffusionSafetyChecker"]
        safety.save_pretrained(folder / "safety_checker", safe_serialization=True)  # its config.json, model.safetensors
        write_weights(safety, folder / "safety_checker", "model", ("bin", "fp16"), bin_stem="pytorch_model")
    write_json(folder / "unet" / "config.json", unet)
    write_json(folder / "vae" / "config.json", vae)
    write_json(folder / "text_encoder" / "config.json", text)
    write_json(folder / "scheduler" / "scheduler_config.json", {
        "_class_name": "PNDMScheduler", "_diffusers_version": diffusers_version, "beta_end": 0.012,
        "beta_schedule": "scaled_linear", "beta_start": 0.00085, "num_train_timesteps": 1000, "set_alpha_to_one": False,
        "skip_prk_steps": True, "steps_offset": 1, "trained_betas": None, "clip_sample": False})
    write_json(folder / "feature_extractor" / "preprocessor_config.json", {
        "crop_size": 224, "do_center_crop": True, "do_convert_rgb": True, "do_normalize": True, "do_resize": True,
        "feature_extractor_type": "CLIPFeatureExtractor", "image_mean": [0.48145466, 0.4578275, 0.40821073],
        "image_std": [0.26862954, 0.26130258, 0.27577711], "resample": 3, "size": 224})
    clip_tokenizer_files(folder / "tokenizer")
    return folder


def clip_tokenizer_files(folder: Path, pad_token: str = "<|endoftext|>", name: str = "openai/clip-vit-large-patch14") -> None:
    """SD's tokenizer/ folder: the real CLIP BPE vocabulary (vocab.json, merges.txt) and the two configs as SD ships them
    (SDXL's tokenizer_2/ pads with "!", as OpenCLIP does)."""
    vocab, merges = clip_bpe()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False))
    (folder / "merges.txt").write_text("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges))
    token = {"__type": "AddedToken", "lstrip": False, "normalized": True, "rstrip": False, "single_word": False}
    write_json(folder / "tokenizer_config.json", {
        "add_prefix_space": False, "bos_token": token | {"content": "<|startoftext|>"}, "do_lower_case": True,
        "eos_token": token | {"content": "<|endoftext|>"}, "errors": "replace", "model_max_length": CLIP_MAX_LENGTH,
        "name_or_path": name, "pad_token": pad_token,
        "special_tokens_map_file": "./special_tokens_map.json", "tokenizer_class": "CLIPTokenizer",
        "unk_token": token | {"content": "<|endoftext|>"}})
    special = {key: value for key, value in token.items() if key != "__type"}
    write_json(folder / "special_tokens_map.json", {
        "bos_token": special | {"content": "<|startoftext|>"}, "eos_token": special | {"content": "<|endoftext|>"},
        "pad_token": pad_token, "unk_token": special | {"content": "<|endoftext|>"}})


# --- Stable Diffusion XL ---------------------------------------------------------------------------------------------

XL_WIDTHS = WIDTHS[:3]  # SDXL's [320, 640, 1280], cut
XL_TIME_WIDTH = 8  # SDXL's addition_time_embed_dim 256, cut


def sdxl_unet_config(diffusers_version: str) -> dict:
    """stabilityai/stable-diffusion-xl-base-1.0's unet/config.json with its widths cut; also its ControlNets' base."""
    return {"_class_name": "UNet2DConditionModel", "_diffusers_version": diffusers_version, "act_fn": "silu",
            "addition_embed_type": "text_time", "addition_embed_type_num_heads": 64, "addition_time_embed_dim": XL_TIME_WIDTH,
            "attention_head_dim": [2, 4, 8], "block_out_channels": XL_WIDTHS, "center_input_sample": False,
            "class_embed_type": None, "class_embeddings_concat": False, "conv_in_kernel": 3, "conv_out_kernel": 3,
            "cross_attention_dim": 2 * TEXT_WIDTH, "cross_attention_norm": None,
            "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"], "downsample_padding": 1,
            "dual_cross_attention": False, "encoder_hid_dim": None, "encoder_hid_dim_type": None, "flip_sin_to_cos": True,
            "freq_shift": 0, "in_channels": 4, "layers_per_block": 2, "mid_block_only_cross_attention": None,
            "mid_block_scale_factor": 1, "mid_block_type": "UNetMidBlock2DCrossAttn", "norm_eps": 1e-05, "norm_num_groups": 32,
            "num_attention_heads": None, "num_class_embeds": None, "only_cross_attention": False, "out_channels": 4,
            "projection_class_embeddings_input_dim": 6 * XL_TIME_WIDTH + TEXT_WIDTH, "resnet_out_scale_factor": 1.0,
            "resnet_skip_time_act": False, "resnet_time_scale_shift": "default", "sample_size": 8, "time_cond_proj_dim": None,
            "time_embedding_act_fn": None, "time_embedding_dim": None, "time_embedding_type": "positional",
            "timestep_post_act": None, "transformer_layers_per_block": [1, 2, 2],
            "up_block_types": ["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"], "upcast_attention": None,
            "use_linear_projection": True}


def sdxl_pipeline(folder: Path, seed: int) -> Path:
    """SDXL base 1.0's diffusers layout: model_index.json, unet/ vae/ text_encoder/ text_encoder_2/ tokenizer/
    tokenizer_2/ scheduler/ (safetensors with fp16 variants), the configs as that repo holds them (widths cut)."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    version = "0.19.0.dev0"
    write_json(folder / "model_index.json", {
        "_class_name": "StableDiffusionXLPipeline", "_diffusers_version": version, "force_zeros_for_empty_prompt": True,
        "add_watermarker": None, "scheduler": ["diffusers", "EulerDiscreteScheduler"],
        "text_encoder": ["transformers", "CLIPTextModel"], "text_encoder_2": ["transformers", "CLIPTextModelWithProjection"],
        "tokenizer": ["transformers", "CLIPTokenizer"], "tokenizer_2": ["transformers", "CLIPTokenizer"],
        "unet": ["diffusers", "UNet2DConditionModel"], "vae": ["diffusers", "AutoencoderKL"]})
    unet = sdxl_unet_config(version)
    vae = {"_class_name": "AutoencoderKL", "_diffusers_version": version, "act_fn": "silu", "block_out_channels": WIDTHS,
           "down_block_types": ["DownEncoderBlock2D"] * 4, "force_upcast": True, "in_channels": 3, "latent_channels": 4,
           "layers_per_block": 2, "norm_num_groups": 32, "out_channels": 3, "sample_size": 64, "scaling_factor": 0.13025,
           "up_block_types": ["UpDecoderBlock2D"] * 4}
    clip = {"attention_dropout": 0.0, "bos_token_id": 0, "dropout": 0.0, "eos_token_id": 2, "hidden_size": TEXT_WIDTH,
            "initializer_factor": 1.0, "initializer_range": 0.02, "intermediate_size": 37, "layer_norm_eps": 1e-05,
            "max_position_embeddings": CLIP_MAX_LENGTH, "model_type": "clip_text_model", "num_attention_heads": 4,
            "pad_token_id": 1, "projection_dim": TEXT_WIDTH, "torch_dtype": "float16", "transformers_version": "4.32.0.dev0",
            "vocab_size": CLIP_VOCAB_SIZE}
    text = clip | {"_name_or_path": "openai/clip-vit-large-patch14", "architectures": ["CLIPTextModel"],
                   "hidden_act": "quick_gelu", "num_hidden_layers": 12}
    text_2 = clip | {"_name_or_path": "laion/CLIP-ViT-bigG-14-laion2B-39B-b160k",
                     "architectures": ["CLIPTextModelWithProjection"], "hidden_act": "gelu", "num_hidden_layers": 4}
    formats = ("safetensors", "fp16")
    with seeded(seed):
        write_weights(UNet2DConditionModel.from_config(unet), folder / "unet", "diffusion_pytorch_model", formats)
    with seeded(seed + 1):
        write_weights(AutoencoderKL.from_config(vae), folder / "vae", "diffusion_pytorch_model", formats)
    with seeded(seed + 2):
        write_weights(CLIPTextModel(CLIPTextConfig.from_dict(text)), folder / "text_encoder", "model", formats)
    with seeded(seed + 3):
        write_weights(CLIPTextModelWithProjection(CLIPTextConfig.from_dict(text_2)), folder / "text_encoder_2", "model", formats)
    for name, config in (("unet", unet), ("vae", vae), ("text_encoder", text), ("text_encoder_2", text_2)):
        write_json(folder / name / "config.json", config)
    write_json(folder / "scheduler" / "scheduler_config.json", {
        "_class_name": "EulerDiscreteScheduler", "_diffusers_version": version, "beta_end": 0.012,
        "beta_schedule": "scaled_linear", "beta_start": 0.00085, "clip_sample": False, "interpolation_type": "linear",
        "num_train_timesteps": 1000, "prediction_type": "epsilon", "sample_max_value": 1.0, "set_alpha_to_one": False,
        "skip_prk_steps": True, "steps_offset": 1, "timestep_spacing": "leading", "trained_betas": None,
        "use_karras_sigmas": False})
    clip_tokenizer_files(folder / "tokenizer")
    clip_tokenizer_files(folder / "tokenizer_2", pad_token="!", name="laion/CLIP-ViT-bigG-14-laion2B-39B-b160k")
    return folder


# --- T2I-Adapters and ControlNets ------------------------------------------------------------------------------------

def t2i_adapter(folder: Path, in_channels: int, seed: int) -> Path:
    """TencentARC's SD 1.x adapter repos: config.json and a pickled diffusion_pytorch_model.bin, nothing else."""
    from diffusers import T2IAdapter

    config = {"_class_name": "T2IAdapter", "_diffusers_version": "0.18.0.dev0", "adapter_type": "full_adapter",
              "channels": WIDTHS, "in_channels": in_channels, "num_res_blocks": 2}
    with seeded(seed):
        write_weights(T2IAdapter.from_config(config), folder, "diffusion_pytorch_model", ("bin",))
    write_json(folder / "config.json", config)
    return folder


def t2i_adapter_xl(folder: Path, in_channels: int, seed: int) -> Path:
    """TencentARC's SDXL adapter repos (t2i-adapter-*-sdxl-1.0): config.json, safetensors and an fp16 variant."""
    from diffusers import T2IAdapter

    config = {"_class_name": "T2IAdapter", "_diffusers_version": "0.20.0.dev0", "adapter_type": "full_adapter_xl",
              "channels": [*XL_WIDTHS, XL_WIDTHS[-1]], "downscale_factor": 16, "in_channels": in_channels, "num_res_blocks": 2}
    with seeded(seed):
        write_weights(T2IAdapter.from_config(config), folder, "diffusion_pytorch_model", ("safetensors", "fp16"))
    write_json(folder / "config.json", config)
    return folder


def controlnet_xl(folder: Path, seed: int) -> Path:
    """diffusers' SDXL ControlNet repos (controlnet-*-sdxl-1.0): the SDXL UNet's encoder config with the conditioning
    embedding; .bin, .safetensors and fp16 variants."""
    from diffusers import ControlNetModel

    unet = sdxl_unet_config("0.20.0.dev0")
    config = {key: unet[key] for key in (
        "_diffusers_version", "act_fn", "addition_embed_type", "addition_embed_type_num_heads", "addition_time_embed_dim",
        "attention_head_dim", "block_out_channels", "class_embed_type", "cross_attention_dim", "down_block_types",
        "downsample_padding", "encoder_hid_dim", "encoder_hid_dim_type", "flip_sin_to_cos", "freq_shift", "in_channels",
        "layers_per_block", "mid_block_scale_factor", "norm_eps", "norm_num_groups", "num_attention_heads",
        "num_class_embeds", "only_cross_attention", "projection_class_embeddings_input_dim", "resnet_time_scale_shift",
        "transformer_layers_per_block", "upcast_attention", "use_linear_projection")}
    config |= {"_class_name": "ControlNetModel", "conditioning_channels": 3, "conditioning_embedding_out_channels": [16, 32, 96, 256],
               "controlnet_conditioning_channel_order": "rgb", "global_pool_conditions": False}
    with seeded(seed):
        write_weights(without_zero_weights(ControlNetModel.from_config(config)), folder, "diffusion_pytorch_model",
                      ("safetensors", "bin", "fp16"))
    write_json(folder / "config.json", config)
    return folder


def controlnet(folder: Path, seed: int, formats: tuple[str, ...], name_or_path: str | None = None) -> Path:
    """lllyasviel's SD 1.5 ControlNet repos (sd-controlnet-*: .bin + .safetensors; control_v11*: + fp16 variants)."""
    from diffusers import ControlNetModel

    config = {"_class_name": "ControlNetModel", "_diffusers_version": "0.14.0.dev0", "act_fn": "silu",
              "attention_head_dim": 8, "block_out_channels": WIDTHS, "class_embed_type": None,
              "conditioning_embedding_out_channels": [16, 32, 96, 256], "controlnet_conditioning_channel_order": "rgb",
              "cross_attention_dim": TEXT_WIDTH, "down_block_types": ["CrossAttnDownBlock2D"] * 3 + ["DownBlock2D"],
              "downsample_padding": 1, "flip_sin_to_cos": True, "freq_shift": 0, "in_channels": 4, "layers_per_block": 2,
              "mid_block_scale_factor": 1, "norm_eps": 1e-05, "norm_num_groups": 32, "num_class_embeds": None,
              "only_cross_attention": False, "projection_class_embeddings_input_dim": None,
              "resnet_time_scale_shift": "default", "upcast_attention": False, "use_linear_projection": False}
    if name_or_path:
        config["_name_or_path"] = name_or_path
    with seeded(seed):
        write_weights(without_zero_weights(ControlNetModel.from_config(config)), folder, "diffusion_pytorch_model", formats)
    write_json(folder / "config.json", config)
    return folder


# --- depth and segmentation networks (transformers; their repos hold pickled pytorch_model.bin only) -----------------

def pickled_only(model, folder: Path) -> None:
    """config.json and a pickled pytorch_model.bin, as those repos hold them (transformers 5 writes safetensors even
    when asked not to, so the weights are written here)."""
    model.save_pretrained(folder)
    (folder / "model.safetensors").unlink()
    write_weights(model, folder, "model", ("bin",), bin_stem="pytorch_model")


def dpt_hybrid(folder: Path, seed: int) -> Path:
    """Intel/dpt-hybrid-midas (what T2I-Adapter's depth adapter was trained on): DPT with a BiT backbone;
    config.json, preprocessor_config.json, pytorch_model.bin."""
    model, processor = dpt_hybrid_model(seed)
    pickled_only(model, folder)
    processor.save_pretrained(folder)
    return folder


def dpt_hybrid_model(seed: int):
    """The dpt-hybrid stand-in and its image processor, in memory."""
    from transformers import DPTConfig, DPTForDepthEstimation, DPTImageProcessor

    config = DPTConfig(is_hybrid=True, hidden_size=TEXT_WIDTH, num_hidden_layers=12, num_attention_heads=4,
                       intermediate_size=37, image_size=384, neck_hidden_sizes=[16, 32, 32, 32], fusion_hidden_size=32,
                       backbone_featmap_shape=[1, 64, 24, 24],
                       backbone_config={"model_type": "bit", "global_padding": "same", "layer_type": "bottleneck",
                                        "depths": [1, 1, 1], "hidden_sizes": [16, 32, 64, 128], "embedding_size": 16, "num_groups": 8,
                                        "out_features": ["stage1", "stage2", "stage3"], "embedding_dynamic_padding": True})
    with seeded(seed):
        model = DPTForDepthEstimation(config)
    return model, DPTImageProcessor(size={"height": 384, "width": 384}, keep_aspect_ratio=True, ensure_multiple_of=32)


def dpt_large(folder: Path, seed: int) -> Path:
    """Intel/dpt-large: DPT on a ViT backbone (what ControlNet++ measures depth with); model.safetensors and .bin."""
    model, processor = dpt_large_model(seed)
    model.save_pretrained(folder, safe_serialization=True)
    write_weights(model, folder, "model", ("bin",), bin_stem="pytorch_model")
    processor.save_pretrained(folder)
    return folder


def dpt_large_model(seed: int):
    """The dpt-large stand-in and its image processor (dpt-large's: a plain 384² resize), in memory."""
    from transformers import DPTConfig, DPTForDepthEstimation, DPTImageProcessor

    config = DPTConfig(hidden_size=TEXT_WIDTH, num_hidden_layers=4, num_attention_heads=4, intermediate_size=37,
                       image_size=384, backbone_out_indices=[0, 1, 2, 3], neck_hidden_sizes=[16, 32, 32, 32],
                       fusion_hidden_size=32)
    with seeded(seed):
        model = DPTForDepthEstimation(config)
    return model, DPTImageProcessor(size={"height": 384, "width": 384})


def upernet_convnext(folder: Path, seed: int) -> Path:
    """openmmlab/upernet-convnext-small: UperNet over ConvNeXt, 150 ADE20K labels; config.json, preprocessor, .bin."""
    model, processor = upernet_convnext_model(seed)
    pickled_only(model, folder)
    processor.save_pretrained(folder)
    return folder


def upernet_convnext_model(seed: int):
    """The UperNet stand-in and its image processor, in memory."""
    from transformers import ConvNextConfig, SegformerImageProcessor, UperNetConfig, UperNetForSemanticSegmentation

    backbone = ConvNextConfig(hidden_sizes=[8, 16, 32, 64], depths=[1, 1, 1, 1],
                              out_features=["stage1", "stage2", "stage3", "stage4"])
    config = UperNetConfig(backbone_config=backbone, hidden_size=16, auxiliary_in_channels=32, num_labels=150)
    with seeded(seed):
        model = UperNetForSemanticSegmentation(config)
    return model, SegformerImageProcessor(size={"height": 512, "width": 512})


def mask2former(folder: Path, seed: int) -> Path:
    """facebook/mask2former-swin-large-ade-semantic: Mask2Former over Swin, 150 ADE20K labels; config.json, preprocessor,
    and a pickled .bin only (so the rehearsal runs `localctrl convert` on it, the path that also serves a safetensors copy)."""
    model, processor = mask2former_model(seed)
    pickled_only(model, folder)
    processor.save_pretrained(folder)
    return folder


def mask2former_model(seed: int):
    """The Mask2Former stand-in and its image processor, in memory (the processor's small size keeps mechanics fast;
    the real network runs at mmseg's 640, localctrl.models.detectors.NETWORKS)."""
    from transformers import Mask2FormerConfig, Mask2FormerForUniversalSegmentation, Mask2FormerImageProcessor, SwinConfig

    backbone = SwinConfig(embed_dim=8, depths=[1, 1, 1, 1], num_heads=[1, 1, 1, 1], window_size=4,
                          out_features=["stage1", "stage2", "stage3", "stage4"])
    config = Mask2FormerConfig(backbone_config=backbone, num_labels=150, hidden_dim=32, num_queries=8, encoder_layers=1,
                               decoder_layers=2, encoder_feedforward_dim=32, dim_feedforward=32, mask_feature_size=32,
                               feature_size=32, num_attention_heads=2)
    with seeded(seed):
        model = Mask2FormerForUniversalSegmentation(config)
    return model, Mask2FormerImageProcessor(size={"shortest_edge": 128, "longest_edge": 512}, ignore_index=255,
                                            do_reduce_labels=True)
