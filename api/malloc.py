"""glibc's allocator, tuned for the API's streaming uploads.

An upload arrives as a stream of bytes objects of 64 to 256 KiB, each freed moments later.
Under glibc's defaults, blocks that size are mapped and unmapped one by one, and a freed heap
top goes back to the operating system: every chunk of every upload was fresh memory, 200,000
page faults a gigabyte, and receiving it took twice the CPU. Served from a heap that keeps up
to 128 MiB of freed space, the chunks reuse the same pages; resident memory grows by no more
than the chunks in flight.
"""

from __future__ import annotations

import ctypes

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_BYTES = 32 * 1024 * 1024
TRIM_THRESHOLD_BYTES = 128 * 1024 * 1024


def tune_for_streaming() -> bool:
    """Apply the settings to this process; False where the C library is not glibc's."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # no mallopt: macOS, Windows
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mapped = mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)
    trimmed = mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES)
    return bool(mapped and trimmed)
