import open_clip
import pytest

from localctrl.models.tokenizers import clip_tokenizer

PROMPTS = [
    "a red circle and a blue triangle on a grey background",
    "A photo of an astronaut riding a horse, 4k, highly detailed!",
    "naïve café — x-ray's 3.14 mm",
]


@pytest.mark.parametrize("prompt", PROMPTS)
def test_offline_clip_tokenizer_gives_clip_ids(prompt):
    tokenizer = clip_tokenizer()
    ids = tokenizer(prompt).input_ids
    assert ids == open_clip.tokenize([prompt])[0][: len(ids)].tolist()
    assert ids[0] == 49406 and ids[-1] == 49407  # <|startoftext|> … <|endoftext|>, as in SD 1.x


def test_offline_clip_tokenizer_has_the_full_vocabulary_and_pads_to_77():
    tokenizer = clip_tokenizer()
    assert len(tokenizer) == 49408
    padded = tokenizer("a cat", padding="max_length", max_length=tokenizer.model_max_length, return_tensors="pt").input_ids
    assert padded.shape == (1, 77) and padded[0, -1].item() == 49407
