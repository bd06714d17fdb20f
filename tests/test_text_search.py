"""Search by words: a text's vector is the checkpoint's own CLIP text features (ONNX
Runtime and transformers), the ranking is the cosine ranking to it computed here
independently, bad texts and bodies answer clear 4xx, and TEXT_SEARCH=false loads no text
tower and answers 404 saying how to turn it on."""

import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient
from transformers import (
    AutoTokenizer,
    CLIPImageProcessor,
    CLIPModel,
)

from app.embedding import onnx_tower
from app.embedding.model_source import HubAccess
from app.embedding.text import TextTower, text_graph_of
from app.errors import ModelLoadError
from app.imaging.decoding import decode_image
from app.imaging.preprocessing import prepare_for_embedding
from app.main import create_app
from tests.conftest import BOTH_STORES, folder_files, tower_options

pytestmark = BOTH_STORES

SEARCH_BY_TEXT = "/search-by-text"
TEXTS = [
    "a running stick figure with a crossed circle for a head",
    "toro",
    "una marca con dos letras entrelazadas, la T y la R, sobre una línea",
    # Over the tower's 77 tokens: cut to its first 75 between the start and end tokens.
    "a circle crossed by a vertical bar with three small triangles on its left " * 4,
]


def clip_text_features(model_dir: Path, texts: list[str]) -> np.ndarray:
    """CLIPModel.get_text_features of the full checkpoint, the tokenizer padding and
    truncating as transformers' own examples do; unit vectors."""
    model = CLIPModel.from_pretrained(model_dir)  # in eval mode
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    inputs = tokenizer(texts, padding=True, truncation=True, max_length=77, return_tensors="pt")
    with torch.inference_mode():
        features = model.get_text_features(**inputs).pooler_output
    return torch.nn.functional.normalize(features, dim=-1).numpy()


@pytest.mark.parametrize("inference", ["onnx", "torch"])
def test_a_texts_vector_equals_clips_text_features_of_the_same_checkpoint(
    inference: str, tiny_model_dir: Path, onnx_cache_dir: Path
) -> None:
    embedder = TextTower.load(str(tiny_model_dir), tower_options(inference, onnx_cache_dir))
    expected = clip_text_features(tiny_model_dir, TEXTS)

    one_by_one = np.stack([embedder.embed_text(text) for text in TEXTS])
    in_one_call = embedder.embed([embedder.tokens(text).ids for text in TEXTS])

    assert embedder.inference == inference
    np.testing.assert_allclose(one_by_one, expected, atol=1e-5)
    np.testing.assert_allclose(in_one_call, expected, atol=1e-5)
    assert [embedder.tokens(text).truncated for text in TEXTS] == [False, False, False, True]
    assert embedder.tokens(TEXTS[-1]).ids.shape == (1, 77)


def collection_concepts(model_dir: Path, images_dir: Path) -> dict[str, np.ndarray]:
    """Each image's CLIP image features from the full checkpoint, on what the embedder
    sees (grid removed, framed), as unit vectors."""
    model = CLIPModel.from_pretrained(model_dir)  # in eval mode
    processor = CLIPImageProcessor.from_pretrained(model_dir)
    names = folder_files(images_dir)
    framed = [
        prepare_for_embedding(decode_image((images_dir / name).read_bytes(), 10**8))
        for name in names
    ]
    with torch.inference_mode():
        pixels = processor(images=framed, return_tensors="pt")["pixel_values"]
        features = model.get_image_features(pixel_values=pixels).pooler_output
    vectors = torch.nn.functional.normalize(features, dim=-1).numpy()
    return dict(zip(names, vectors, strict=True))


def test_a_text_ranks_the_collection_by_cosine_to_its_clip_text_features(
    client: TestClient, tiny_model_dir: Path, images_dir: Path
) -> None:
    text = TEXTS[0]
    concepts = collection_concepts(tiny_model_dir, images_dir)
    query = clip_text_features(tiny_model_dir, [text])[0]
    expected = sorted(concepts, key=lambda name: -float(concepts[name] @ query))

    response = client.post(SEARCH_BY_TEXT, json={"text": text, "top_k": len(concepts)})

    assert response.status_code == 200
    body = response.json()
    assert [result["id"] for result in body["results"]] == expected
    for result in body["results"]:
        cosine = float(concepts[result["id"]] @ query)
        assert result["similarity"] == pytest.approx(cosine, abs=1e-4)
        assert result["concept_similarity"] == pytest.approx(cosine, abs=1e-4)
        assert result["distance"] == pytest.approx(1 - cosine, abs=1e-4)
        assert result["shape_similarity"] is None and result["turn"] is None
        assert result["url"].endswith(f"/static/{result['id']}")
    assert body["text_truncated"] is False


def test_the_address_bar_form_answers_what_the_json_form_does(client: TestClient) -> None:
    posted = client.post(SEARCH_BY_TEXT, json={"text": TEXTS[1], "top_k": 3})
    addressed = client.get(SEARCH_BY_TEXT, params={"q": TEXTS[1], "top_k": 3})

    assert addressed.status_code == 200
    assert addressed.json() == posted.json()
    assert len(addressed.json()["results"]) == 3


def test_top_k_and_min_similarity_bound_the_results(client: TestClient) -> None:
    everything = client.post(SEARCH_BY_TEXT, json={"text": TEXTS[0], "top_k": 100}).json()
    scores = [result["similarity"] for result in everything["results"]]
    threshold = scores[2]  # the third best's score

    bounded = client.post(
        SEARCH_BY_TEXT, json={"text": TEXTS[0], "top_k": 100, "min_similarity": threshold}
    ).json()

    assert len(scores) == 8 and scores == sorted(scores, reverse=True)
    assert [result["similarity"] for result in bounded["results"]] == scores[:3]


def test_a_text_over_77_tokens_is_cut_and_the_answer_says_so(client: TestClient) -> None:
    long_text = TEXTS[-1]
    cut = " ".join(long_text.split()[:40])  # more words than 75 tokens hold

    response = client.post(SEARCH_BY_TEXT, json={"text": long_text, "top_k": 8})
    shorter = client.post(SEARCH_BY_TEXT, json={"text": cut, "top_k": 8})

    assert response.status_code == 200
    assert response.json()["text_truncated"] is True
    assert shorter.json()["text_truncated"] is True
    assert response.json()["results"] == shorter.json()["results"]  # the same first 75 tokens


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        (b'{"text": ""}', 422, "The text is empty"),
        (b'{"text": " \\n\\t "}', 422, "The text is empty"),
        (b'{"text": "' + b"a" * 1001 + b'"}', 422, "at most 1000"),
        (b'{"text": "caf\xe9"}', 400, "not valid UTF-8"),
        (b'{"text": "toro"', 422, "JSON decode error"),
        (b'{"words": "toro"}', 422, "Field required"),
        (b'{"text": 7}', 422, "valid string"),
        (b'{"text": "toro", "top_k": 0}', 422, "greater than or equal to 1"),
        (b'{"text": "toro", "min_similarity": 2}', 422, "less than or equal to 1"),
        (b'{"text": "toro", "min_similarity": false}', 422, "valid number"),
        (b'{"text": "toro", "top_k": true}', 422, "valid integer"),
    ],
)
def test_bad_texts_and_bodies_answer_a_clear_4xx(
    client: TestClient, body: bytes, status: int, message: str
) -> None:
    response = client.post(
        SEARCH_BY_TEXT, content=body, headers={"Content-Type": "application/json"}
    )

    assert response.status_code == status
    assert message in str(response.json()["detail"])


def test_the_address_bar_form_refuses_a_missing_or_empty_q(client: TestClient) -> None:
    assert client.get(SEARCH_BY_TEXT).status_code == 422
    empty = client.get(SEARCH_BY_TEXT, params={"q": "  "})
    assert empty.status_code == 422 and "The text is empty" in empty.json()["detail"]


def test_text_search_off_loads_no_text_tower_and_answers_404_saying_how_to_enable_it(
    make_client: Callable[..., TestClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    loads: list[str] = []
    real_load = TextTower.load.__func__  # type: ignore[attr-defined]

    def counting_load(cls: type[TextTower], name: str, *args: object) -> TextTower:
        loads.append(name)
        return real_load(cls, name, *args)  # type: ignore[no-any-return]

    monkeypatch.setattr(TextTower, "load", classmethod(counting_load))
    client = make_client(text_search=False)

    response = client.post(SEARCH_BY_TEXT, json={"text": "toro"})

    assert response.status_code == 404
    assert "TEXT_SEARCH=true" in response.json()["detail"]
    assert client.get(SEARCH_BY_TEXT, params={"q": "toro"}).status_code == 404
    assert client.get("/health").json()["text_search"] is False
    assert loads == []
    on = make_client()
    assert on.get("/health").json()["text_search"] is True
    assert len(loads) == 1


def test_a_text_export_that_differs_from_the_model_is_not_used(
    tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other_dir = tmp_path / "other"
    shutil.copytree(tiny_model_dir, other_dir)
    other = CLIPModel.from_pretrained(other_dir)
    with torch.no_grad():
        for parameter in other.parameters():
            parameter.add_(0.05 * torch.randn_like(parameter))
    other.save_pretrained(other_dir)
    other_graph = text_graph_of(str(other_dir), HubAccess("https://huggingface.co", True))
    real_export = onnx_tower.export

    def export_of_other_weights(graph: onnx_tower.TowerGraph, path: Path) -> None:
        real_export(other_graph, path)

    monkeypatch.setattr(onnx_tower, "export", export_of_other_weights)
    options = tower_options("onnx", tmp_path / "cache", export_in_child=False)

    embedder = TextTower.load(str(tiny_model_dir), options)

    assert embedder.inference == "torch"
    assert not any(path.name.startswith("clip-text-") for path in (tmp_path / "cache").iterdir())
    np.testing.assert_allclose(
        embedder.embed_text(TEXTS[0]), clip_text_features(tiny_model_dir, TEXTS[:1])[0], atol=1e-5
    )


def test_the_text_tower_is_exported_once_and_reused_by_the_next_start(
    tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    exported: list[str] = []
    real_export = onnx_tower.export

    def counting_export(graph: onnx_tower.TowerGraph, path: Path) -> None:
        exported.append(graph.kind)
        real_export(graph, path)

    monkeypatch.setattr(onnx_tower, "export", counting_export)
    options = tower_options("onnx", tmp_path, export_in_child=False)

    first = TextTower.load(str(tiny_model_dir), options)
    second = TextTower.load(str(tiny_model_dir), options)

    assert exported == ["text"]
    assert (first.inference, second.inference) == ("onnx", "onnx")
    np.testing.assert_array_equal(first.embed_text(TEXTS[1]), second.embed_text(TEXTS[1]))


def test_the_openapi_documents_text_search_with_an_example(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    post = spec["paths"][SEARCH_BY_TEXT]["post"]
    request_schema = spec["components"]["schemas"]["TextSearchRequest"]

    assert "get" in spec["paths"][SEARCH_BY_TEXT]
    assert {"200", "404", "422", "503"} <= set(post["responses"])
    assert request_schema["examples"][0]["text"]


def test_a_checkpoint_saved_without_its_tokenizer_serves_images_and_says_why_text_is_off(
    make_client: Callable[..., TestClient], tiny_model_dir: Path, images_dir: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "saved-without-tokenizer"
    shutil.copytree(tiny_model_dir, folder)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (folder / name).unlink()
    client = make_client(model_name=str(folder), onnx_cache_dir=tmp_path / "onnx")

    response = client.post(SEARCH_BY_TEXT, json={"text": "toro"})
    image = (images_dir / "imagen3.jpg").read_bytes()
    searched = client.post("/search-similar-images/", files={"file": ("q.jpg", image)})

    assert response.status_code == 404
    assert "tokenizer" in response.json()["detail"]
    assert "TEXT_SEARCH=false" in response.json()["detail"]
    assert client.get("/health").json()["text_search"] is False
    assert searched.status_code == 200 and searched.json()["results"][0]["id"] == "imagen3.jpg"


def test_a_text_model_that_cannot_be_loaded_fails_start_up_naming_text_model_name(
    make_settings: Callable[..., object], tmp_path: Path
) -> None:
    settings = make_settings(text_model_name=str(tmp_path / "no-such-text-model"))
    app = create_app(settings)  # type: ignore[arg-type]

    with pytest.raises(ModelLoadError) as failed, TestClient(app):
        pass
    assert failed.value.message.startswith(f"TEXT_MODEL_NAME='{tmp_path}/no-such-text-model'")
