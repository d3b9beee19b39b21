"""Leverage tiers and the liquidation price against the closed forms in DESIGN.md."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from estimator import BINANCE_BTCUSDT, Tier, TierTable, liquidation_price


def test_100x_long_liquidates_0602_pct_below_entry():
    lp = liquidation_price(50_000.0, 100, "long")
    assert (lp / 50_000 - 1) * 100 == pytest.approx(-0.6024, abs=5e-5)


def test_100x_short_liquidates_0598_pct_above_entry():
    lp = liquidation_price(50_000.0, 100, "short")
    assert (lp / 50_000 - 1) * 100 == pytest.approx(0.5976, abs=5e-5)


def test_15m_notional_10x_long_uses_5pct_mmr_and_266300_cum():
    tier = BINANCE_BTCUSDT.for_notional(15e6)
    assert (tier.mmr, tier.cum, tier.max_leverage) == (0.05, 266_300, 10)
    lp = liquidation_price(60_000.0, 10, "long", notional=15e6)
    assert lp == pytest.approx(60_000 * (1 - 0.1 - 266_300 / 15e6) / (1 - 0.05), rel=1e-12)


def test_default_table_cum_follows_binance_rule():
    cums = [t.cum for t in BINANCE_BTCUSDT.tiers]
    assert cums == [0, 50, 1_300, 16_300, 266_300, 1_266_300, 2_516_300, 5_016_300,
                    25_016_300, 100_016_300]


@given(
    ep=st.floats(100, 200_000),
    notional=st.floats(1, 499_999_999),
    side=st.sampled_from(["long", "short"]),
    frac=st.floats(0.01, 1.0),
)
def test_matches_binance_general_form(ep, notional, side, frac):
    """LP = (WB + cum − s·Q·EP) / (Q·MMR − s·Q), WB = N/L, s = +1 long / −1 short."""
    tier = BINANCE_BTCUSDT.for_notional(notional)
    lev = max(1.0, tier.max_leverage * frac)
    s = 1 if side == "long" else -1
    q = notional / ep
    expected = (notional / lev + tier.cum - s * q * ep) / (q * tier.mmr - s * q)
    assert liquidation_price(ep, lev, side, notional=notional) == pytest.approx(expected, rel=1e-9)


def test_arrays_broadcast_and_match_scalars():
    eps = np.array([10_000.0, 20_000.0, 30_000.0])
    levs = np.array([5, 25, 100])
    out = liquidation_price(eps, levs, "short")
    assert isinstance(out, np.ndarray) and out.shape == (3,)
    for e, lv, o in zip(eps, levs, out, strict=True):
        assert o == liquidation_price(float(e), float(lv), "short")


def test_long_below_short_above_and_higher_leverage_is_closer():
    levs = np.array([2, 5, 10, 25, 50, 100, 125])
    longs = liquidation_price(np.full(7, 100.0), levs, "long")
    shorts = liquidation_price(np.full(7, 100.0), levs, "short")
    assert np.all(longs < 100) and np.all(shorts > 100)
    assert np.all(np.diff(longs) > 0) and np.all(np.diff(shorts) < 0)


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"entry_price": 100.0, "leverage": 10, "side": "sideways"}, "'sideways'"),
        ({"entry_price": -5.0, "leverage": 10, "side": "long"}, "-5.0"),
        ({"entry_price": 0.0, "leverage": 10, "side": "long"}, "entry_price"),
        ({"entry_price": 100.0, "leverage": 150, "side": "long"}, "150"),
        ({"entry_price": 100.0, "leverage": 50, "side": "long", "notional": 2e6}, "50"),
        ({"entry_price": 100.0, "leverage": 2, "side": "long", "notional": 6e8}, "600000000"),
        ({"entry_price": [100.0, np.nan], "leverage": 2, "side": "long"}, "nan"),
    ],
)
def test_rejects_bad_values_naming_them(kwargs, needle):
    with pytest.raises(ValueError, match=needle.replace("(", r"\(")):
        liquidation_price(**kwargs)


def test_tier_table_rejects_gaps():
    with pytest.raises(ValueError, match="gap"):
        TierTable((Tier(0, 10, 100, 0.01, 0), Tier(20, 30, 50, 0.02, 0.1)))
