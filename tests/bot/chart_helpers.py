"""Shared helpers for the chart tests (no tests here): synthetic candles, PNG inspection."""

from __future__ import annotations

import io
import struct

import matplotlib.image as mpimg
import numpy as np
from matplotlib.figure import Figure
from matplotlib.text import Text

from estimator import Candles
from tests.synthetic import random_walk

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def walk(n: int = 600, *, with_oi: bool, seed: int = 3) -> Candles:
    """Seeded hourly random walk around 90,000 USD; with open interest (USD) or without."""
    return random_walk(n, start=90_000.0, step_ms=3_600_000, vol=0.004, wick=0.002,
                       oi_usd=6e9 if with_oi else None, seed=seed, t0_ms=1_735_689_600_000)


def png_size(png: bytes) -> tuple[int, int]:
    """(width, height) in px from the PNG signature and IHDR chunk."""
    assert png[:8] == PNG_SIGNATURE, "not a PNG"
    length, kind = struct.unpack(">I4s", png[8:16])
    assert kind == b"IHDR" and length == 13
    width, height = struct.unpack(">II", png[16:24])
    return width, height


def decode(png: bytes) -> np.ndarray:
    """Pixels (h × w × channels, float64 0..1; float32 sums drift) decoded by matplotlib."""
    return np.asarray(mpimg.imread(io.BytesIO(png), format="png"), dtype=np.float64)


def texts(fig: Figure) -> list[Text]:
    """Every text artist of the figure (titles, labels, annotations, footer)."""
    return [t for t in fig.findobj(Text) if t.get_text()]


def by_gid(fig: Figure, gid: str) -> list[str]:
    return [t.get_text() for t in texts(fig) if t.get_gid() == gid]
