"""The loading kit every model tower shares: where a checkpoint comes from (a local
folder, the Hugging Face cache, or the hub) and its towers' ONNX exports, made in a child
process and checked against the transformers model (``app.embedding.onnx_tower``).

``MODEL_NAME`` may be a Hugging Face hub id or a local folder written by
``save_pretrained``. Loading never hangs on an unreachable hub: a name that is not in the
local cache is only downloaded when the hub answers a quick connection probe.
"""

import logging
import multiprocessing
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import torch
from filelock import FileLock
from transformers import AutoConfig, CLIPConfig, CLIPTextConfig, CLIPVisionConfig, PretrainedConfig
from transformers.utils import CONFIG_NAME
from transformers.utils import logging as transformers_logging
from transformers.utils.hub import cached_file

from app.embedding import onnx_tower
from app.embedding.model_source import (
    CONFIG_FILE,
    HubAccess,
    looks_like_path,
    model_problem,
    unreachable,
)
from app.errors import ModelLoadError, TextModelLoadError
from app.log import configure_logging

EXPORT_LOCK = ".export.lock"
GPU_HELP = ("docs/operations.md", "GPU")


def resolve_device(requested: str) -> torch.device:
    """Map the DEVICE setting to a torch device; ``auto`` prefers CUDA."""
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise ModelLoadError(f"DEVICE={requested!r} but no CUDA device is available.", see=GPU_HELP)
    if requested == "mps" and not torch.backends.mps.is_available():
        raise ModelLoadError("DEVICE='mps' but no MPS device is available.", see=GPU_HELP)
    return torch.device(requested)


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


def checkpoint_folder(name: str) -> Path | None:
    """The local folder holding ``name``'s files: the folder itself, or its snapshot in
    the Hugging Face cache; ``None`` when it is not on this machine (yet)."""
    if looks_like_path(name):
        folder = Path(name).expanduser()
        return folder if (folder / CONFIG_FILE).is_file() else None
    try:
        config = cached_file(name, CONFIG_NAME, local_files_only=True)
    except OSError:
        return None
    return Path(config).parent if config else None


Loaded = TypeVar("Loaded")


def load_from(
    name: str, loader: Callable[[str, bool], Loaded], hub: HubAccess, setting: str
) -> Loaded:
    """What ``loader`` reads from a local folder, the cache, or the hub; errors name
    ``setting``, the variable the operator set ``name`` in."""
    failure = TextModelLoadError if setting == "TEXT_MODEL_NAME" else ModelLoadError
    problem = model_problem(name, hub, setting)
    if problem is not None:
        raise failure(problem)
    if looks_like_path(name):
        try:
            return loader(str(Path(name).expanduser()), False)
        except Exception as exc:
            raise failure(f"{setting}={name!r}: cannot load the checkpoint ({exc}).") from exc
    try:
        return loader(name, True)
    except OSError:  # not all cached: download the rest, if the hub can be reached at all
        if not hub.reachable():
            raise failure(unreachable(name, setting)) from None
    try:
        return loader(name, False)
    except Exception as exc:
        raise failure(f"{setting}={name!r}: cannot load the checkpoint ({exc}).") from exc


# Loads a checkpoint and makes the graph of one of its towers: a function at a module's
# top level (or a partial of one), so that the export's child process can be handed it.
GraphOf = Callable[[str, HubAccess], onnx_tower.TowerGraph]


@dataclass(frozen=True)
class Export:
    """Where and how a tower's ONNX export is made: the cache folder, ONNX Runtime's
    threads, the hub, and whether the export runs in a child process (tests that watch
    the exporter run it in theirs)."""

    cache_dir: Path
    threads: int
    hub: HubAccess
    in_child: bool = True

    def tower(self, kind: str, graph_of: GraphOf, name: str) -> onnx_tower.OnnxTower | None:
        """The cached export of the checkpoint's ``kind`` tower (made by ``graph_of``);
        else a fresh export, checked against the transformers model; else ``None`` (the
        export's failure is logged)."""
        tower = self._cached(kind, name)
        if tower:
            return tower
        # One export at a time per cache, across processes too (uvicorn --workers N): the
        # others wait, then open its result.
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        with FileLock(self.cache_dir / EXPORT_LOCK):
            tower = self._cached(kind, name)
            if not tower and self._export(graph_of, name):
                tower = self._cached(kind, name)  # downloaded by now, if it was not before
        return tower

    def _cached(self, kind: str, name: str) -> onnx_tower.OnnxTower | None:
        checkpoint = checkpoint_folder(name)
        if checkpoint is None:
            return None
        return onnx_tower.cached_tower(self.cache_dir, kind, name, checkpoint, self.threads)

    def _export(self, graph_of: GraphOf, name: str) -> bool:
        """Export the checkpoint's tower to the cache, in a child process: the export
        holds the model, the tracer's graphs and the exporter's buffers, about 0.6 GB for
        ViT-B/32 that a process never gives back. Whether a usable export is there now."""
        arguments = (graph_of, name, self, logging.getLogger().level)
        if not self.in_child:
            return _export_checkpoint(*arguments)
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as child:
            return child.submit(_export_checkpoint, *arguments).result()


def _export_checkpoint(graph_of: GraphOf, name: str, export: Export, log_level: int) -> bool:
    """In the export's process: load the checkpoint, export the tower to the cache and
    check it (``onnx_tower.export_tower``); whether a usable export is there now."""
    if export.in_child:
        configure_logging(logging.getLevelName(log_level))
    graph = graph_of(name, export.hub)
    checkpoint = checkpoint_folder(name)
    return bool(
        checkpoint
        and onnx_tower.export_tower(graph, name, checkpoint, export.cache_dir, export.threads)
    )
