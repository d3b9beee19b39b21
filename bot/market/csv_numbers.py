"""Vectorised parse of a block of candle-CSV rows holding plain decimal numbers.

The fast path of :func:`bot.market.replay.load_csv`: a block of whole rows (bytes, each row
ending in ``\\n``) becomes a float matrix equal bit for bit to ``float(cell)`` for every cell,
or None when the block holds anything else (exponents, spaces, blank lines, a wrong field
count, text, non-ASCII...). The caller then parses that block with the exact line-by-line
reader, which either accepts it the same way or names the bad line.

Exactness: a cell ``[-]digits[.digits]`` with at most 18 digits is an exact integer mantissa
m over 10^k; when m < 2^53 and k ≤ 22 both are exact doubles and one IEEE division rounds
m / 10^k correctly, i.e. to the same double ``float()`` gives (Clinger's fast path). Other
cells in a valid block (more digits, m ≥ 2^53, k > 22) go through ``float()`` one by one.
"""

from __future__ import annotations

import numpy as np

_P10_INT = np.array([10**k for k in range(19)], dtype=np.int64)
_P10_FLOAT = np.array([10.0**k for k in range(23)])  # exact doubles up to 10^22
_EXACT_MANTISSA = 2**53
_MAX_DIGITS = 18  # 10^18 - 1 < 2^63: the mantissa cannot overflow int64


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
    frac = np.zeros(len(end), dtype=end.dtype)  # digits after the dot
    with_dot = np.flatnonzero(dots)
    frac[with_dot] = end[with_dot] - np.flatnonzero(is_dot) - 1  # one dot each, in order
    # The digits alone, cell after cell: digit k has (last digit of its cell - k) after it.
    last = np.cumsum(ndig) - 1
    rank = np.repeat(last, ndig)
    rank -= _counting(len(rank))
    np.minimum(rank, _MAX_DIGITS, out=rank)  # longer cells are inexact: float() below
    mantissa = np.add.reduceat(digit[is_digit] * _P10_INT[rank], last - (ndig - 1))
    inexact = (mantissa >= _EXACT_MANTISSA) | (frac > 22) | (ndig > _MAX_DIGITS)
    values = mantissa.astype(np.float64) / _P10_FLOAT[np.minimum(frac, 22)]
    np.negative(values, out=values, where=neg)
    for i in np.flatnonzero(inexact).tolist():
        values[i] = float(bytes(block[start[i]:end[i]]))
    out: np.ndarray = values.reshape(rows, width)
    return out


_COUNT = np.arange(0)


def _counting(n: int) -> np.ndarray:
    """0, 1, … n-1 (one array, grown as needed, instead of one per block)."""
    global _COUNT
    if len(_COUNT) < n:
        _COUNT = np.arange(max(n, 2 * len(_COUNT)))
    return _COUNT[:n]
