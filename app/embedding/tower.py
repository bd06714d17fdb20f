"""One recipe for every model tower (image, text), as Immich's machine-learning service
has one base class that loads and runs every model.

Pipeline of ``Tower.embed``: the inputs of several requests -> one batch
(``_batch``: stacked pixels, padded token ids) -> the runner (ONNX Runtime on a CPU,
exported once and checked; transformers otherwise) -> unit vectors.

``Tower.load`` holds the one rule for which runner: ``INFERENCE=auto`` is ONNX Runtime
on a CPU and transformers elsewhere; an ONNX export that cannot be had falls back to
transformers; ``int8`` quantises what the tower allows. A concrete tower names its kind,
how its checkpoint is read (module and reader) and how its inputs are batched.
"""

import logging
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Generic, Self, TypeVar

import numpy as np
import torch
from numpy.typing import NDArray

from app.embedding.checkpoint_digest import checkpoint_digest, weight_files
from app.embedding.loading import Export, GraphOf, checkpoint_folder, resolve_device
from app.embedding.model_source import HubAccess
from app.embedding.normalisation import unit_rows
from app.errors import ModelLoadError

logger = logging.getLogger(__name__)

# A tower's batched input (pixel values, token ids) to its projected embeddings.
Runner = Callable[[NDArray[Any]], NDArray[np.float32]]
# How a tower reads its inputs: an image processor, a tokenizer.
Reader = TypeVar("Reader")


@dataclass(frozen=True)
class TowerOptions:
    """How towers are loaded and run (from ``Settings``): DEVICE, INFERENCE,
    MODEL_THREADS (0: the runtime's default), the CPU's cores, where ONNX exports are
    cached, the hub, and whether exports run in a child process."""

    device: str
    inference: str
    model_threads: int
    cpu_threads: int
    onnx_dir: Path
    hub: HubAccess
    export_in_child: bool = True

    @property
    def export(self) -> Export:
        threads = self.model_threads or self.cpu_threads
        return Export(self.onnx_dir, threads, self.hub, self.export_in_child)


class TorchRunner:
    """A batched input to embeddings with the transformers module."""

    def __init__(self, module: torch.nn.Module, device: torch.device) -> None:
        self.module = module.to(device).eval()
        self.device = device

    def __call__(self, inputs: NDArray[Any]) -> NDArray[np.float32]:
        with torch.inference_mode():
            embeds = self.module(torch.from_numpy(inputs).to(self.device))
        return np.asarray(embeds.float().cpu().numpy(), np.float32)


class Tower(ABC, Generic[Reader]):
    """A model tower: its runner, how it reads inputs, and the vectors it makes."""

    # Names the tower in ONNX exports ("vision", "text") and logs.
    kind: ClassVar[str]
    # The checkpoint tensors whose digest names this tower's vectors; empty: its vectors
    # are never stored, and its name does.
    weight_prefixes: ClassVar[tuple[str, ...]] = ()

    def __init__(self, run: Runner, reader: Reader, name: str, dimension: int, inference: str):
        self.run = run
        self.reader = reader
        self.name = name
        self.dimension = dimension
        # The path that runs: torch, onnx or int8 (what INFERENCE=auto became).
        self.inference = inference
        # The digest of the weights (``checkpoint_digest``), where the vectors are stored.
        self.digest: str | None = None

    @property
    def fingerprint(self) -> str:
        """Names the vectors this tower makes: the weights' digest (else the name), as
        ONNX Runtime's equal the transformers model's (checked at export); int8 ones
        differ slightly."""
        known = f"{self.kind} sha256:{self.digest[:32]}" if self.digest else self.name
        return f"{known} [int8]" if self.inference == "int8" else known

    @classmethod
    def load(cls, name: str, options: TowerOptions, setting: str = "MODEL_NAME") -> Self:
        """Load ``name``'s tower (a hub id or a folder); errors name ``setting``, the
        variable ``name`` was set in."""
        device = resolve_device(options.device)
        inference = options.inference
        if inference == "auto":
            inference = "onnx" if device.type == "cpu" else "torch"
        if inference in ("int8", "onnx") and device.type != "cpu":
            raise ModelLoadError(f"INFERENCE={inference} runs on the CPU only; set DEVICE=cpu.")
        if options.model_threads:
            torch.set_num_threads(options.model_threads)
        tower = None
        if inference == "onnx":
            onnx = options.export.tower(cls.kind, cls._graph_of(setting), name)
            if onnx:
                tower = cls(onnx, cls._reader(name), name, onnx.dimension, "onnx")
        if tower is None:
            module, reader = cls._from_checkpoint(name, options.hub, setting)
            quantized = cls._quantized(module) if inference == "int8" else None
            run = TorchRunner(quantized or module, device)
            dimension = int(getattr(module, "dimension"))  # noqa: B009 - every module has it
            tower = cls(run, reader, name, dimension, "int8" if quantized else "torch")
        folder = checkpoint_folder(name)
        if cls.weight_prefixes and folder is not None and weight_files(folder):
            tower.digest = checkpoint_digest(folder, cls.weight_prefixes, options.onnx_dir)
        logger.info("Loaded the %s tower of %s on %s (%s)", cls.kind, name, device, tower.inference)
        return tower

    def embed(self, inputs: list[NDArray[Any]]) -> NDArray[np.float32]:
        """Unit vectors of several requests' inputs (n_i items each), in order: one model
        call."""
        batch = self._batch(inputs)
        if not len(batch):
            return np.empty((0, self.dimension), np.float32)
        return unit_rows(self.run(batch))

    # What a concrete tower says

    @classmethod
    @abstractmethod
    def _graph_of(cls, setting: str) -> GraphOf:
        """What the ONNX export's process calls to load the checkpoint and trace it."""

    @classmethod
    @abstractmethod
    def _from_checkpoint(
        cls, name: str, hub: HubAccess, setting: str
    ) -> tuple[torch.nn.Module, Reader]:
        """The transformers module (batched input to embeddings, with a ``dimension``)
        and the reader, from a folder, the cache or the hub."""

    @classmethod
    @abstractmethod
    def _reader(cls, name: str) -> Reader:
        """The reader alone, from local files (an ONNX export needs no weights)."""

    @classmethod
    def _quantized(cls, module: torch.nn.Module) -> torch.nn.Module | None:
        """The int8 module, or ``None`` where the tower runs float32 under INFERENCE=int8."""
        return None

    @abstractmethod
    def _batch(self, inputs: list[NDArray[Any]]) -> NDArray[Any]:
        """One model input of several requests' inputs."""
