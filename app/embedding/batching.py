"""The model's one worker thread: concurrent requests that arrive together share one model
call, and admission is bounded so overload answers 503 instead of queueing forever.

Why one thread: the runtime (ONNX Runtime or torch) already spreads one forward pass over
every core, so two passes at once only fight for them; and on a CPU a batch costs less
per image than single passes (``bench/service_bench.py`` prints both). Callers hand over
the model's input (pixel values), so decoding, grid removal and the image processor run
in their threads and the worker runs nothing but the model.
A lone request is never held back waiting for company: the worker takes whatever is
queued when it becomes free.
"""

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from app.errors import ServiceBusyError
from app.metrics import (
    MODEL_BATCH_IMAGES,
    MODEL_BATCH_SECONDS,
    SEARCHES_IN_PROGRESS,
    SEARCHES_REFUSED,
)

logger = logging.getLogger(__name__)

# Pixel values (n, 3, side, side) to n vectors.
EmbedFunction = Callable[[NDArray[np.float32]], NDArray[np.float32]]
# What a client is told to wait when every search slot is taken.
BUSY_RETRY_AFTER_S = 1


class QueueFullError(ServiceBusyError):
    """Every search slot is taken."""


@dataclass
class _Job:
    pixels: NDArray[np.float32]
    result: "Future[NDArray[np.float32]]"


class EmbeddingBatcher:
    """Runs every embedding on one worker thread, merging queued single requests into
    batches of up to ``max_batch`` images; at most ``max_pending`` searches may be in
    flight (see ``search_slot``)."""

    def __init__(self, embed: EmbedFunction, max_batch: int, max_pending: int) -> None:
        self._embed = embed
        self.max_batch = max_batch
        self.max_pending = max_pending
        self._slots = threading.BoundedSemaphore(max_pending)
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._carry: _Job | None = None
        self._worker = threading.Thread(target=self._run, name="embedding-worker", daemon=True)
        self._worker.start()

    @contextmanager
    def search_slot(self) -> Iterator[None]:
        """Hold one of ``max_pending`` search slots, or raise ``QueueFullError`` at once."""
        if not self._slots.acquire(blocking=False):
            SEARCHES_REFUSED.inc()
            raise QueueFullError(
                f"The service is busy ({self.max_pending} searches in progress, "
                "SEARCH_QUEUE_SIZE); retry shortly.",
                retry_after_s=BUSY_RETRY_AFTER_S,
            )
        SEARCHES_IN_PROGRESS.inc()
        try:
            yield
        finally:
            SEARCHES_IN_PROGRESS.dec()
            self._slots.release()

    def embed(self, pixels: NDArray[np.float32]) -> NDArray[np.float32]:
        """Embed ``pixels`` (the model's input for n images) on the worker, blocking until
        done; small calls made at the same time share a model call."""
        job = _Job(pixels, Future())
        self._jobs.put(job)
        return job.result.result()

    def close(self) -> None:
        self._jobs.put(None)
        self._worker.join()

    def _run(self) -> None:
        while (batch := self._next_batch()) is not None:
            started = time.perf_counter()
            try:
                pixels = np.concatenate([job.pixels for job in batch])
                vectors = self._embed(pixels)
            except BaseException as exc:  # noqa: BLE001 - handed to every waiting caller
                for job in batch:
                    job.result.set_exception(exc)
                continue
            MODEL_BATCH_SECONDS.observe(time.perf_counter() - started)
            MODEL_BATCH_IMAGES.observe(len(pixels))
            start = 0
            for job in batch:
                job.result.set_result(vectors[start : start + len(job.pixels)])
                start += len(job.pixels)

    def _next_batch(self) -> list[_Job] | None:
        """The next job, and the queued jobs that fit beside it in ``max_batch`` images;
        ``None`` once closed."""
        first = self._carry or self._jobs.get()
        self._carry = None
        if first is None:
            return None
        batch, size = [first], len(first.pixels)
        while size < self.max_batch:
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                break
            if job is None:
                self._jobs.put(None)  # stop after this batch
                break
            if size + len(job.pixels) > self.max_batch:
                self._carry = job  # first of the next batch
                break
            batch.append(job)
            size += len(job.pixels)
        return batch
