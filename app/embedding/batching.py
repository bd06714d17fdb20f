"""The model's one worker thread: concurrent requests that arrive together share one model
call, and admission is bounded so overload answers 503 instead of queueing forever.

Why one thread: the runtime (ONNX Runtime or torch) already spreads one forward pass over
every core, so two passes at once only fight for them; and on a CPU a batch costs less
per image than single passes (``bench/service_bench.py`` prints both). Callers hand over
the model's input (pixel values, or a text's token ids), so decoding, grid removal, the
image processor and the tokenizer run in their threads and the worker runs nothing but
the model: the image tower, or the text tower (``app.embedding.text``), one at a time,
each batch holding one tower's inputs.
A lone request is never held back waiting for company: the worker takes whatever is
queued when it becomes free.
"""

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

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

# One tower's model call: the inputs of several requests (n_i items each: pixel values
# (n_i, 3, side, side), token ids (n_i, tokens)) to their sum(n_i) vectors, in order.
EmbedFunction = Callable[[list[NDArray[Any]]], NDArray[np.float32]]
IMAGE_TOWER = "image"
TEXT_TOWER = "text"
# What a client is told to wait when every search slot is taken.
BUSY_RETRY_AFTER_S = 1


class QueueFullError(ServiceBusyError):
    """Every search slot is taken."""


@dataclass
class _Job:
    tower: str
    inputs: NDArray[Any]
    result: "Future[NDArray[np.float32]]"


class EmbeddingBatcher:
    """Runs every embedding on one worker thread, merging queued single requests for one
    tower into batches of up to ``max_batch`` items; at most ``max_pending`` searches may
    be in flight (see ``search_slot``)."""

    def __init__(
        self, towers: Mapping[str, EmbedFunction], max_batch: int, max_pending: int
    ) -> None:
        self._towers = dict(towers)
        self.max_batch = max_batch
        self.max_pending = max_pending
        self._slots = threading.BoundedSemaphore(max_pending)
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        # Jobs taken off the queue that wait for a batch of their tower, oldest first.
        self._waiting: deque[_Job] = deque()
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

    def embed(self, inputs: NDArray[Any], tower: str = IMAGE_TOWER) -> NDArray[np.float32]:
        """Embed ``inputs`` (a tower's input for n items) on the worker, blocking until
        done; small calls made at the same time share a model call."""
        if tower not in self._towers:
            raise ValueError(f"no {tower} tower is loaded")
        job = _Job(tower, inputs, Future())
        self._jobs.put(job)
        return job.result.result()

    def close(self) -> None:
        self._jobs.put(None)
        self._worker.join()

    def _run(self) -> None:
        while (batch := self._next_batch()) is not None:
            started = time.perf_counter()
            try:
                vectors = self._towers[batch[0].tower]([job.inputs for job in batch])
            except BaseException as exc:  # noqa: BLE001 - handed to every waiting caller
                for job in batch:
                    job.result.set_exception(exc)
                continue
            MODEL_BATCH_SECONDS.observe(time.perf_counter() - started)
            MODEL_BATCH_IMAGES.observe(len(vectors))
            start = 0
            for job in batch:
                job.result.set_result(vectors[start : start + len(job.inputs)])
                start += len(job.inputs)

    def _next_batch(self) -> list[_Job] | None:
        """The oldest waiting job, and the later ones of its tower that fit beside it in
        ``max_batch`` items; ``None`` once closed and nothing waits."""
        if not self._waiting:
            first = self._jobs.get()
            if first is None:
                return None
            self._waiting.append(first)
        while True:  # everything queued now waits in order
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                break
            if job is None:
                self._jobs.put(None)  # stop once the waiting jobs are done
                break
            self._waiting.append(job)
        tower = self._waiting[0].tower
        batch: list[_Job] = []
        size = 0
        left: deque[_Job] = deque()
        for job in self._waiting:
            fits = not batch or size + len(job.inputs) <= self.max_batch
            if job.tower == tower and fits:
                batch.append(job)
                size += len(job.inputs)
            else:
                left.append(job)
        self._waiting = left
        return batch
