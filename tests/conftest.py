"""Shared test settings.

Long soak/fuzz runs are marked ``slow`` and scale their size by ``LIQBOT_SLOW_SHARE``:
0.2 by default (what ``pytest`` and ``.ci/run`` run, ~5 min), 1.0 for the full soak
(``LIQBOT_SLOW_SHARE=1 pytest -m slow``, ~20 min).
"""

from __future__ import annotations

import os

import pytest


def slow_share() -> float:
    """Fraction of the full slow-run size to use (0 < share ≤ 1)."""
    raw = os.environ.get("LIQBOT_SLOW_SHARE", "0.2")
    try:
        share = float(raw)
    except ValueError as exc:
        raise pytest.UsageError(f"LIQBOT_SLOW_SHARE must be a number, got {raw!r}") from exc
    return min(max(share, 0.01), 1.0)


def scaled(full: int, minimum: int = 1) -> int:
    """``full`` scaled by the slow share, never below ``minimum``."""
    return max(minimum, round(full * slow_share()))
