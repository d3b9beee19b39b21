"""Vectorised parse of a block of candle-CSV rows holding plain decimal numbers.

The fast path of :func:`bot.market.replay.load_csv`: a block of whole rows (bytes, each row
ending in ``\\n``) becomes a float matrix equal bit for bit to ``float(cell)`` for every cell,
or None when the block holds anything else (exponents, spaces, blank lines, a wrong field
count, text, non-ASCII...). The caller then parses that block with the exact line-by-line
reader, which either accepts it the same way or names the bad line.

This module only checks the block's shape (plain ``[-]digits[.digits]`` cells, ``width`` per
row); numpy's C reader (``np.loadtxt``, correctly rounded like ``float()``) converts it.
"""

from __future__ import annotations

import io

import numpy as np


def parse_block(block: bytes | memoryview, width: int) -> np.ndarray | None:
    """Rows of ``width`` comma-separated plain decimals → (rows, width) float64, or None."""
    buf = np.frombuffer(block, dtype=np.uint8)
    if not len(buf):
        return None
    digit = buf - np.uint8(48)
    is_digit = digit < 10
    is_nl = buf == 10
    is_sep = is_nl | (buf == 44)
    is_dot = buf == 46
    is_minus = buf == 45
    if not bool((is_digit | is_sep | is_dot | is_minus).all()):
        return None  # exponents, spaces, text, non-ASCII...
    end = np.flatnonzero(is_sep)  # where each cell ends
    rows = int(np.count_nonzero(is_nl))
    # Exactly width cells per row: as many separators as cells, and every width-th one is
    # the end of a line (so no other one is).
    if len(end) != rows * width or not bool(is_nl[end[width - 1::width]].all()):
        return None
    start = np.empty_like(end)
    start[0] = 0
    start[1:] = end[:-1] + 1
    neg = is_minus[start]
    if int(np.count_nonzero(is_minus)) != int(np.count_nonzero(neg)):
        return None  # a minus sign not at the start of its cell
    length = end - start
    if int(length.max()) > 255:
        return None  # (and the dot counts below fit in a byte)
    dots = np.add.reduceat(is_dot.view(np.uint8), start, dtype=np.uint8)
    if int(dots.max()) > 1:
        return None  # two dots in one cell
    ndig = length - neg - dots
    if not bool(ndig.min() > 0) or int(ndig.sum()) != int(np.count_nonzero(is_digit)):
        return None  # "", "-" or ".": the exact reader names the line
    # numpy's C reader converts the cells (correctly rounded, as float() is).
    out: np.ndarray = np.loadtxt(io.BytesIO(bytes(block)), delimiter=",", dtype=np.float64,
                                 ndmin=2)
    return out
