"""Keep glibc from holding on to freed tensor memory (the peak RSS of an eval on the CPU).

Why our own: glibc's malloc serves large blocks with mmap and gives them back on free, but it raises that
mmap threshold to the size of each large block freed (up to 32 MiB), so from then on the 32 MiB logits
chunks of scoring come from the heap, and the heap, fragmented by small allocations above them, is not
returned. Measured here (torch 2.13, one 170 × 49,152 float32 logits block computed and freed in a loop):
RSS +140 MB after 5 iterations and +427 MB after 20; with the threshold fixed at 8 MiB: +12 MB after
either. ``mallopt`` fixes the thresholds (which also turns off that dynamic adjustment). PyTorch's own
advice for CPU inference is jemalloc or tcmalloc through LD_PRELOAD; this needs nothing installed.

Applied once, before a model is loaded; skipped where the C library is not glibc, where the user set
``MALLOC_MMAP_THRESHOLD_`` / ``MALLOC_TRIM_THRESHOLD_`` themselves, or with ``EVALKIT_MALLOC=default``.
"""

from __future__ import annotations

import os

__all__ = ["keep_rss_low", "MMAP_THRESHOLD", "TRIM_THRESHOLD"]

MMAP_THRESHOLD = 8 * 2**20  # blocks from 8 MiB up: their own mapping, unmapped on free
TRIM_THRESHOLD = 16 * 2**20  # give the heap's free top back above 16 MiB
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # <malloc.h>
_done: list[bool] = []


def keep_rss_low() -> bool:
    """Fix glibc's mmap and trim thresholds for this process; True when applied (now or before)."""
    if _done:
        return _done[0]
    ok = False
    if os.environ.get("EVALKIT_MALLOC", "") != "default" and not any(
            k in os.environ for k in ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")):
        try:
            import ctypes

            libc = ctypes.CDLL("libc.so.6")
            ok = bool(libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and \
                bool(libc.mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))
        except (OSError, AttributeError):  # not glibc (macOS, musl, Windows): nothing to do
            ok = False
    _done.append(ok)
    return ok
