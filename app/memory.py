"""Process-wide memory: glibc's malloc tuned for large short-lived blocks, and the budget
that bounds how much decoding may hold at once.

glibc gives every thread that allocates at the same time an arena of its own, up to 8
per core, and a freed block returns to the arena it came from, not to the system. With
many request threads each decoding an image once, resident memory then grows by the
largest decode times the number of arenas. Two arenas keep the service's peak under
hostile uploads about 300 MB lower (``bench/memory_bench.py``) at no measured speed cost.
glibc also raises its mmap threshold to the largest block freed so far (up to 32 MB), so
after the first large image a decoded image's 16 MB blocks come from the arenas and stay
there; a fixed threshold keeps every block of a megabyte or more mapped on its own, given
back to the system the moment it is freed. Fixing it also fixes the trim threshold at its
128 kB default, and giving the heap's top back at nearly every free then costs a third
more time per image preprocessed (measured: 17 -> 22.5 ms); a fixed 32 MB trim threshold
keeps the heap as the dynamic setting would (16.5 ms), at most 32 MB per arena kept.
"""

import ctypes
import ctypes.util
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from app.errors import ServiceBusyError

logger = logging.getLogger(__name__)

M_TRIM_THRESHOLD = -1  # mallopt's parameter numbers, from glibc's malloc.h
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8
MALLOC_ARENAS = 2
MB = 1024 * 1024
MMAP_THRESHOLD_BYTES = MB
TRIM_THRESHOLD_BYTES = 32 * MB
# How long a decode waits for memory that others hold before answering 503: far longer
# than any decode within the budget takes.
BUDGET_WAIT_S = 60
BUDGET_RETRY_AFTER_S = 5


def tune_malloc(arenas: int = MALLOC_ARENAS) -> bool:
    """Cap glibc's malloc arenas and fix its mmap and trim thresholds; ``False`` where the
    C library is not glibc."""
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to tune
        return False
    return all(
        mallopt(parameter, value)
        for parameter, value in (
            (M_ARENA_MAX, arenas),
            (M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES),
            (M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES),
        )
    )


class MemoryBudget:
    """Bytes that work in several threads may hold at once: ``reserve(n)`` waits until
    ``n`` bytes are free, so large decodes take turns instead of adding up. Written by
    hand: the standard library's semaphores count slots, not weights."""

    def __init__(self, total_bytes: int, wait_s: float = BUDGET_WAIT_S) -> None:
        self.total_bytes = total_bytes
        self.wait_s = wait_s
        self._free = total_bytes
        self._changed = threading.Condition()

    @contextmanager
    def reserve(self, size: int) -> Iterator[None]:
        """Hold ``size`` bytes (at most the whole budget: a caller refuses more itself)
        for the block; 503 when others hold them past ``wait_s``."""
        size = min(size, self.total_bytes)
        with self._changed:
            if not self._changed.wait_for(lambda: self._free >= size, timeout=self.wait_s):
                raise ServiceBusyError(
                    "The service is decoding other large images and has no memory left "
                    "for this one now; retry shortly.",
                    retry_after_s=BUDGET_RETRY_AFTER_S,
                )
            self._free -= size
        try:
            yield
        finally:
            with self._changed:
                self._free += size
                self._changed.notify_all()
