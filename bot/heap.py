"""Keep freed memory mapped in the process instead of handing it back to the kernel at once.

A recompute, a heatmap or a backtest step allocates and frees tens of MB of numpy arrays.
With glibc's defaults the freed top of the heap goes back to the kernel after each call, and
the next call maps it again a 4 KiB page at a time: one minor page fault per page, a third
of a 30-day heatmap's time on the bench machine. A top pad makes glibc keep up to that much
freed memory at the top of the heap (bench/estimator_bench.py prints the figures with it and,
with ``--default-heap``, without it).

Set once, at the start of a process (``liqbot``'s entry point and the bench scripts). A
``MALLOC_TOP_PAD_`` or ``GLIBC_TUNABLES`` setting of the user's own wins; on a C library
other than glibc this does nothing.
"""

from __future__ import annotations

import ctypes
import os
import platform

# Freed memory kept at the top of the heap: above a 30-day 1m heatmap's working set (~30 MB).
TOP_PAD_BYTES = 64 << 20
_M_TOP_PAD = -2  # glibc's mallopt parameter number


def keep_freed_heap(pad: int = TOP_PAD_BYTES) -> bool:
    """Set glibc's ``M_TOP_PAD`` to ``pad`` bytes; True if it was set (False: not glibc, or
    the environment already chose a setting)."""
    if "MALLOC_TOP_PAD_" in os.environ or "malloc" in os.environ.get("GLIBC_TUNABLES", ""):
        return False
    if platform.libc_ver()[0] != "glibc":
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the C library this process already runs on
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    return bool(mallopt(_M_TOP_PAD, pad))
