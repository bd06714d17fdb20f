"""ONNX Runtime, the default CPU path: equal to the transformers model, exported once,
exported again when the cached graph no longer matches the weights, and never in the way
when it cannot be had."""

import logging
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient
from PIL import Image
from transformers import CLIPModel

from app import onnx_tower
from app.image_decoding import decode_image
from app.model import ImageEmbedder
from app.preprocessing import prepare_for_embedding
from tests.conftest import EXAMPLE_IMAGES

SEARCH = "/search-similar-images/"


@pytest.fixture(scope="module")
def samples() -> list[Image.Image]:
    return [
        prepare_for_embedding(decode_image((EXAMPLE_IMAGES / f"imagen{n}.jpg").read_bytes(), 10**8))
        for n in range(1, 7)
    ]


@pytest.fixture
def exports(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """The paths the ONNX exporter is asked to write, in order."""
    written: list[Path] = []
    real_export = onnx_tower.export

    def counting_export(model: torch.nn.Module, path: Path) -> None:
        written.append(path)
        real_export(model, path)  # type: ignore[arg-type]

    monkeypatch.setattr(onnx_tower, "export", counting_export)
    return written


def load(model_dir: Path, cache_dir: Path, inference: str = "auto") -> ImageEmbedder:
    return ImageEmbedder.load(str(model_dir), "cpu", inference, 0, cache_dir)


def test_onnx_embeddings_equal_the_transformers_model(
    tiny_model_dir: Path, onnx_cache_dir: Path, samples: list[Image.Image]
) -> None:
    onnx = load(tiny_model_dir, onnx_cache_dir)
    reference = load(tiny_model_dir, onnx_cache_dir, "torch")

    assert (onnx.inference, reference.inference) == ("onnx", "torch")
    np.testing.assert_allclose(onnx.embed(samples), reference.embed(samples), atol=1e-5)
    assert onnx.fingerprint == reference.fingerprint  # so switching re-embeds nothing


def test_the_graph_is_exported_once_and_reused_at_the_next_start(
    tiny_model_dir: Path, tmp_path: Path, exports: list[Path]
) -> None:
    load(tiny_model_dir, tmp_path)
    second = load(tiny_model_dir, tmp_path)

    assert len(exports) == 1 and exports[0].is_file()
    assert [path.name for path in tmp_path.iterdir()] == [exports[0].name]  # no temp files
    assert second.inference == "onnx"


def test_new_weights_under_the_same_name_are_exported_again(
    tiny_model_dir: Path, tmp_path: Path, exports: list[Path], samples: list[Image.Image]
) -> None:
    model_dir = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model_dir)
    load(model_dir, tmp_path / "cache")
    retrained = CLIPModel.from_pretrained(model_dir)
    with torch.no_grad():
        for parameter in retrained.parameters():
            parameter.add_(0.05 * torch.randn_like(parameter))
    retrained.save_pretrained(model_dir)

    embedder = load(model_dir, tmp_path / "cache")

    assert len(exports) == 2 and exports[0] == exports[1]
    reference = load(model_dir, tmp_path / "cache", "torch")
    np.testing.assert_allclose(embedder.embed(samples), reference.embed(samples), atol=1e-5)


def test_a_failing_export_falls_back_to_transformers_with_a_warning(
    make_client: Callable[..., TestClient],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken_export(model: torch.nn.Module, path: Path) -> None:
        raise RuntimeError("unsupported operator")

    monkeypatch.setattr(onnx_tower, "export", broken_export)

    with caplog.at_level(logging.WARNING, logger="app.onnx_tower"):
        client = make_client(onnx_cache_dir=tmp_path)

    assert client.get("/health").json()["inference"] == "torch"
    assert "unsupported operator" in caplog.text and "using transformers" in caplog.text
    name = "imagen3.jpg"
    response = client.post(SEARCH, files={"file": (name, (EXAMPLE_IMAGES / name).read_bytes())})
    assert response.json()["results"][0]["id"] == name


def test_inference_torch_setting_skips_onnx(
    make_client: Callable[..., TestClient], tmp_path: Path
) -> None:
    client = make_client(inference="torch", onnx_cache_dir=tmp_path / "onnx")

    assert client.get("/health").json()["inference"] == "torch"
    assert not (tmp_path / "onnx").exists()
