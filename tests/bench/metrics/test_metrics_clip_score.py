"""CLIP score: 100·max(cos, 0) from open_clip's own encoders, the model id recorded, weights only from disk."""

import numpy as np
import open_clip
import pytest
import torch
from PIL import Image

from bench.metrics.clip_score import ClipScorer
from localctrl.models.weights import MetricUnavailable

PROMPTS = ["a red circle on a grey background", "a blue triangle and a green square"]


@pytest.fixture(scope="module")
def scorer():
    return ClipScorer("ViT-B-16", "openai", random_weights=True)


@pytest.fixture(scope="module")
def images():
    return torch.randint(0, 256, (2, 3, 64, 64), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))


def test_score_is_100_max_cos_of_the_models_own_embeddings(scorer, images):
    assert scorer.name == "ViT-B-16/random"
    pixels = torch.stack([scorer.preprocess(Image.fromarray(image.permute(1, 2, 0).numpy())) for image in images])
    with torch.no_grad():
        image_features = scorer.model.encode_image(pixels)
        text_features = scorer.model.encode_text(open_clip.get_tokenizer("ViT-B-16")(PROMPTS))
    cosine = torch.nn.functional.cosine_similarity(image_features, text_features, dim=1)
    scores = scorer.scores(images, PROMPTS)
    assert scores.shape == (2,) and scores.dtype == np.float64
    np.testing.assert_allclose(scores, 100 * cosine.clamp(min=0).double().numpy(), rtol=1e-4, atol=1e-4)


def test_negative_cosine_scores_zero(scorer, images, monkeypatch):
    image_embeddings = scorer.image_embeddings(images)
    monkeypatch.setattr(scorer, "text_embeddings", lambda prompts: -image_embeddings)  # cos = -1
    np.testing.assert_allclose(scorer.scores(images, PROMPTS), [0.0, 0.0])
    monkeypatch.setattr(scorer, "text_embeddings", lambda prompts: image_embeddings)  # cos = 1
    np.testing.assert_allclose(scorer.scores(images, PROMPTS), [100.0, 100.0], rtol=1e-5)


def test_one_prompt_per_image(scorer, images):
    with pytest.raises(ValueError, match="one prompt per image"):
        scorer.scores(images, PROMPTS[:1])


def test_missing_weights_are_reported_not_downloaded(tmp_path, monkeypatch):
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "hub"))  # an empty cache
    with pytest.raises(MetricUnavailable) as error:
        ClipScorer("ViT-B-16", "openai")
    assert "timm/vit_base_patch16_clip_224.openai" in str(error.value) and "hf download" in str(error.value)
    with pytest.raises(MetricUnavailable, match="no-such-file"):
        ClipScorer("ViT-B-16", "openai", checkpoint=tmp_path / "no-such-file.safetensors")
    with pytest.raises(MetricUnavailable, match="checkpoint="):
        ClipScorer("ViT-B-16", "not-an-open-clip-tag")
