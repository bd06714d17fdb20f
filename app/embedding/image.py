"""The image tower: CLIP's vision transformer and projection, and its image processor.

Only the vision transformer and its projection are loaded
(``CLIPVisionModelWithProjection.from_pretrained`` reads them from a full ``CLIPModel``
checkpoint): its ``image_embeds`` are exactly ``CLIPModel.get_image_features``, without
the text tower's 250 MB of memory.

Pipeline: RGB images -> pixel values (``pixels``: the processor's resizing, cropping
and normalising, or numpy's equal shortcut for the squares preprocessing hands over)
-> ``Tower.embed`` -> unit vectors.
"""

import functools
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from PIL import Image
from torch.ao.quantization import quantize_dynamic
from transformers import AutoImageProcessor, CLIPVisionModelWithProjection

from app.embedding import onnx_tower
from app.embedding.loading import GraphOf, load_from, quiet_loading, tower_config
from app.embedding.model_source import HubAccess
from app.embedding.onnx_tower import ClipImageEmbeds
from app.embedding.tower import Tower


def load_processor(name: str, local_files_only: bool = True) -> object:
    """The checkpoint's image processor (resize, crop, normalise), from local files unless
    told otherwise."""
    return AutoImageProcessor.from_pretrained(  # type: ignore[no-untyped-call]
        name, local_files_only=local_files_only
    )


def _vision_from_pretrained(name: str, local_files_only: bool) -> tuple[ClipImageEmbeds, object]:
    with quiet_loading():
        config = tower_config(name, local_files_only, "vision_config")
        model = CLIPVisionModelWithProjection.from_pretrained(
            name, config=config, local_files_only=local_files_only
        )
    return ClipImageEmbeds(model), load_processor(name, local_files_only)


def load_image_checkpoint(
    name: str, hub: HubAccess, setting: str = "MODEL_NAME"
) -> tuple[ClipImageEmbeds, object]:
    """The image tower and its processor, from a local folder, the cache, or the hub."""
    return load_from(name, _vision_from_pretrained, hub, setting)


def image_graph_of(name: str, hub: HubAccess) -> onnx_tower.TowerGraph:
    return onnx_tower.image_graph(load_image_checkpoint(name, hub)[0])


def quantize_int8(module: torch.nn.Module) -> torch.nn.Module:
    """Dynamic int8 quantisation of every linear layer, in place so the float weights are
    not held twice (weights int8, activations quantised per call): about 3 times faster
    on CPU, cosine to the float model >= 0.999 on the samples (``bench/service_bench.py``)."""
    with warnings.catch_warnings():
        # torch.ao.quantization is deprecated in favour of torchao, which is not a
        # dependency here; in torch 2.13 it is still the built-in CPU int8 path.
        warnings.simplefilter("ignore")
        quantized: torch.nn.Module = quantize_dynamic(  # type: ignore[no-untyped-call]
            module, {torch.nn.Linear}, dtype=torch.qint8, inplace=True
        )
    return quantized


@dataclass(frozen=True)
class SquareInput:
    """What a CLIP image processor does to an RGB image of ``side`` x ``side`` pixels:
    resizing the shortest edge to ``side`` and centre-cropping ``side`` x ``side`` leave it
    as it is, so only rescaling and normalising remain, which numpy does in a tenth of the
    processor's time (``ImageTower.pixels``; preprocessing always hands over such
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


class ImageTower(Tower[object]):
    """RGB images to unit CLIP image vectors; its reader is the image processor."""

    kind = "vision"
    weight_prefixes = ("vision_model.", "visual_projection.")

    @functools.cached_property
    def square_input(self) -> SquareInput | None:
        return SquareInput.of(self.reader)

    def pixels(self, images: list[Image.Image]) -> NDArray[np.float32]:
        """The model's input for ``images``, ``(n, 3, side, side)``: resized, cropped and
        normalised by the checkpoint's image processor."""
        if not images:
            return np.empty((0, 3, 0, 0), np.float32)
        if self.square_input is not None and self.square_input.applies_to(images):
            return self.square_input.pixels(images)
        inputs = self.reader(images=images, return_tensors="np")  # type: ignore[operator]
        return np.asarray(inputs["pixel_values"], np.float32)

    def embed_images(self, images: list[Image.Image]) -> NDArray[np.float32]:
        """Return an ``(len(images), dimension)`` float32 array of unit vectors."""
        return self.embed([self.pixels(images)])

    @classmethod
    def _graph_of(cls, setting: str) -> GraphOf:
        return image_graph_of

    @classmethod
    def _from_checkpoint(
        cls, name: str, hub: HubAccess, setting: str
    ) -> tuple[torch.nn.Module, object]:
        return load_image_checkpoint(name, hub, setting)

    @classmethod
    def _reader(cls, name: str) -> object:
        return load_processor(name)

    @classmethod
    def _quantized(cls, module: torch.nn.Module) -> torch.nn.Module | None:
        return quantize_int8(module)

    def _batch(self, inputs: list[NDArray[Any]]) -> NDArray[Any]:
        return np.concatenate(inputs) if inputs else np.empty((0, 3, 0, 0), np.float32)
