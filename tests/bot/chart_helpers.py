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


# Colour-vision deficiency (Machado, Oliveira & Fernandes 2009, severity 1.0; linear RGB).
CVD = {
    "normal": np.eye(3),
    "deuteranopia": np.array([[0.367322, 0.860646, -0.227968], [0.280085, 0.672501, 0.047413],
                              [-0.011820, 0.042940, 0.968881]]),
    "protanopia": np.array([[0.152286, 1.052583, -0.204868], [0.114503, 0.786281, 0.099216],
                            [-0.003882, -0.048116, 1.051998]]),
    "tritanopia": np.array([[1.255528, -0.076749, -0.178779], [-0.078411, 0.930809, 0.147602],
                            [0.004733, 0.691367, 0.303900]]),
}


def _linear(rgb: np.ndarray) -> np.ndarray:
    return np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)


def lab(colour: object, vision: str = "normal") -> np.ndarray:
    """CIELAB (D65) of a matplotlib colour as seen with ``vision`` (a key of CVD)."""
    from matplotlib.colors import to_rgb

    lin = np.clip(CVD[vision] @ _linear(np.array(to_rgb(colour))), 0.0, 1.0)
    xyz = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722],
                    [0.0193, 0.1192, 0.9505]]) @ lin / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > 0.008856, np.cbrt(xyz), 7.787 * xyz + 16 / 116)
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


def delta_e(c1: object, c2: object, vision: str = "normal") -> float:
    """CIEDE2000 colour difference as seen with ``vision`` (≈ 2: just noticeable; ≥ 10: two
    colours told apart at a glance)."""
    (l1, a1, b1), (l2, a2, b2) = lab(c1, vision), lab(c2, vision)
    cbar = (np.hypot(a1, b1) + np.hypot(a2, b2)) / 2
    g = 0.5 * (1 - np.sqrt(cbar**7 / (cbar**7 + 25.0**7)))
    a1p, a2p = (1 + g) * a1, (1 + g) * a2
    c1p, c2p = np.hypot(a1p, b1), np.hypot(a2p, b2)
    h1, h2 = np.degrees(np.arctan2(b1, a1p)) % 360, np.degrees(np.arctan2(b2, a2p)) % 360
    dh = 0.0 if c1p * c2p == 0 else (h2 - h1 + 180) % 360 - 180
    d_hp = 2 * np.sqrt(c1p * c2p) * np.sin(np.radians(dh / 2))
    lbar, cbarp = (l1 + l2) / 2, (c1p + c2p) / 2
    if c1p * c2p == 0:
        hbar = h1 + h2
    elif abs(h1 - h2) <= 180:
        hbar = (h1 + h2) / 2
    else:
        hbar = (h1 + h2 + 360) / 2 if h1 + h2 < 360 else (h1 + h2 - 360) / 2
    t = (1 - 0.17 * np.cos(np.radians(hbar - 30)) + 0.24 * np.cos(np.radians(2 * hbar))
         + 0.32 * np.cos(np.radians(3 * hbar + 6)) - 0.20 * np.cos(np.radians(4 * hbar - 63)))
    rc = 2 * np.sqrt(cbarp**7 / (cbarp**7 + 25.0**7))
    rt = -np.sin(np.radians(60 * np.exp(-(((hbar - 275) / 25) ** 2)))) * rc
    sl = 1 + 0.015 * (lbar - 50) ** 2 / np.sqrt(20 + (lbar - 50) ** 2)
    sc, sh = 1 + 0.045 * cbarp, 1 + 0.015 * cbarp * t
    dl, dc = (l2 - l1) / sl, (c2p - c1p) / sc
    dhh = d_hp / sh
    return float(np.sqrt(dl**2 + dc**2 + dhh**2 + rt * dc * dhh))
