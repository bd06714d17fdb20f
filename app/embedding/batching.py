"""The model's one worker thread: concurrent requests that arrive together share one model
call (admission, which bounds how many searches wait, is ``app.search.Admission``).

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
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from app.metrics import MODEL_BATCH_IMAGES, MODEL_BATCH_SECONDS

logger = logging.getLogger(__name__)


class BatchedTower(Protocol):
    """A tower's model call: the inputs of several requests (n_i items each: pixel values
    (n_i, 3, side, side), token ids (n_i, tokens)) to their sum(n_i) vectors, in order
    (``app.embedding.tower.Tower.embed``)."""

    def embed(self, inputs: list[NDArray[Any]]) -> NDArray[np.float32]: ...


@dataclass
class _Job:
    tower: BatchedTower
    inputs: NDArray[Any]
    result: "Future[NDArray[np.float32]]"


class EmbeddingBatcher:
    """Runs every embedding on one worker thread, merging queued requests for one tower
    into batches of up to ``max_batch`` items."""

    def __init__(self, max_batch: int) -> None:
        self.max_batch = max_batch
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        # Jobs taken off the queue that wait for a batch of their tower, oldest first.
        self._waiting: deque[_Job] = deque()
        self._worker = threading.Thread(target=self._run, name="embedding-worker", daemon=True)
        self._worker.start()

    def embed(self, tower: BatchedTower, inputs: NDArray[Any]) -> NDArray[np.float32]:
        """Embed ``inputs`` (the tower's input for n items) on the worker, blocking until
        done; small calls made at the same time share a model call."""
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
                vectors = batch[0].tower.embed([job.inputs for job in batch])
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
            if job.tower is tower and fits:
                batch.append(job)
                size += len(job.inputs)
            else:
                left.append(job)
        self._waiting = left
        return batch
