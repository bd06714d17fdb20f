"""CLIP's towers (image, and text for text search) run by ONNX Runtime: exported once
from the transformers model, checked against it, and cached on disk for the next starts.

Why: ONNX Runtime computes the same float32 embeddings as torch, faster on a CPU (about
0.55 instead of 0.72 times a single torch call per image in a batch of 16, measured by
``bench/service_bench.py``), so it is the default CPU path (``INFERENCE=auto``). A start
that finds the export of exactly these checkpoint files in the cache does not load the
transformers weights at all, and ONNX Runtime reads the weights kept beside the graph
without a second copy in memory.

Why it is safe as the default: an export is kept only when its embeddings of a fixed
probe batch equal the transformers model's (unit vectors within ``PROBE_TOLERANCE``); a
failed or differing export leaves the service on the transformers model, with a warning.
The cache key holds the checkpoint files' names, sizes and modification times and the
library versions, so new weights under the same name are exported again.
"""

import hashlib
import logging
import shutil
import tempfile
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime
import torch
from numpy.typing import NDArray
from transformers import CLIPTextModelWithProjection, CLIPVisionModelWithProjection

from app.embedding.normalisation import unit_rows

logger = logging.getLogger(__name__)

# Largest difference allowed between the two paths' unit vectors: float32 reordering
# gives about 3e-6 on ViT-B/32; other weights or a wrong graph give > 0.1.
PROBE_TOLERANCE = 1e-4
PROBE_BATCH = 2  # more than one, so the graph's batch axis is checked too
PROBE_SEED = 0
# Token count of the traced text probe; the check also runs the longest text the tower
# reads, so a graph fixed to one length is refused.
PROBE_TOKENS = 7
GRAPH_FILE = "model.onnx"
# An unfinished export older than this is a crashed one (an export takes seconds).
STALE_EXPORT_S = 3600
EXPORTER_LOGGERS = ("torch.onnx", "onnxscript", "onnx_ir")


class OnnxTower:
    """A tower's input (pixel values ``(n, 3, side, side)`` or token ids ``(n, tokens)``)
    to its projected embeddings ``(n, d)``."""

    def __init__(self, session: onnxruntime.InferenceSession) -> None:
        self.session = session
        self.input_name = session.get_inputs()[0].name
        self.dimension = int(session.get_outputs()[0].shape[1])

    def __call__(self, inputs: NDArray[Any]) -> NDArray[np.float32]:
        outputs = self.session.run(None, {self.input_name: np.ascontiguousarray(inputs)})
        return np.asarray(outputs[0], np.float32)


class ClipImageEmbeds(torch.nn.Module):
    """CLIP's image tower with a tensor output, which is what the exporter traces."""

    def __init__(self, model: CLIPVisionModelWithProjection) -> None:
        super().__init__()
        self.model = model
        self.dimension = int(model.visual_projection.out_features)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        embeds: torch.Tensor = self.model(pixel_values=pixel_values).image_embeds
        return embeds


class ClipTextEmbeds(torch.nn.Module):
    """CLIP's text tower with a tensor output. No attention mask: its attention is causal,
    so padding after a text's end token never changes the end token's state, which is
    what the tower projects."""

    def __init__(self, model: CLIPTextModelWithProjection) -> None:
        super().__init__()
        self.model = model
        self.dimension = int(model.text_projection.out_features)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        embeds: torch.Tensor = self.model(input_ids=input_ids).text_embeds
        return embeds


@dataclass(frozen=True)
class TowerGraph:
    """What exporting one tower takes: a module from one tensor to embeddings, the name
    and dynamic axes of its input, an input to trace, and inputs to check the graph on."""

    kind: str  # "vision" or "text": names the cache folder
    module: torch.nn.Module
    input_name: str
    dynamic_axes: tuple[str, ...]
    probes: tuple[NDArray[Any], ...]  # the first is traced

    def expected(self, probe: NDArray[Any]) -> NDArray[np.float32]:
        with torch.inference_mode():
            return np.asarray(self.module(torch.from_numpy(probe)).float().numpy(), np.float32)


def image_graph(module: ClipImageEmbeds) -> TowerGraph:
    side = module.model.config.image_size
    assert isinstance(side, int)  # CLIP's patch embedding is built for a square int size
    generator = np.random.default_rng(PROBE_SEED)
    pixels = generator.standard_normal((PROBE_BATCH, 3, side, side), np.float32)
    return TowerGraph("vision", module.eval(), "pixel_values", ("batch",), (pixels,))


def text_graph(
    module: torch.nn.Module, vocabulary: int, end: int, pad: int, max_tokens: int
) -> TowerGraph:
    """A text tower (token ids to embeddings, at most ``max_tokens``), probed with random
    ids of its ``vocabulary`` ended by the ``end`` token at different places, then padded
    with ``pad``, as ``TextEmbedder`` hands texts over."""
    generator = np.random.default_rng(PROBE_SEED)
    ordinary = next(token for token in range(vocabulary) if token not in (end, pad))
    probes = []
    for tokens in (PROBE_TOKENS, max_tokens):
        ids = generator.integers(0, vocabulary, (PROBE_BATCH, tokens), dtype=np.int64)
        ids[np.isin(ids, (end, pad))] = ordinary
        for row, length in zip(ids, (tokens, tokens // 2 + 1), strict=True):
            row[length - 1] = end
            row[length:] = pad
        probes.append(ids)
    return TowerGraph("text", module.eval(), "input_ids", ("batch", "tokens"), tuple(probes))


def cache_path(cache_dir: Path, kind: str, name: str, checkpoint: Path) -> Path:
    """The export's folder: named after the tower and the model name, then after the
    checkpoint's files, those in its subfolders included (a sentence encoder's Dense
    layer): names, sizes, modification times; and after the exporting libraries. So new
    weights under the same name, or another torch or ONNX Runtime, make a new export."""
    files = sorted(
        (str(entry.relative_to(checkpoint)), entry.stat().st_size, entry.stat().st_mtime_ns)
        for entry in checkpoint.rglob("*")
        if entry.is_file()
    )
    source = f"{files}|torch {torch.__version__}|onnxruntime {onnxruntime.__version__}"
    return cache_dir / f"clip-{kind}-{_digest(name)}-{_digest(source)}"


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@contextmanager
def _quiet_exporter() -> Iterator[None]:
    """Silence the exporter's notes on its own passes (dozens of lines, none actionable)."""
    loggers = [logging.getLogger(name) for name in EXPORTER_LOGGERS]
    levels = [each.level for each in loggers]
    for each in loggers:
        each.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for each, level in zip(loggers, levels, strict=True):
            each.setLevel(level)


def export(graph: TowerGraph, folder: Path) -> None:
    """Write the tower with its dynamic axes to ``folder``: the graph in ``GRAPH_FILE``,
    the weights beside it (ONNX Runtime then loads them without a second copy in memory).
    Atomic: a crash leaves no half-written export under ``folder``'s name."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    for leftover in folder.parent.glob(".incoming-*"):
        if time.time() - leftover.stat().st_mtime > STALE_EXPORT_S:  # a crashed export's
            shutil.rmtree(leftover, ignore_errors=True)
    temporary = Path(tempfile.mkdtemp(prefix=".incoming-", dir=folder.parent))
    try:
        example = torch.from_numpy(graph.probes[0])
        axes = {axis: torch.export.Dim(name) for axis, name in enumerate(graph.dynamic_axes)}
        with _quiet_exporter():
            torch.onnx.export(
                graph.module,
                (example,),
                temporary / GRAPH_FILE,
                dynamo=True,
                input_names=[graph.input_name],
                output_names=["embeds"],
                dynamic_shapes={graph.input_name: axes},
                external_data=True,
                verbose=False,
            )
        shutil.rmtree(folder, ignore_errors=True)
        temporary.rename(folder)
    finally:
        shutil.rmtree(temporary, ignore_errors=True)


def open_session(folder: Path, threads: int) -> onnxruntime.InferenceSession:
    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    # Idle model threads would otherwise spin on the cores that decode and remove grids.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return onnxruntime.InferenceSession(
        str(folder / GRAPH_FILE), options, providers=["CPUExecutionProvider"]
    )


def cached_tower(
    cache_dir: Path, kind: str, name: str, checkpoint: Path, threads: int
) -> OnnxTower | None:
    """The ``kind`` tower's graph exported earlier from exactly these checkpoint files, if
    there is one: the transformers model need not even be loaded."""
    path = cache_path(cache_dir, kind, name, checkpoint)
    if not (path / GRAPH_FILE).is_file():
        return None
    try:
        return OnnxTower(open_session(path, threads))
    except Exception as exc:  # noqa: BLE001 - an unreadable cache entry is exported again
        logger.warning("Cannot open the cached ONNX graph %s (%s); exporting again", path, exc)
        return None


def export_tower(
    graph: TowerGraph, name: str, checkpoint: Path, cache_dir: Path, threads: int
) -> OnnxTower | None:
    """Export the tower to the cache (replacing older exports of ``name``'s tower) and
    return it once its embeddings of the probes equal the model's; ``None`` when the
    export fails or differs (the reason is logged)."""
    path = cache_path(cache_dir, graph.kind, name, checkpoint)
    logger.info(
        "Exporting the %s tower of %s to ONNX (once per checkpoint; for ViT-B/32 from 10 s "
        "on a quiet machine to over a minute per tower on a busy 2-core one): %s",
        graph.kind,
        name,
        path,
    )
    expected = [graph.expected(probe) for probe in graph.probes]
    try:
        export(graph, path)
        for older in cache_dir.glob(f"clip-{graph.kind}-{_digest(name)}-*"):
            if older != path:
                shutil.rmtree(older, ignore_errors=True)
        tower = OnnxTower(open_session(path, threads))
        difference = max(
            float(np.abs(unit_rows(tower(probe)) - unit_rows(want)).max())
            for probe, want in zip(graph.probes, expected, strict=True)
        )
    except Exception as exc:  # noqa: BLE001 - any exporter or runtime failure: torch still works
        logger.warning("ONNX Runtime unavailable for %s (%s); using transformers", name, exc)
        return None
    if difference > PROBE_TOLERANCE:
        shutil.rmtree(path, ignore_errors=True)
        logger.warning(
            "The ONNX graph of %s differs from the model by %.2g; using transformers",
            name,
            difference,
        )
        return None
    return tower
