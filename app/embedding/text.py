"""The text tower, for searching the collection by words: the checkpoint's own CLIP text
tower and tokenizer, or a sentence-transformers encoder trained into the same space
(``TEXT_MODEL_NAME``, ``app.embedding.sentence_encoder``), whose unit vectors share the
space of the image tower's.

Pipeline: text -> the tokenizer's ids, start and end tokens included (more than the
tower's ``max_tokens``: cut to that many, the end token kept, and reported) -> the
texts of one model call padded to the longest -> the text tower (ONNX Runtime on a CPU,
exported once and checked against transformers like the image tower; transformers
otherwise) -> unit vectors (``app.embedding.tower``).
"""

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from transformers import (
    AutoTokenizer,
    CLIPTextModelWithProjection,
    PreTrainedTokenizerBase,
)

from app.embedding import onnx_tower, sentence_encoder
from app.embedding.loading import GraphOf, load_from, quiet_loading, tower_config
from app.embedding.model_source import HubAccess
from app.embedding.tower import Tower
from app.errors import ModelLoadError

# CLIP's text towers read at most 77 tokens (their position embeddings).
MAX_TOKENS = 77


@dataclass(frozen=True)
class Tokens:
    """A text as the text tower reads it."""

    ids: NDArray[np.int64]  # (1, tokens)
    truncated: bool  # the text had more tokens than the tower reads; its end was cut
    words: int  # tokens besides the start, end and padding ones: 0 for a blank text


@dataclass(frozen=True)
class TextReader:
    """How a text tower reads: its tokenizer, the most tokens it reads, the token that
    ends a text and the one that pads it."""

    tokenizer: PreTrainedTokenizerBase
    max_tokens: int
    end: int
    pad: int

    @classmethod
    def of(cls, tokenizer: PreTrainedTokenizerBase, max_tokens: int) -> "TextReader":
        # CLIP ends a text with its end-of-text token, BERT-like encoders with [SEP].
        end = tokenizer.eos_token_id
        end = end if isinstance(end, int) else tokenizer.sep_token_id
        pad = tokenizer.pad_token_id
        if not isinstance(end, int):
            raise ModelLoadError("The text model's tokenizer has no end-of-text token.")
        limit = min(max_tokens, int(tokenizer.model_max_length))
        return cls(tokenizer, limit, end, pad if isinstance(pad, int) else end)

    @property
    def special(self) -> set[int]:
        start = {self.tokenizer.bos_token_id, self.tokenizer.cls_token_id}
        return {token for token in {*start, self.end, self.pad} if isinstance(token, int)}


# A tokenizer's own files: transformers makes an empty one where a folder has none.
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.json", "vocab.txt")


def _tokenizer(name: str, local_files_only: bool) -> PreTrainedTokenizerBase:
    if not any(
        sentence_encoder.model_file(name, file, local_files_only) for file in TOKENIZER_FILES
    ):
        raise ModelLoadError(f"{name!r} holds no tokenizer.")
    tokenizer: PreTrainedTokenizerBase = AutoTokenizer.from_pretrained(
        name, local_files_only=local_files_only
    )
    return tokenizer


def _text_from_pretrained(name: str, local_files_only: bool) -> tuple[torch.nn.Module, TextReader]:
    """A text tower (token ids to embeddings) and how it reads: CLIP's, or a
    sentence-transformers encoder trained into CLIP's space."""
    with quiet_loading():
        if sentence_encoder.is_sentence_encoder(name, local_files_only):
            encoder, tokenizer, max_tokens = sentence_encoder.load_sentence_encoder(
                name, local_files_only
            )
            return encoder, TextReader.of(tokenizer, max_tokens)
        config = tower_config(name, local_files_only, "text_config")
        model = CLIPTextModelWithProjection.from_pretrained(
            name, config=config, local_files_only=local_files_only
        )
    tokenizer = _tokenizer(name, local_files_only)
    return onnx_tower.ClipTextEmbeds(model), TextReader.of(tokenizer, MAX_TOKENS)


def load_text_checkpoint(
    name: str, hub: HubAccess, setting: str = "TEXT_MODEL_NAME"
) -> tuple[torch.nn.Module, TextReader]:
    """The text tower and how it reads, from a local folder, the cache, or the hub;
    errors name ``setting``, the variable ``name`` was set in."""
    return load_from(name, _text_from_pretrained, hub, setting)


def load_text_reader(name: str) -> TextReader:
    """How ``name``'s text tower reads, from local files, without its weights."""
    tokenizer = _tokenizer(name, local_files_only=True)
    if sentence_encoder.is_sentence_encoder(name, True):
        return TextReader.of(tokenizer, sentence_encoder.max_tokens(name, tokenizer))
    return TextReader.of(tokenizer, MAX_TOKENS)


def text_graph_of(
    name: str, hub: HubAccess, setting: str = "TEXT_MODEL_NAME"
) -> onnx_tower.TowerGraph:
    module, reader = load_text_checkpoint(name, hub, setting)
    vocabulary = len(reader.tokenizer)
    return onnx_tower.text_graph(module, vocabulary, reader.end, reader.pad, reader.max_tokens)


class TextTower(Tower[TextReader]):
    """Texts to unit vectors of CLIP's image space; its reader is the tokenizer."""

    kind = "text"

    def tokens(self, text: str) -> Tokens:
        """The tower's input for ``text``: at most ``max_tokens`` ids, the end one last."""
        ids: list[int] = self.reader.tokenizer(text, verbose=False)["input_ids"]
        limit = self.reader.max_tokens
        truncated = len(ids) > limit
        if truncated:
            ids = [*ids[: limit - 1], ids[-1]]
        special = self.reader.special
        words = sum(token not in special for token in ids)
        return Tokens(np.asarray([ids], np.int64), truncated, words)

    def embed_text(self, text: str) -> NDArray[np.float32]:
        """The unit vector of one text (truncated to ``max_tokens``)."""
        vector: NDArray[np.float32] = self.embed([self.tokens(text).ids])[0]
        return vector

    @classmethod
    def _graph_of(cls, setting: str) -> GraphOf:
        return functools.partial(text_graph_of, setting=setting)

    @classmethod
    def _from_checkpoint(
        cls, name: str, hub: HubAccess, setting: str
    ) -> tuple[torch.nn.Module, TextReader]:
        return load_text_checkpoint(name, hub, setting)

    @classmethod
    def _reader(cls, name: str) -> TextReader:
        return load_text_reader(name)

    def _batch(self, inputs: list[NDArray[Any]]) -> NDArray[Any]:
        """Several texts' ids (``(n_i, tokens_i)`` each) padded to the longest with the
        padding token, which CLIP's causal attention and a mean-pooled encoder's mask
        leave out."""
        rows = [row for ids in inputs for row in ids]
        longest = max((len(row) for row in rows), default=0)
        padded = np.full((len(rows), longest), self.reader.pad, np.int64)
        for number, row in enumerate(rows):
            padded[number, : len(row)] = row
        return padded
