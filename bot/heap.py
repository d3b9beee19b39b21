"""Keep freed memory mapped in the process instead of handing it back to the kernel at once.

A recompute, a heatmap or a backtest step allocates and frees tens of MB of numpy arrays.
With glibc's defaults an array above the mmap threshold (128 KiB, raised as large blocks are
freed) is mapped fresh and unmapped when freed, and the freed top of the heap goes back to the
kernel: the next call maps it again a 4 KiB page at a time, one minor page fault per page, a
third of a 30-day heatmap's time on the bench machine. Here arrays up to 32 MiB (glibc's own
ceiling for that threshold) come from the heap, and up to 32 MiB of freed memory stays at its
top (bench/estimator_bench.py prints the figures with this and, with ``--default-heap``,
without it).

Set once, at the start of a process (``liqbot``'s entry point and the bench scripts). If
the environment has any ``MALLOC_*`` variable or a ``GLIBC_TUNABLES`` malloc entry, malloc is
left as the user configured it; on a C library other than glibc this does nothing.
"""

from __future__ import annotations

import ctypes
import os
import platform

# Freed memory kept at the top of the heap: enough for a 30-day 1m heatmap to take no fresh
# pages (16 MiB is not); each MiB of it can stay resident.
TOP_PAD_BYTES = 32 << 20
# Arrays up to this size from the heap: glibc's ceiling for its own dynamic threshold (64-bit).
MMAP_THRESHOLD_BYTES = 32 << 20
_M_TOP_PAD, _M_MMAP_THRESHOLD = -2, -3  # glibc's mallopt parameter numbers


def keep_freed_heap() -> bool:
    """Set glibc's ``M_MMAP_THRESHOLD`` and ``M_TOP_PAD``; True if both were set (False: not
    glibc, or the environment already chose a malloc setting)."""
    if (any(k.startswith("MALLOC_") for k in os.environ)
            or "malloc" in os.environ.get("GLIBC_TUNABLES", "")):
        return False
    if platform.libc_ver()[0] != "glibc":
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the C library this process already runs on
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    # (a fixed threshold: set before the pad, as glibc stops raising it on either call)
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)
                and mallopt(_M_TOP_PAD, TOP_PAD_BYTES))
