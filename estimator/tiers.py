"""Leverage tiers and the isolated-margin liquidation price of a linear USDT contract."""

from __future__ import annotations

from dataclasses import dataclass
from typing import overload

import numpy as np
from numpy.typing import ArrayLike, NDArray

SIDES = ("long", "short")


@dataclass(frozen=True)
class Tier:
    """One notional bracket: ``floor`` ≤ notional < ``cap`` (USD) allows up to ``max_leverage``.

    ``mmr`` is the maintenance margin rate (0.004 = 0.4 %), ``cum`` the maintenance amount (USD).
    """

    floor: float
    cap: float
    max_leverage: float
    mmr: float
    cum: float


@dataclass(frozen=True)
class TierTable:
    """Brackets ordered by notional, contiguous from 0."""

    tiers: tuple[Tier, ...]

    def __post_init__(self) -> None:
        if not self.tiers:
            raise ValueError("tier table: no tiers")
        if self.tiers[0].floor != 0:
            raise ValueError(f"tier table: first floor is {self.tiers[0].floor}, expected 0")
        for prev, cur in zip(self.tiers, self.tiers[1:], strict=False):
            if cur.floor != prev.cap:
                raise ValueError(f"tier table: gap between {prev.cap} and {cur.floor}")
        for t in self.tiers:
            if not (t.cap > t.floor and t.max_leverage >= 1 and 0 <= t.mmr < 1 and t.cum >= 0):
                raise ValueError(f"tier table: invalid tier {t}")

    @classmethod
    def from_brackets(cls, rows: list[tuple[float, float, float, float]]) -> TierTable:
        """Build from ``(floor, cap, max_leverage, mmr)`` rows, deriving ``cum`` as Binance does.

        cum of a tier = previous cum + floor × (mmr − previous mmr).
        """
        tiers: list[Tier] = []
        cum, prev_mmr = 0.0, 0.0
        for i, (floor, cap, lev, mmr) in enumerate(rows):
            if i:  # rounded to a micro-dollar: the rates are decimal, floats are not
                cum = round(cum + floor * (mmr - prev_mmr), 6)
            tiers.append(Tier(floor, cap, lev, mmr, cum))
            prev_mmr = mmr
        return cls(tuple(tiers))

    @property
    def max_leverage(self) -> float:
        return max(t.max_leverage for t in self.tiers)

    def for_notional(self, notional: float) -> Tier:
        """The tier whose bracket holds ``notional`` (USD)."""
        if not notional > 0:
            raise ValueError(f"notional must be positive, got {notional!r}")
        for t in self.tiers:
            if t.floor <= notional < t.cap:
                return t
        raise ValueError(f"notional {notional!r} is above the last tier cap {self.tiers[-1].cap}")

    def smallest_for_leverage(self, leverage: float) -> Tier:
        """The first (lowest-notional) tier that allows ``leverage``."""
        for t in self.tiers:
            if t.max_leverage >= leverage:
                return t
        raise ValueError(
            f"leverage {leverage!r} exceeds every tier's maximum ({self.max_leverage})"
        )


#: Binance BTCUSDT perpetual, a snapshot (see DESIGN.md). Refresh from the exchange when you can.
BINANCE_BTCUSDT = TierTable.from_brackets(
    [
        (0, 50_000, 125, 0.004),
        (50_000, 250_000, 100, 0.005),
        (250_000, 1_000_000, 50, 0.01),
        (1_000_000, 10_000_000, 20, 0.025),
        (10_000_000, 20_000_000, 10, 0.05),
        (20_000_000, 50_000_000, 5, 0.10),
        (50_000_000, 100_000_000, 4, 0.125),
        (100_000_000, 200_000_000, 3, 0.15),
        (200_000_000, 300_000_000, 2, 0.25),
        (300_000_000, 500_000_000, 1, 0.50),
    ]
)


@overload
def liquidation_price(
    entry_price: float, leverage: float, side: str,
    notional: float | None = None, tiers: TierTable | None = None,
) -> float: ...
@overload
def liquidation_price(
    entry_price: ArrayLike, leverage: ArrayLike, side: str,
    notional: ArrayLike | None = None, tiers: TierTable | None = None,
) -> NDArray[np.float64]: ...
def liquidation_price(
    entry_price: ArrayLike, leverage: ArrayLike, side: str,
    notional: ArrayLike | None = None, tiers: TierTable | None = None,
) -> float | NDArray[np.float64]:
    """Liquidation price (USD) of an isolated, one-way, linear USDT position.

    long:  LP = EP · (1 − 1/L − cum/N) / (1 − MMR)
    short: LP = EP · (1 + 1/L + cum/N) / (1 + MMR)

    MMR and cum come from the tier holding the notional ``N`` (USD). Without a notional the
    position is taken as a small one in the first tier that allows ``leverage`` (N = that tier's
    floor, or 1 USD for the first tier, where cum is 0): the usual retail case. Works on scalars
    and numpy arrays (broadcast). Raises ``ValueError`` for an unknown side, a non-positive
    price, notional or leverage, or a leverage above the tier's maximum.
    """
    if side not in SIDES:
        raise ValueError(f"side must be 'long' or 'short', got {side!r}")
    table = tiers if tiers is not None else BINANCE_BTCUSDT
    scalar = np.ndim(entry_price) == 0 and np.ndim(leverage) == 0 and (
        notional is None or np.ndim(notional) == 0
    )
    ep = np.asarray(entry_price, dtype=np.float64)
    lev = np.asarray(leverage, dtype=np.float64)
    if not bool(np.all(ep > 0)):
        raise ValueError(f"entry_price must be positive, got {_first_bad(ep, ep > 0)!r}")
    if not bool(np.all(lev > 0)):
        raise ValueError(f"leverage must be positive, got {_first_bad(lev, lev > 0)!r}")
    if notional is None:
        lev_b = np.broadcast_to(lev, np.broadcast(ep, lev).shape)
        mmr, cum, n = _tier_arrays_for_leverage(lev_b, table)
    else:
        n = np.asarray(notional, dtype=np.float64)
        if not bool(np.all(n > 0)):
            raise ValueError(f"notional must be positive, got {_first_bad(n, n > 0)!r}")
        shape = np.broadcast(ep, lev, n).shape
        n = np.broadcast_to(n, shape)
        lev_b = np.broadcast_to(lev, shape)
        mmr, cum, max_lev = _tier_arrays_for_notional(n, table)
        too_high = lev_b > max_lev
        if bool(np.any(too_high)):
            i = int(np.argmax(too_high.ravel()))
            raise ValueError(
                f"leverage {lev_b.ravel()[i]!r} exceeds the tier maximum "
                f"{max_lev.ravel()[i]!r} for notional {n.ravel()[i]!r}"
            )
    if side == "long":
        lp = ep * (1.0 - 1.0 / lev - cum / n) / (1.0 - mmr)
    else:
        lp = ep * (1.0 + 1.0 / lev + cum / n) / (1.0 + mmr)
    if scalar:
        return float(lp)
    return np.asarray(lp, dtype=np.float64)


def _first_bad(arr: NDArray[np.float64], ok: NDArray[np.bool_]) -> float:
    flat_ok = np.broadcast_to(ok, arr.shape).ravel()
    return float(arr.ravel()[int(np.argmin(flat_ok))])


def _columns(table: TierTable) -> tuple[NDArray[np.float64], ...]:
    t = table.tiers
    return tuple(
        np.array([getattr(x, name) for x in t], dtype=np.float64)
        for name in ("floor", "cap", "max_leverage", "mmr", "cum")
    )


def _tier_arrays_for_notional(
    n: NDArray[np.float64], table: TierTable
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    floor, cap, max_lev, mmr, cum = _columns(table)
    idx = np.searchsorted(floor, n, side="right") - 1
    if bool(np.any(n >= cap[-1])):
        bad = float(n.ravel()[int(np.argmax((n >= cap[-1]).ravel()))])
        raise ValueError(f"notional {bad!r} is above the last tier cap {cap[-1]}")
    return mmr[idx], cum[idx], max_lev[idx]


def _tier_arrays_for_leverage(
    lev: NDArray[np.float64], table: TierTable
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    floor, _cap, max_lev, mmr, cum = _columns(table)
    # The lowest-notional tier whose maximum allows the leverage (argmax finds the first True).
    allowed = max_lev[None, :] >= lev.reshape(-1, 1)
    if not bool(np.all(allowed.any(axis=1))):
        bad = float(lev.ravel()[int(np.argmin(allowed.any(axis=1)))])
        raise ValueError(f"leverage {bad!r} exceeds every tier's maximum ({max_lev.max()})")
    idx = np.argmax(allowed, axis=1).reshape(lev.shape)
    n = np.maximum(floor[idx], 1.0)
    return mmr[idx], cum[idx], n
