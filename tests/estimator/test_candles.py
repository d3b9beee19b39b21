"""Candle series validation: bad arrays are refused with the row that is wrong."""

import numpy as np
import pytest

from estimator import Candles


def make(**over):
    cols = dict(timestamp=[0, 60_000, 120_000], open=[10.0, 11, 12], high=[11.0, 12, 13],
                low=[9.0, 10, 11], close=[11.0, 12, 12], volume=[1.0, 0, 2])
    cols.update(over)
    return Candles(**{k: np.asarray(v) for k, v in cols.items()})


@pytest.mark.parametrize(
    ("over", "message"),
    [
        ({"timestamp": [0, 0, 1]}, "not strictly ascending at row 1"),
        ({"high": [11.0, 9.0, 13]}, "high < low at row 1"),
        ({"low": [9.0, 10, -1]}, "non-positive low at row 2"),
        ({"close": [11.0, np.nan, 12]}, "non-finite close at row 1"),
        ({"volume": [1.0, -2, 2]}, "negative volume at row 1"),
        ({"open_interest_usd": [1.0, 2.0]}, "open_interest_usd has shape"),
        ({"timestamp": [], "open": [], "high": [], "low": [], "close": [], "volume": []},
         "empty"),
    ],
)
def test_rejects_bad_series(over, message):
    with pytest.raises(ValueError, match=message):
        make(**over)


def test_slices_keep_optional_columns():
    c = make(open_interest_usd=[1.0, 2, 3], taker_buy_volume=[0.5, 0, 1])
    t = c.tail(2)
    assert len(t) == 2 and list(t.open_interest_usd) == [2, 3]
    assert list(t.taker_buy_volume) == [0, 1]
    assert np.allclose(c.typical_price, (c.high + c.low + c.close) / 3)
