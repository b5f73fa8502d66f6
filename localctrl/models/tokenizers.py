"""Tokenizers that need no download, and the check that catches the offline 2-token trap."""

from functools import lru_cache

from transformers import CLIPTokenizer

from localctrl.errors import InputError
from localctrl.models.architectures import CLIP_MAX_LENGTH


class TokenizerMismatchError(InputError):
    """A tokenizer whose vocabulary does not fit the text encoder it is paired with."""


@lru_cache(maxsize=1)
def clip_bpe() -> tuple[dict[str, int], list[tuple[str, str]]]:
    # open_clip ships the CLIP BPE merges inside its package; its SimpleTokenizer derives the 49408-token
    # vocabulary from them exactly as OpenAI's CLIP (and SD's tokenizer) does, so we reuse it rather than
    # re-deriving the byte-level vocabulary here.
    from open_clip.tokenizer import SimpleTokenizer

    simple = SimpleTokenizer()
    start, end = simple.encoder["<start_of_text>"], simple.encoder["<end_of_text>"]
    vocab = {token: index for token, index in simple.encoder.items() if index not in (start, end)}
    vocab.update({"<|startoftext|>": start, "<|endoftext|>": end})  # the names SD's tokenizer uses
    merges = sorted(simple.bpe_ranks, key=simple.bpe_ranks.get)
    return vocab, merges


def clip_tokenizer() -> CLIPTokenizer:
    """The real CLIP tokenizer (49408 tokens, same ids as SD 1.x's), built offline from open_clip's files."""
    vocab, merges = clip_bpe()
    return CLIPTokenizer(
        vocab=dict(vocab),
        merges=list(merges),
        bos_token="<|startoftext|>",
        eos_token="<|endoftext|>",
        unk_token="<|endoftext|>",
        pad_token="<|endoftext|>",
        model_max_length=CLIP_MAX_LENGTH,
    )


def check_tokenizer_fits(tokenizer, vocab_size: int, source: str) -> None:
    """Refuse a tokenizer whose size differs from the text encoder's vocabulary.

    Offline, `CLIPTokenizer.from_pretrained(<hub id>)` returns a 2-token tokenizer without any error; its
    prompts all encode to the same ids, so every image would silently ignore its prompt.
    """
    if len(tokenizer) != vocab_size:
        raise TokenizerMismatchError(
            f"tokenizer of {source} has {len(tokenizer)} tokens but the text encoder expects {vocab_size}: "
            "the tokenizer files are missing or incomplete (offline hub loads return a 2-token tokenizer "
            "without error). Provide the complete tokenizer folder."
        )


SPECIAL_TOKENS = ("<|startoftext|>", "<|endoftext|>")
WORD_CHARACTERS = "abcdefghijklmnopqrstuvwxyz0123456789,."


def _tokenizer(vocab: dict[str, int], merges: list[tuple[str, str]], max_length: int) -> CLIPTokenizer:
    start, end = SPECIAL_TOKENS
    return CLIPTokenizer(
        vocab=vocab | {token: len(vocab) + i for i, token in enumerate(SPECIAL_TOKENS)},
        merges=list(merges),
        bos_token=start,
        eos_token=end,
        unk_token=end,
        pad_token=end,
        model_max_length=max_length,
    )


def word_tokenizer(words: list[str], max_length: int = 24) -> CLIPTokenizer:
    """A small CLIP-format BPE tokenizer in which each of `words` is exactly one token.

    Stock diffusers pipelines load it like SD's tokenizer. Other words still encode, letter by letter.
    Merges are added for the word's *current* segmentation, repeatedly: appending a plain left-to-right
    chain fails when an earlier merge (e.g. "a"+"n" from "and") splits a later word ("triangle").
    """
    vocab: dict[str, int] = {}
    for suffix in ("", "</w>"):
        for character in WORD_CHARACTERS:
            vocab.setdefault(character + suffix, len(vocab))
    merges: list[tuple[str, str]] = []
    for word in words:
        while len(pieces := _tokenizer(vocab, merges, max_length).tokenize(word)) > 1:
            merges.append((pieces[0], pieces[1]))
            vocab.setdefault(pieces[0] + pieces[1], len(vocab))
    return _tokenizer(vocab, merges, max_length)
