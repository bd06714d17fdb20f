"""Text embedder, for searching the collection by words: the checkpoint's own CLIP text
tower and tokenizer, or a sentence-transformers encoder trained into the same space
(``TEXT_MODEL_NAME``, ``app.embedding.sentence_encoder``), whose unit vectors share the
space of the image tower's.

Pipeline: text -> the tokenizer's ids, start and end tokens included (more than the
tower's ``max_tokens``: cut to that many, the end token kept, and reported) -> the
texts of one model call padded to the longest -> the text tower (ONNX Runtime on a CPU,
exported once and checked against transformers like the image tower; transformers
otherwise) -> L2-normalised vectors.
"""

import functools
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from numpy.typing import NDArray
from transformers import (
    AutoTokenizer,
    CLIPTextModelWithProjection,
    PreTrainedTokenizerBase,
)

from app.embedding import onnx_tower, sentence_encoder
from app.embedding.model import (
    TEXT,
    Tower,
    load_from,
    onnx_tower_for,
    quiet_loading,
    resolve_device,
    tower_config,
)
from app.errors import ModelLoadError

logger = logging.getLogger(__name__)

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
    name: str, setting: str = "TEXT_MODEL_NAME"
) -> tuple[torch.nn.Module, TextReader]:
    """The text tower and how it reads, from a local folder, the cache, or the hub;
    errors name ``setting``, the variable ``name`` was set in."""
    return load_from(name, _text_from_pretrained, setting)


def load_text_reader(name: str) -> TextReader:
    """How ``name``'s text tower reads, from local files, without its weights."""
    tokenizer = _tokenizer(name, local_files_only=True)
    if sentence_encoder.is_sentence_encoder(name, True):
        return TextReader.of(tokenizer, sentence_encoder.max_tokens(name, tokenizer))
    return TextReader.of(tokenizer, MAX_TOKENS)


def text_graph_of(name: str, setting: str = "TEXT_MODEL_NAME") -> onnx_tower.TowerGraph:
    module, reader = load_text_checkpoint(name, setting)
    vocabulary = len(reader.tokenizer)
    return onnx_tower.text_graph(module, vocabulary, reader.end, reader.pad, reader.max_tokens)


class TorchTextTower:
    """Token ids to text embeddings with the transformers model."""

    def __init__(self, module: torch.nn.Module, device: torch.device) -> None:
        self.module = module.to(device).eval()
        self.device = device

    def __call__(self, ids: NDArray[np.int64]) -> NDArray[np.float32]:
        with torch.inference_mode():
            embeds = self.module(torch.from_numpy(ids).to(self.device))
        return np.asarray(embeds.float().cpu().numpy(), np.float32)


class TextEmbedder:
    """Embeds texts into L2-normalised vectors of CLIP's image space."""

    def __init__(
        self, tower: Tower, reader: TextReader, name: str, dimension: int, inference: str
    ) -> None:
        self.tower = tower
        self.reader = reader
        self.name = name
        self.dimension = dimension
        self.inference = inference

    @classmethod
    def load(
        cls,
        name: str,
        device: str = "auto",
        inference: str = "torch",
        threads: int = 0,
        onnx_cache_dir: Path | None = None,
        setting: str = "TEXT_MODEL_NAME",
    ) -> "TextEmbedder":
        """Load ``name``'s text tower and tokenizer; ``inference`` as for
        ``ImageEmbedder.load`` (int8 runs the text tower in float32: texts are short);
        errors name ``setting``, the variable ``name`` was set in."""
        torch_device = resolve_device(device)
        if inference == "auto":
            inference = "onnx" if torch_device.type == "cpu" else "torch"
        if inference == "onnx":
            if onnx_cache_dir is None:
                raise ValueError("inference='onnx' needs onnx_cache_dir")
            cores = threads or os.cpu_count() or 1
            graph_of = functools.partial(text_graph_of, setting=setting)
            tower = onnx_tower_for(TEXT, graph_of, name, onnx_cache_dir, cores)
            if tower:
                embedder = cls(tower, load_text_reader(name), name, tower.dimension, "onnx")
                logger.info("Loaded the text tower of %s (onnx)", name)
                return embedder
        module, reader = load_text_checkpoint(name, setting)
        if inference != "torch":
            torch_device = torch.device("cpu")
        dimension = int(getattr(module, "dimension"))  # noqa: B009 - set by both towers
        embedder = cls(TorchTextTower(module, torch_device), reader, name, dimension, "torch")
        logger.info("Loaded the text tower of %s on %s (torch)", name, torch_device)
        return embedder

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

    def embed_tokens(self, texts: list[NDArray[np.int64]]) -> NDArray[np.float32]:
        """Unit vectors of several texts' ids (``(n_i, tokens_i)`` each), one model call:
        padded to the longest with the padding token, which CLIP's causal attention and a
        mean-pooled encoder's mask leave out."""
        rows = [row for ids in texts for row in ids]
        if not rows:
            return np.empty((0, self.dimension), np.float32)
        longest = max(len(row) for row in rows)
        padded = np.full((len(rows), longest), self.reader.pad, np.int64)
        for number, row in enumerate(rows):
            padded[number, : len(row)] = row
        features = self.tower(padded)
        norms = np.linalg.norm(features, axis=1, keepdims=True)
        return np.asarray(features / np.maximum(norms, 1e-12), np.float32)

    def embed(self, text: str) -> NDArray[np.float32]:
        """The unit vector of one text (truncated to ``max_tokens``)."""
        vector: NDArray[np.float32] = self.embed_tokens([self.tokens(text).ids])[0]
        return vector
