"""CLIP text embedder, for searching the collection by words: the checkpoint's own text
tower and tokenizer, whose unit vectors share the space of the image tower's.

Pipeline: text -> the tokenizer's ids, start and end tokens included (more than the
tower's ``max_tokens``: cut to that many, the end token kept, and reported) -> the
texts of one model call padded to the longest with the end token -> the text tower
(ONNX Runtime on a CPU, exported once and checked against transformers like the image
tower; transformers otherwise) -> L2-normalised vectors.
"""

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from numpy.typing import NDArray
from transformers import CLIPTextModelWithProjection, PreTrainedTokenizerBase

from app.embedding.model import (
    TEXT,
    Tower,
    load_text_checkpoint,
    load_tokenizer,
    onnx_tower_for,
    resolve_device,
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
    words: int  # tokens besides the start and end ones: 0 for a blank text


class TorchTextTower:
    """Token ids to projected text embeddings with the transformers model."""

    def __init__(self, model: CLIPTextModelWithProjection, device: torch.device) -> None:
        self.model = model.to(device).eval()  # type: ignore[arg-type]
        self.device = device

    def __call__(self, ids: NDArray[np.int64]) -> NDArray[np.float32]:
        with torch.inference_mode():
            embeds = self.model(input_ids=torch.from_numpy(ids).to(self.device)).text_embeds
        return np.asarray(embeds.float().cpu().numpy(), np.float32)


class TextEmbedder:
    """Embeds texts into L2-normalised CLIP vectors, comparable with the image tower's."""

    def __init__(
        self,
        tower: Tower,
        tokenizer: PreTrainedTokenizerBase,
        name: str,
        dimension: int,
        inference: str,
    ) -> None:
        end = tokenizer.eos_token_id
        if not isinstance(end, int):
            raise ModelLoadError(f"The tokenizer of {name!r} has no end-of-text token.")
        self.tower = tower
        self.tokenizer = tokenizer
        self.end_token = end
        self.special_tokens = set(tokenizer.all_special_ids)
        self.max_tokens = min(int(tokenizer.model_max_length), MAX_TOKENS)
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
    ) -> "TextEmbedder":
        """Load ``name``'s text tower and tokenizer; ``inference`` as for
        ``ImageEmbedder.load`` (int8 runs the text tower in float32: texts are short)."""
        torch_device = resolve_device(device)
        if inference == "auto":
            inference = "onnx" if torch_device.type == "cpu" else "torch"
        if inference == "onnx":
            if onnx_cache_dir is None:
                raise ValueError("inference='onnx' needs onnx_cache_dir")
            tower = onnx_tower_for(TEXT, name, onnx_cache_dir, threads or os.cpu_count() or 1)
            if tower:
                embedder = cls(tower, load_tokenizer(name), name, tower.dimension, "onnx")
                logger.info("Loaded the text tower of %s (onnx)", name)
                return embedder
        model, tokenizer = load_text_checkpoint(name)
        if inference != "torch":
            torch_device = torch.device("cpu")
        dimension = int(model.text_projection.out_features)
        embedder = cls(TorchTextTower(model, torch_device), tokenizer, name, dimension, "torch")
        logger.info("Loaded the text tower of %s on %s (torch)", name, torch_device)
        return embedder

    def tokens(self, text: str) -> Tokens:
        """The tower's input for ``text``: at most ``max_tokens`` ids, the end one last."""
        ids: list[int] = self.tokenizer(text, verbose=False)["input_ids"]
        truncated = len(ids) > self.max_tokens
        if truncated:
            ids = [*ids[: self.max_tokens - 1], self.end_token]
        words = sum(token not in self.special_tokens for token in ids)
        return Tokens(np.asarray([ids], np.int64), truncated, words)

    def embed_tokens(self, texts: list[NDArray[np.int64]]) -> NDArray[np.float32]:
        """Unit vectors of several texts' ids (``(n_i, tokens_i)`` each), one model call:
        padded with the end token, which the tower's causal attention makes harmless."""
        rows = [row for ids in texts for row in ids]
        if not rows:
            return np.empty((0, self.dimension), np.float32)
        longest = max(len(row) for row in rows)
        padded = np.full((len(rows), longest), self.end_token, np.int64)
        for number, row in enumerate(rows):
            padded[number, : len(row)] = row
        features = self.tower(padded)
        norms = np.linalg.norm(features, axis=1, keepdims=True)
        return np.asarray(features / np.maximum(norms, 1e-12), np.float32)

    def embed(self, text: str) -> NDArray[np.float32]:
        """The unit vector of one text (truncated to ``max_tokens``)."""
        vector: NDArray[np.float32] = self.embed_tokens([self.tokens(text).ids])[0]
        return vector
