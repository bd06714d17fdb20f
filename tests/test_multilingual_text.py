"""TEXT_MODEL_NAME with a sentence-transformers encoder trained into CLIP's space (the
layout of clip-ViT-B-32-multilingual-v1: a DistilBERT, mean pooling, a Dense layer),
loaded without the sentence-transformers framework: a text's vector equals the mean of
the DistilBERT's token states over the text times the Dense weights, computed here
independently (ONNX Runtime and torch), and the service ranks by it."""

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient
from safetensors.torch import load_file, save_file
from transformers import (
    AutoModel,
    AutoTokenizer,
    BertTokenizer,
    DistilBertConfig,
    DistilBertModel,
)

from app.embedding.text import TextTower
from tests.conftest import tower_options
from tests.test_text_search import SEARCH_BY_TEXT, collection_concepts

TINY_CLIP_WIDTH = 24  # the tiny CLIP's projection: the encoder must land in its space
MAX_SEQ_LENGTH = 16
SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
WORDS = ["una", "marca", "con", "un", "círculo", "cruzado", "por", "barra", "toro", "a"]
TEXTS = [
    "una marca con un círculo cruzado por una barra",
    "toro",
    "ñandú 🐂",  # unknown words: [UNK]
    "toro " * 30,  # over MAX_SEQ_LENGTH tokens: cut, [SEP] kept
]


def save_tiny_sentence_encoder(folder: Path) -> Path:
    """A tiny multilingual-CLIP-like encoder in sentence-transformers' folder layout."""
    torch.manual_seed(1)
    letters = list("abcdefghijklmnopqrstuvwxyzáéíóúñ")
    vocabulary = SPECIAL + WORDS + letters + ["##" + letter for letter in letters]
    tokenizer = BertTokenizer(vocab={token: n for n, token in enumerate(vocabulary)})
    tokenizer.save_pretrained(folder)
    config = DistilBertConfig(
        vocab_size=len(vocabulary),
        dim=32,
        hidden_dim=64,
        n_layers=2,
        n_heads=4,
        max_position_embeddings=64,
        pad_token_id=0,
    )
    DistilBertModel(config).save_pretrained(folder)
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {
            "idx": 1,
            "name": "1",
            "path": "1_Pooling",
            "type": "sentence_transformers.models.Pooling",
        },
        {"idx": 2, "name": "2", "path": "2_Dense", "type": "sentence_transformers.models.Dense"},
    ]
    (folder / "modules.json").write_text(json.dumps(modules))
    (folder / "sentence_bert_config.json").write_text(
        json.dumps({"max_seq_length": MAX_SEQ_LENGTH, "do_lower_case": False})
    )
    (folder / "1_Pooling").mkdir()
    (folder / "1_Pooling" / "config.json").write_text(
        json.dumps({"word_embedding_dimension": 32, "pooling_mode_mean_tokens": True})
    )
    (folder / "2_Dense").mkdir()
    (folder / "2_Dense" / "config.json").write_text(
        json.dumps(
            {
                "in_features": 32,
                "out_features": TINY_CLIP_WIDTH,
                "bias": False,
                "activation_function": "torch.nn.modules.linear.Identity",
            }
        )
    )
    save_file(
        {"linear.weight": torch.randn(TINY_CLIP_WIDTH, 32)},
        str(folder / "2_Dense" / "model.safetensors"),
    )
    return folder


@pytest.fixture(scope="module")
def encoder_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_sentence_encoder(tmp_path_factory.mktemp("multilingual"))


def mean_pooled(folder: Path, texts: list[str]) -> np.ndarray:
    """The encoder's vectors as its architecture defines them, unit length."""
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModel.from_pretrained(folder)
    inputs = tokenizer(
        texts, padding=True, truncation=True, max_length=MAX_SEQ_LENGTH, return_tensors="pt"
    )
    with torch.inference_mode():
        states = model(**inputs).last_hidden_state
    mask = inputs["attention_mask"].unsqueeze(-1).float()
    pooled = (states * mask).sum(1) / mask.sum(1)
    weight = load_file(str(folder / "2_Dense" / "model.safetensors"))["linear.weight"]
    return torch.nn.functional.normalize(pooled @ weight.T, dim=-1).numpy()


@pytest.mark.parametrize("inference", ["onnx", "torch"])
def test_a_texts_vector_is_the_encoders_mean_pooled_projection(
    inference: str, encoder_dir: Path, onnx_cache_dir: Path
) -> None:
    embedder = TextTower.load(str(encoder_dir), tower_options(inference, onnx_cache_dir))
    expected = mean_pooled(encoder_dir, TEXTS)

    one_by_one = np.stack([embedder.embed_text(text) for text in TEXTS])
    in_one_call = embedder.embed([embedder.tokens(text).ids for text in TEXTS])

    assert (embedder.inference, embedder.dimension) == (inference, TINY_CLIP_WIDTH)
    np.testing.assert_allclose(one_by_one, expected, atol=1e-5)
    np.testing.assert_allclose(in_one_call, expected, atol=1e-5)
    cut = embedder.tokens(TEXTS[-1])
    assert cut.truncated and cut.ids.shape == (1, MAX_SEQ_LENGTH)
    assert cut.ids[0, -1] == embedder.reader.end  # [SEP]
    assert embedder.tokens("🐂").words == 1  # an unknown word ([UNK]) is still a word


def test_the_service_ranks_by_the_encoders_vector_with_text_model_name(
    make_client: Callable[..., TestClient],
    encoder_dir: Path,
    tiny_model_dir: Path,
    images_dir: Path,
) -> None:
    client = make_client(text_model_name=str(encoder_dir))
    concepts = collection_concepts(tiny_model_dir, images_dir)
    query = mean_pooled(encoder_dir, [TEXTS[0]])[0]
    expected = sorted(concepts, key=lambda name: -float(concepts[name] @ query))

    body = client.post(SEARCH_BY_TEXT, json={"text": TEXTS[0], "top_k": 20}).json()

    assert [result["id"] for result in body["results"]] == expected
    for result in body["results"]:
        assert result["similarity"] == pytest.approx(
            float(concepts[result["id"]] @ query), abs=1e-4
        )
    assert client.post(SEARCH_BY_TEXT, json={"text": TEXTS[-1]}).json()["text_truncated"]
