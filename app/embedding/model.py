"""Loading a CLIP checkpoint's towers (the hub, the cache or a folder; ONNX exports), and
the image embedder: the image tower and its image processor. The text tower's embedder,
for text search, is ``app.embedding.text``.

Only the vision transformer and its projection are loaded
(``CLIPVisionModelWithProjection.from_pretrained`` reads them from a full ``CLIPModel``
checkpoint): its ``image_embeds`` are exactly ``CLIPModel.get_image_features``, without
the text tower's 250 MB of memory.

``MODEL_NAME`` may be a Hugging Face hub id or a local folder written by
``save_pretrained``. Loading never hangs on an unreachable hub: a name that is not in the
local cache is only downloaded when the hub answers a quick connection probe.
"""

import logging
import multiprocessing
import os
import socket
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlparse

import numpy as np
import torch
from filelock import FileLock
from numpy.typing import NDArray
from PIL import Image
from torch.ao.quantization import quantize_dynamic
from transformers import (
    AutoConfig,
    AutoImageProcessor,
    CLIPConfig,
    CLIPTextConfig,
    CLIPVisionConfig,
    CLIPVisionModelWithProjection,
    PretrainedConfig,
)
from transformers.utils import CONFIG_NAME
from transformers.utils import logging as transformers_logging
from transformers.utils.hub import cached_file

from app.embedding import onnx_tower
from app.errors import ModelLoadError
from app.log import configure_logging

logger = logging.getLogger(__name__)

HUB_PROBE_TIMEOUT_S = 3.0
# The ONNX export runs in a child process (tests that replace the exporter set False).
EXPORT_IN_CHILD = True
EXPORT_LOCK = ".export.lock"
# The towers, as ONNX exports name them.
VISION, TEXT = "vision", "text"
OFFLINE_HINT = (
    "To run offline, set MODEL_NAME to a local folder holding a CLIP checkpoint saved with "
    "save_pretrained (config.json, model weights, preprocessor_config.json)."
)


def resolve_device(requested: str) -> torch.device:
    """Map the DEVICE setting to a torch device; ``auto`` prefers CUDA."""
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise ModelLoadError(f"DEVICE={requested!r} but no CUDA device is available.")
    if requested == "mps" and not torch.backends.mps.is_available():
        raise ModelLoadError("DEVICE='mps' but no MPS device is available.")
    return torch.device(requested)


def _looks_like_path(name: str) -> bool:
    return name.startswith((".", "/", "~")) or Path(name).exists()


def _hub_reachable() -> bool:
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    parsed = urlparse(endpoint)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        with socket.create_connection((parsed.hostname or "", port), HUB_PROBE_TIMEOUT_S):
            return True
    except OSError:
        return False


def _hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def tower_config(name: str, local_files_only: bool, part: str) -> PretrainedConfig:
    """The config of one tower (``vision_config`` or ``text_config``) of a CLIP checkpoint,
    carrying the checkpoint's projection size, which the tower's own config lacks."""
    config = AutoConfig.from_pretrained(name, local_files_only=local_files_only)
    if isinstance(config, CLIPConfig):
        tower_config = getattr(config, part)
        assert isinstance(tower_config, CLIPVisionConfig | CLIPTextConfig)
        tower_config.projection_dim = config.projection_dim or tower_config.projection_dim
        return tower_config
    assert isinstance(config, PretrainedConfig)
    return config


@contextmanager
def quiet_loading() -> Iterator[None]:
    verbosity = transformers_logging.get_verbosity()
    # Loading one tower alone reports the other tower's weights as unexpected: expected.
    transformers_logging.set_verbosity(logging.ERROR)
    # Its "Loading weights" bar is terminal animation, not a log line. (The hub's
    # download bar stays: a first start shows its progress.)
    transformers_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    try:
        yield
    finally:
        transformers_logging.set_verbosity(verbosity)


def _vision_from_pretrained(
    name: str, local_files_only: bool = False
) -> tuple[CLIPVisionModelWithProjection, object]:
    with quiet_loading():
        config = tower_config(name, local_files_only, "vision_config")
        model = CLIPVisionModelWithProjection.from_pretrained(
            name, config=config, local_files_only=local_files_only
        )
    return model, load_processor(name, local_files_only)


def load_processor(name: str, local_files_only: bool = True) -> object:
    """The checkpoint's image processor (resize, crop, normalise), from local files unless
    told otherwise."""
    return AutoImageProcessor.from_pretrained(  # type: ignore[no-untyped-call]
        name, local_files_only=local_files_only
    )


def checkpoint_folder(name: str) -> Path | None:
    """The local folder holding ``name``'s files: the folder itself, or its snapshot in
    the Hugging Face cache; ``None`` when it is not on this machine (yet)."""
    if _looks_like_path(name):
        folder = Path(name).expanduser()
        return folder if (folder / "config.json").is_file() else None
    try:
        config = cached_file(name, CONFIG_NAME, local_files_only=True)
    except OSError:
        return None
    return Path(config).parent if config else None


Loaded = TypeVar("Loaded")


def load_from(
    name: str, loader: Callable[[str, bool], Loaded], setting: str = "MODEL_NAME"
) -> Loaded:
    """What ``loader`` reads from a local folder, the cache, or the hub; errors name
    ``setting``, the variable the operator set ``name`` in."""
    if _looks_like_path(name):
        folder = Path(name).expanduser()
        if not (folder / "config.json").is_file():
            raise ModelLoadError(
                f"{setting}={name!r} is not a folder holding a checkpoint "
                f"(no config.json there). {OFFLINE_HINT}"
            )
        try:
            return loader(str(folder), False)
        except Exception as exc:
            raise ModelLoadError(
                f"{setting}={name!r}: cannot load the checkpoint ({exc})."
            ) from exc
    try:
        return loader(name, True)
    except OSError:
        pass  # not cached: download below, if the hub can be reached at all
    if _hub_offline() or not _hub_reachable():
        raise ModelLoadError(
            f"{setting}={name!r} is not in the local Hugging Face cache and the hub cannot "
            f"be reached. {OFFLINE_HINT}"
        )
    try:
        return loader(name, False)
    except Exception as exc:
        raise ModelLoadError(f"{setting}={name!r}: cannot load the checkpoint ({exc}).") from exc


def load_checkpoint(name: str) -> tuple[CLIPVisionModelWithProjection, object]:
    """The image tower and image processor, from a local folder, the cache, or the hub."""
    return load_from(name, _vision_from_pretrained)


# Loads a checkpoint (a MODEL_NAME) and makes the graph of one of its towers: a function
# at a module's top level, so that the export's child process can be handed it.
GraphOf = Callable[[str], onnx_tower.TowerGraph]


def image_graph_of(name: str) -> onnx_tower.TowerGraph:
    return onnx_tower.image_graph(load_checkpoint(name)[0])


def _export(graph_of: GraphOf, name: str, cache_dir: Path, threads: int) -> bool:
    """Export the checkpoint's tower to the cache, in a child process: the export holds
    the model, the tracer's graphs and the exporter's buffers, about 0.6 GB for ViT-B/32
    that a process never gives back. Whether a usable export is there now."""
    arguments = (graph_of, name, cache_dir, threads, logging.getLogger().level)
    if not EXPORT_IN_CHILD:
        return _export_checkpoint(*arguments)
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as child:
        return child.submit(_export_checkpoint, *arguments).result()


def _export_checkpoint(
    graph_of: GraphOf, name: str, cache_dir: Path, threads: int, log_level: int
) -> bool:
    """In a child process: load the checkpoint, export the tower to the cache and check
    it (``onnx_tower.export_tower``); whether a usable export is there now."""
    if EXPORT_IN_CHILD:
        configure_logging(logging.getLevelName(log_level))
    graph = graph_of(name)
    checkpoint = checkpoint_folder(name)
    return bool(checkpoint and onnx_tower.export_tower(graph, name, checkpoint, cache_dir, threads))


def onnx_tower_for(
    kind: str, graph_of: GraphOf, name: str, cache_dir: Path, threads: int
) -> onnx_tower.OnnxTower | None:
    """The cached export of the checkpoint's ``kind`` tower (``VISION`` or ``TEXT``,
    made by ``graph_of``); else a fresh export, checked against the transformers model;
    else ``None`` (the export's failure is logged)."""
    checkpoint = checkpoint_folder(name)
    tower = checkpoint and onnx_tower.cached_tower(cache_dir, kind, name, checkpoint, threads)
    if tower:
        return tower
    # One export at a time per cache, across processes too (uvicorn --workers N): the
    # others wait, then open its result.
    cache_dir.mkdir(parents=True, exist_ok=True)
    with FileLock(cache_dir / EXPORT_LOCK):
        checkpoint = checkpoint_folder(name)
        tower = checkpoint and onnx_tower.cached_tower(cache_dir, kind, name, checkpoint, threads)
        if not tower and _export(graph_of, name, cache_dir, threads):
            checkpoint = checkpoint_folder(name)  # downloaded by now, if it was not before
            tower = checkpoint and onnx_tower.cached_tower(
                cache_dir, kind, name, checkpoint, threads
            )
    return tower or None


def quantize_int8(model: CLIPVisionModelWithProjection) -> CLIPVisionModelWithProjection:
    """Dynamic int8 quantisation of every linear layer, in place so the float weights are
    not held twice (weights int8, activations quantised per call): about 3 times faster
    on CPU, cosine to the float model >= 0.999 on the samples (``bench/service_bench.py``)."""
    with warnings.catch_warnings():
        # torch.ao.quantization is deprecated in favour of torchao, which is not a
        # dependency here; in torch 2.13 it is still the built-in CPU int8 path.
        warnings.simplefilter("ignore")
        quantized: CLIPVisionModelWithProjection = quantize_dynamic(  # type: ignore[no-untyped-call]
            model, {torch.nn.Linear}, dtype=torch.qint8, inplace=True
        )
    return quantized


class TorchTower:
    """Pixel values to projected image embeddings with the transformers model."""

    def __init__(self, model: CLIPVisionModelWithProjection, device: torch.device) -> None:
        self.model = model.to(device).eval()  # type: ignore[arg-type]
        self.device = device

    def __call__(self, pixels: NDArray[np.float32]) -> NDArray[np.float32]:
        with torch.inference_mode():
            embeds = self.model(pixel_values=torch.from_numpy(pixels).to(self.device)).image_embeds
        return np.asarray(embeds.float().cpu().numpy(), np.float32)


# A tower's input (pixel values, token ids) to its projected embeddings.
Tower = Callable[[NDArray[Any]], NDArray[np.float32]]


@dataclass(frozen=True)
class SquareInput:
    """What a CLIP image processor does to an RGB image of ``side`` x ``side`` pixels:
    resizing the shortest edge to ``side`` and centre-cropping ``side`` x ``side`` leave it
    as it is, so only rescaling and normalising remain, which numpy does in a tenth of the
    processor's time (``ImageEmbedder.pixels``; preprocessing always hands over such
    squares)."""

    side: int
    rescale: float
    mean: NDArray[np.float32]
    std: NDArray[np.float32]

    @classmethod
    def of(cls, processor: object) -> "SquareInput | None":
        """The shortcut for ``processor``; ``None`` when it is configured otherwise."""

        def option(name: str) -> Any:
            return getattr(processor, name, None)

        side = getattr(option("size"), "shortest_edge", None)
        crop = option("crop_size")
        square = (getattr(crop, "height", None), getattr(crop, "width", None)) == (side, side)
        steps = ("do_resize", "do_center_crop", "do_rescale", "do_normalize")
        if option("do_pad") or not isinstance(side, int):
            return None
        if not (square and all(option(step) for step in steps)):
            return None
        return cls(
            side,
            float(option("rescale_factor")),
            np.asarray(option("image_mean"), np.float32),
            np.asarray(option("image_std"), np.float32),
        )

    def applies_to(self, images: list[Image.Image]) -> bool:
        return all(image.mode == "RGB" and image.size == (self.side, self.side) for image in images)

    def pixels(self, images: list[Image.Image]) -> NDArray[np.float32]:
        values = np.stack([np.asarray(image, np.float32) for image in images]) * self.rescale
        return np.ascontiguousarray(((values - self.mean) / self.std).transpose(0, 3, 1, 2))


class ImageEmbedder:
    """Embeds RGB images into L2-normalised CLIP image vectors."""

    def __init__(
        self, tower: Tower, processor: object, name: str, dimension: int, inference: str
    ) -> None:
        self.tower = tower
        self.processor = processor
        self.square_input = SquareInput.of(processor)
        self.name = name
        self.dimension = dimension
        # The path that runs: torch, onnx or int8 (what INFERENCE=auto became).
        self.inference = inference

    @property
    def fingerprint(self) -> str:
        """Names the vectors this embedder makes: ONNX Runtime's equal the transformers
        model's (checked at export), int8 ones differ slightly."""
        return f"{self.name} [int8]" if self.inference == "int8" else self.name

    @classmethod
    def load(
        cls,
        name: str,
        device: str = "auto",
        inference: str = "torch",
        threads: int = 0,
        onnx_cache_dir: Path | None = None,
    ) -> "ImageEmbedder":
        """Load ``name`` (hub id or folder) onto ``device`` (a DEVICE setting value).

        ``inference``: ``torch`` (the transformers model), ``onnx`` (ONNX Runtime on the
        CPU, graph cached in ``onnx_cache_dir``; falls back to torch when no faithful graph
        can be had), ``int8`` (CPU only) or ``auto`` (onnx on the CPU, torch elsewhere).
        ``threads`` > 0 sets the model's CPU threads."""
        torch_device = resolve_device(device)
        if inference == "auto":
            inference = "onnx" if torch_device.type == "cpu" else "torch"
        if inference in ("int8", "onnx") and torch_device.type != "cpu":
            raise ModelLoadError(f"INFERENCE={inference} runs on the CPU only; set DEVICE=cpu.")
        if threads:
            torch.set_num_threads(threads)
        if inference == "onnx":
            if onnx_cache_dir is None:
                raise ValueError("inference='onnx' needs onnx_cache_dir")
            embedder = cls._load_onnx(name, onnx_cache_dir, threads or os.cpu_count() or 1)
        else:
            model, processor = load_checkpoint(name)
            if inference == "int8":
                model = quantize_int8(model)
            embedder = cls._on_torch(model, processor, name, torch_device, inference)
        logger.info("Loaded CLIP model %s on %s (%s)", name, torch_device, embedder.inference)
        return embedder

    @classmethod
    def _on_torch(
        cls,
        model: CLIPVisionModelWithProjection,
        processor: object,
        name: str,
        device: torch.device,
        inference: str,
    ) -> "ImageEmbedder":
        dimension = int(model.visual_projection.out_features)
        return cls(TorchTower(model, device), processor, name, dimension, inference)

    @classmethod
    def _load_onnx(cls, name: str, cache_dir: Path, threads: int) -> "ImageEmbedder":
        """The image tower's ONNX export (``onnx_tower_for``), else the transformers
        model."""
        tower = onnx_tower_for(VISION, image_graph_of, name, cache_dir, threads)
        if tower:
            return cls(tower, load_processor(name), name, tower.dimension, "onnx")
        model, processor = load_checkpoint(name)
        return cls._on_torch(model, processor, name, torch.device("cpu"), "torch")

    def pixels(self, images: list[Image.Image]) -> NDArray[np.float32]:
        """The model's input for ``images``, ``(n, 3, side, side)``: resized, cropped and
        normalised by the checkpoint's image processor."""
        if not images:
            return np.empty((0, 3, 0, 0), np.float32)
        if self.square_input is not None and self.square_input.applies_to(images):
            return self.square_input.pixels(images)
        inputs = self.processor(images=images, return_tensors="np")  # type: ignore[operator]
        return np.asarray(inputs["pixel_values"], np.float32)

    def embed_pixels(self, pixels: NDArray[np.float32]) -> NDArray[np.float32]:
        """Return an ``(n, dimension)`` float32 array of unit vectors for ``pixels``."""
        if not len(pixels):
            return np.empty((0, self.dimension), dtype=np.float32)
        features = self.tower(pixels)
        norms = np.linalg.norm(features, axis=1, keepdims=True)
        return np.asarray(features / np.maximum(norms, 1e-12), np.float32)

    def embed(self, images: list[Image.Image]) -> NDArray[np.float32]:
        """Return an ``(len(images), dimension)`` float32 array of unit vectors."""
        return self.embed_pixels(self.pixels(images))
