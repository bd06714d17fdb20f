"""Writes a minimal CLIP tokenizer beside a checkpoint that has none (the tests' tiny CLIP,
the benchmarks' random-weight ViT-B/32), so text goes through the real
``AutoTokenizer.from_pretrained`` path without downloading CLIP's vocabulary.

The vocabulary is CLIP's byte-level BPE alphabet (every byte as a symbol, alone and at a
word's end, ``</w>``) plus a few merges of common English letter pairs, with the start and
end tokens at the top of the model's vocabulary as in ``openai/clip-vit-base-patch32``:
any text tokenizes, with fewer merges than CLIP's 48,894 (texts take more tokens).
"""

from pathlib import Path

from transformers import CLIPTokenizer
from transformers.convert_slow_tokenizer import bytes_to_unicode

START, END = "<|startoftext|>", "<|endoftext|>"
MERGED_PAIRS = ("th", "he", "in", "er", "an", "re", "on", "at", "en", "nd", "st", "or", "es")


def special_token_ids(vocab_size: int) -> tuple[int, int]:
    """The start and end tokens' ids, the last two of the vocabulary."""
    return vocab_size - 2, vocab_size - 1


def save_minimal_clip_tokenizer(folder: Path, vocab_size: int) -> None:
    """Save a CLIP tokenizer for a text tower of ``vocab_size`` tokens into ``folder``."""
    symbols = list(bytes_to_unicode().values())  # type: ignore[no-untyped-call]
    tokens = symbols + [symbol + "</w>" for symbol in symbols]
    merges = [(pair[0], pair[1]) for pair in MERGED_PAIRS]
    merges += [(first, second + "</w>") for first, second in merges]
    tokens += [a + b for a, b in merges]
    start, end = special_token_ids(vocab_size)
    if len(tokens) > start:
        raise ValueError(f"a vocabulary of {vocab_size} is too small for {len(tokens)} tokens")
    vocabulary = {token: number for number, token in enumerate(tokens)} | {START: start, END: end}
    tokenizer = CLIPTokenizer(vocab=vocabulary, merges=merges, model_max_length=77)
    tokenizer.save_pretrained(folder)
