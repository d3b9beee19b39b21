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

_ALLOWED = np.zeros(256, dtype=bool)
_ALLOWED[np.frombuffer(b"0123456789.-,\n", dtype=np.uint8)] = True
_P10_INT = np.array([10**k for k in range(19)], dtype=np.int64)
_P10_FLOAT = np.array([10.0**k for k in range(23)])  # exact doubles up to 10^22
_EXACT_MANTISSA = 2**53
_MAX_DIGITS = 18  # 10^18 - 1 < 2^63: the mantissa cannot overflow int64


def parse_block(block: bytes, width: int) -> np.ndarray | None:
    """Rows of ``width`` comma-separated plain decimals → (rows, width) float64, or None."""
    buf = np.frombuffer(block, dtype=np.uint8)
    if not len(buf) or not bool(_ALLOWED[buf].all()):
        return None
    is_nl = buf == 10
    sep = np.flatnonzero(is_nl | (buf == 44))  # where each field ends
    rows = int(np.count_nonzero(is_nl))
    # Exactly width fields per row: as many separators as cells, and every width-th one is
    # the end of a line (so no other one is).
    if len(sep) != rows * width or not bool(is_nl[sep[width - 1::width]].all()):
        return None
    start = np.empty_like(sep)
    start[0] = 0
    start[1:] = sep[:-1] + 1
    digit = buf - np.uint8(48)
    is_digit = digit < 10
    cum = np.cumsum(is_digit, dtype=np.int32)  # digits up to and including each byte
    digits_to_end = cum[sep]
    ndig = np.diff(digits_to_end, prepend=np.int32(0))
    if not bool(ndig.min() > 0):
        return None  # "", "-" or ".": the exact reader names the line
    neg = buf[start] == 45
    if int(np.count_nonzero(buf == 45)) != int(np.count_nonzero(neg)):
        return None  # a minus sign not at the start of its cell
    dots = (sep - start) - ndig - neg
    if int(dots.max()) > 1:
        return None
    has_dot = dots == 1
    frac = np.zeros(len(sep), dtype=np.int32)
    frac[has_dot] = digits_to_end[has_dot] - cum[np.flatnonzero(buf == 46)]
    where = np.flatnonzero(is_digit)
    rank = np.repeat(digits_to_end, ndig) - cum[where]  # digits after this one in its cell
    np.minimum(rank, _MAX_DIGITS, out=rank)  # longer cells are inexact: float() below
    mantissa = np.add.reduceat(digit[where] * _P10_INT[rank],
                               np.concatenate(([0], np.cumsum(ndig[:-1]))))
    inexact = (mantissa >= _EXACT_MANTISSA) | (frac > 22) | (ndig > _MAX_DIGITS)
    values = mantissa.astype(np.float64) / _P10_FLOAT[np.minimum(frac, 22)]
    np.negative(values, out=values, where=neg)
    for i in np.flatnonzero(inexact).tolist():
        values[i] = float(block[start[i]:sep[i]])
    return values.reshape(rows, width)
