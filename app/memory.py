"""Process-wide memory settings.

glibc gives every thread that allocates at the same time an arena of its own, up to 8
per core, and a freed block returns to the arena it came from, not to the system. With
many request threads each decoding an image once, resident memory then grows by the
largest decode times the number of arenas. Two arenas keep the service's peak under
hostile uploads about 300 MB lower (``bench/memory_bench.py``) at no measured speed cost.
"""

import ctypes
import ctypes.util
import logging

logger = logging.getLogger(__name__)

M_ARENA_MAX = -8  # mallopt's parameter number, from glibc's malloc.h
MALLOC_ARENAS = 2


def limit_malloc_arenas(arenas: int = MALLOC_ARENAS) -> bool:
    """Cap glibc's malloc arenas; ``False`` where the C library is not glibc."""
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to tune
        return False
    return bool(mallopt(M_ARENA_MAX, arenas))
