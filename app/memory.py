"""Process-wide memory: glibc's malloc arenas capped, and the budget that bounds how much
decoding may hold at once.

glibc gives every thread that allocates at the same time an arena of its own, up to 8
per core, and a freed block returns to the arena it came from, not to the system. With
many request threads each decoding an image once, resident memory then grows by the
largest decode times the number of arenas. Two arenas keep the service's peak under
hostile uploads about 300 MB lower (``bench/memory_bench.py``) at no measured speed cost.
Memory a large decode freed can still stay in the arenas (+212 MB held after the
memory benchmark's uploads), so after each one ``give_back_freed`` asks glibc to return
free pages (``malloc_trim``). A fixed mmap threshold would do it for every block of a
megabyte or more, but slowed indexing by a third in the service benchmark (67 -> 88 ms
per image): trimming after large decodes only leaves the common path as it was.
"""

import ctypes
import ctypes.util
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from app.errors import ServiceBusyError
from app.messages.catalogue import message

logger = logging.getLogger(__name__)

M_ARENA_MAX = -8  # mallopt's parameter number, from glibc's malloc.h
MALLOC_ARENAS = 2


def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name) if name is not None else None
    except OSError:
        return None


_LIBC = _libc()
MB = 1024 * 1024
# How long a decode waits for memory that others hold before answering 503: far longer
# than any decode within the budget takes.
BUDGET_WAIT_S = 60
BUDGET_RETRY_AFTER_S = 5


def give_back_freed() -> None:
    """Return the arenas' free pages to the system (glibc's ``malloc_trim``; nothing
    elsewhere)."""
    malloc_trim = getattr(_LIBC, "malloc_trim", None)
    if malloc_trim is not None:
        malloc_trim(0)


def limit_malloc_arenas(arenas: int = MALLOC_ARENAS) -> bool:
    """Cap glibc's malloc arenas; ``False`` where the C library is not glibc."""
    mallopt = getattr(_LIBC, "mallopt", None)  # not glibc (musl, macOS): nothing to tune
    return mallopt is not None and bool(mallopt(M_ARENA_MAX, arenas))


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
                    message("decode_busy"),
                    retry_after_s=BUDGET_RETRY_AFTER_S,
                )
            self._free -= size
        try:
            yield
        finally:
            with self._changed:
                self._free += size
                self._changed.notify_all()
