"""ONNX Runtime, the default CPU path: equal to the transformers model, exported once,
exported again for new weights, refused when it differs from the model, and never in the
way when it cannot be had."""

import logging
import shutil
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient
from PIL import Image
from transformers import CLIPModel

from app import service as service_module
from app.config import Settings
from app.embedding import image as image_module
from app.embedding import onnx_tower
from app.embedding.image import ImageTower
from app.embedding.model_source import HubAccess
from app.embedding.text import TextTower
from app.embedding.tower import Tower, TowerOptions
from app.errors import ConfigError
from app.imaging.decoding import decode_image
from app.imaging.preprocessing import prepare_for_embedding
from tests.conftest import EXAMPLE_IMAGES, tower_options

SEARCH = "/search-similar-images/"


@pytest.fixture(scope="module")
def samples() -> list[Image.Image]:
    return [
        prepare_for_embedding(decode_image((EXAMPLE_IMAGES / f"imagen{n}.jpg").read_bytes(), 10**8))
        for n in range(1, 7)
    ]


@pytest.fixture
def exports(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """The paths the ONNX exporter is asked to write, in order (``load`` runs the export
    in this process to see the calls)."""
    written: list[Path] = []
    real_export = onnx_tower.export

    def counting_export(graph: onnx_tower.TowerGraph, path: Path) -> None:
        written.append(path)
        real_export(graph, path)

    monkeypatch.setattr(onnx_tower, "export", counting_export)
    return written


def exports_in(cache: Path) -> list[Path]:
    """The cache's entries, leaving out the hidden lock file workers share."""
    return [path for path in cache.iterdir() if not path.name.startswith(".")]


def load(
    model_dir: Path, cache_dir: Path, inference: str = "auto", in_child: bool = False
) -> ImageTower:
    return ImageTower.load(str(model_dir), tower_options(inference, cache_dir, in_child))


TEXTS = ["a circle crossed by a vertical bar", "una herradura con dos puntos"]


def tower_inputs(tower: Tower[object], samples: list[Image.Image]) -> list[np.ndarray]:
    """What each tower reads: the samples' pixels, or the texts' tokens."""
    if isinstance(tower, ImageTower):
        return [tower.pixels(samples)]
    assert isinstance(tower, TextTower)
    return [tower.tokens(text).ids for text in TEXTS]


@pytest.mark.parametrize("tower_class", [ImageTower, TextTower])
def test_onnx_embeddings_equal_the_transformers_model_for_both_towers(
    tower_class: type[Tower[object]],
    tiny_model_dir: Path,
    onnx_cache_dir: Path,
    samples: list[Image.Image],
) -> None:
    onnx = tower_class.load(str(tiny_model_dir), tower_options("auto", onnx_cache_dir))
    reference = tower_class.load(str(tiny_model_dir), tower_options("torch"))

    assert (onnx.inference, reference.inference) == ("onnx", "torch")
    np.testing.assert_allclose(
        onnx.embed(tower_inputs(onnx, samples)),
        reference.embed(tower_inputs(reference, samples)),
        atol=1e-5,
    )
    assert onnx.fingerprint == reference.fingerprint  # so switching re-embeds nothing


def count_checkpoint_loads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The checkpoints this process loads with transformers from now on."""
    loads: list[str] = []
    real_load = image_module.load_image_checkpoint

    def counting_load(name: str, hub: HubAccess, setting: str = "MODEL_NAME") -> object:
        loads.append(name)
        return real_load(name, hub, setting)

    monkeypatch.setattr(image_module, "load_image_checkpoint", counting_load)
    return loads


def test_the_graph_is_exported_once_and_the_next_start_loads_no_transformers_weights(
    tiny_model_dir: Path, tmp_path: Path, exports: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    load(tiny_model_dir, tmp_path)
    checkpoint_loads = count_checkpoint_loads(monkeypatch)

    second = load(tiny_model_dir, tmp_path)

    assert len(exports) == 1 and (exports[0] / onnx_tower.GRAPH_FILE).is_file()
    assert exports_in(tmp_path) == [exports[0]]  # no temp files
    assert second.inference == "onnx" and checkpoint_loads == []


def test_the_export_runs_in_a_child_process_so_this_one_never_holds_the_weights(
    tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    parent_loads = count_checkpoint_loads(monkeypatch)

    embedder = load(tiny_model_dir, tmp_path, in_child=True)

    assert embedder.inference == "onnx" and parent_loads == []
    assert len(exports_in(tmp_path)) == 1
    assert (exports_in(tmp_path)[0] / onnx_tower.GRAPH_FILE).is_file()


def perturb_weights(model_dir: Path) -> None:
    """Save other weights under the same name, as a retrained checkpoint would."""
    retrained = CLIPModel.from_pretrained(model_dir)
    with torch.no_grad():
        for parameter in retrained.parameters():
            parameter.add_(0.05 * torch.randn_like(parameter))
    retrained.save_pretrained(model_dir)


def test_new_weights_under_the_same_name_are_exported_again_and_replace_the_old_graph(
    tiny_model_dir: Path, tmp_path: Path, exports: list[Path], samples: list[Image.Image]
) -> None:
    model_dir, cache = tmp_path / "model", tmp_path / "cache"
    shutil.copytree(tiny_model_dir, model_dir)
    load(model_dir, cache)
    perturb_weights(model_dir)

    embedder = load(model_dir, cache)

    assert len(exports) == 2 and exports[0] != exports[1]
    assert exports_in(cache) == [exports[1]]
    reference = load(model_dir, cache, "torch")
    np.testing.assert_allclose(
        embedder.embed_images(samples), reference.embed_images(samples), atol=1e-5
    )


def test_an_export_that_differs_from_the_model_is_not_used(
    tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other_dir = tmp_path / "other"
    shutil.copytree(tiny_model_dir, other_dir)
    perturb_weights(other_dir)
    hub = HubAccess("https://huggingface.co", offline=True)
    other_model, _ = image_module.load_image_checkpoint(str(other_dir), hub)
    real_export = onnx_tower.export

    def export_of_other_weights(graph: onnx_tower.TowerGraph, path: Path) -> None:
        real_export(onnx_tower.image_graph(other_model), path)

    monkeypatch.setattr(onnx_tower, "export", export_of_other_weights)

    embedder = load(tiny_model_dir, tmp_path / "cache")

    assert embedder.inference == "torch"
    assert exports_in(tmp_path / "cache") == []


def test_a_failing_export_falls_back_to_transformers_with_a_warning(
    make_client: Callable[..., TestClient],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken_export(graph: onnx_tower.TowerGraph, path: Path) -> None:
        raise RuntimeError("unsupported operator")

    monkeypatch.setattr(onnx_tower, "export", broken_export)
    real_options = service_module.tower_options

    def exporting_here(settings: Settings) -> TowerOptions:
        return replace(real_options(settings), export_in_child=False)

    monkeypatch.setattr(service_module, "tower_options", exporting_here)

    with caplog.at_level(logging.WARNING, logger="app.embedding.onnx_tower"):
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


def test_a_collection_of_ones_own_starts_without_exporting_the_model_again(
    make_client: Callable[..., TestClient], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    make_client(onnx_cache_dir=None, inference="onnx").close()
    refused = "give it a new store too: a new INDEX_DIR"
    with pytest.raises(ConfigError, match=refused):
        make_client(onnx_cache_dir=None, inference="onnx", images_dir=tmp_path / "brands")
    caplog.clear()

    own = make_client(
        onnx_cache_dir=None,
        inference="onnx",
        images_dir=tmp_path / "brands",
        index_dir=tmp_path / "data-brands",
    )

    assert own.get("/health").json()["inference"] == "onnx"
    assert own.get("/health").json()["indexed_images"] == 0
    assert "Exporting the" not in caplog.text
    assert not (tmp_path / "data-brands" / "onnx").exists()
