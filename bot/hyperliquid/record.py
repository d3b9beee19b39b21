"""``liqbot record --hyperliquid``: discover wallets from the coins' public trades, scan them
for ``minutes``, and write

- ``hyperliquid_positions_YYYY-MM-DD.jsonl``: one JSON line per scanned wallet,
  ``{"time", "user", "state"}`` (:mod:`bot.hyperliquid.snapshots`), appended and flushed per
  line, so an interrupted recording keeps what it saw;
- ``BTC_hyperliquid_1m_YYYY-MM-DD.csv``: Hyperliquid's own 1-minute candles over the recording
  with ``open_interest_usd`` (the OI sampled by each pass's ``metaAndAssetCtxs``, the latest
  sample at or before each candle's close, × that candle's close), in the replay CSV format.
  Candles that close before the first sample are not written (no OI for them).
"""

from __future__ import annotations

import asyncio
import bisect
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.hyperliquid.client import InfoClient, WeightLimiter, hyperliquid_exchange
from bot.hyperliquid.discovery import Discovery, market_symbol
from bot.hyperliquid.scanner import Scanner, wall_ms
from bot.market.errors import RetryPolicy, with_retry
from bot.store import Store
from bot.tape.record import utc_date, write_candles_daily

CANDLE_WEIGHT = 4  # candleSnapshot


@dataclass
class PositionsRecord:
    files: set[Path] = field(default_factory=set)
    snapshots: int = 0
    wallets: int = 0
    candles: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


async def record_positions(coins: Sequence[str], out: Path, minutes: float, *,
                           share: float = 0.5, rescan_minutes: float = 10.0,
                           rest_url: str | None = None, ws_url: str | None = None,
                           retry: RetryPolicy | None = None, timeout_ms: int = 10_000,
                           now_ms: Callable[[], int] = wall_ms,
                           pause_s: float = 1.0) -> PositionsRecord:
    if not minutes > 0:
        raise ValueError("record: minutes must be > 0")
    out.mkdir(parents=True, exist_ok=True)
    retry = retry or RetryPolicy()
    result = PositionsRecord()
    store = Store(memory=True)  # the recording's own wallet set
    ex = hyperliquid_exchange(rest_url, ws_url, timeout_ms)
    ws = hyperliquid_exchange(rest_url, ws_url, timeout_ms)
    client = InfoClient(ex, WeightLimiter(share * 1200), retry)
    oi_samples: dict[str, list[tuple[int, float]]] = {c: [] for c in coins}
    discovery = Discovery(ws, coins, store.see_wallets, retry)
    start = now_ms()
    path = out / f"hyperliquid_positions_{utc_date(start)}.jsonl"
    try:
        with path.open("a", encoding="utf-8") as fh:
            result.files.add(path)
            scanner = Scanner(client, store, coins, int(rescan_minutes * 60_000), now_ms=now_ms,
                              out=fh)
            discovery.start()
            loop = asyncio.get_running_loop()
            deadline = loop.time() + minutes * 60
            while loop.time() < deadline:
                report = await scanner.scan_once()
                result.snapshots += report.scanned
                t = now_ms()
                for coin in coins:
                    if coin in scanner.contexts:
                        oi_samples[coin].append((t, scanner.contexts[coin]["oi"]))
                await asyncio.sleep(min(pause_s, max(0.0, deadline - loop.time())))
        await discovery.stop()
        if discovery.error is not None:
            result.notes.append(f"wallet discovery stopped: {discovery.error}")
        result.wallets = store.wallet_count()
        for coin in coins:
            await _candles(client, coin, start, now_ms(), oi_samples[coin], out, result, retry)
    finally:
        await discovery.stop()
        await client.close()
        await ws.close()
        store.close()
    return result


async def _candles(client: InfoClient, coin: str, start: int, end: int,
                   samples: list[tuple[int, float]], out: Path, result: PositionsRecord,
                   retry: RetryPolicy) -> None:
    if not samples:
        result.notes.append(f"{coin}: no open interest sampled, no candles written")
        return
    ex: Any = client.ex

    async def call() -> Any:
        await client.limiter.acquire(CANDLE_WEIGHT)
        return await ex.fetch_ohlcv(market_symbol(coin), "1m", since=start - start % 60_000,
                                    params={"until": end})
    rows = await with_retry(f"hyperliquid candles {coin}", call, retry)
    times = [t for t, _ in samples]
    cols: dict[str, list[float]] = {k: [] for k in ("timestamp", "open", "high", "low",
                                                    "close", "volume", "open_interest_usd")}
    for ts, o, h, lo, c, v in rows:
        close_ms = int(ts) + 60_000
        if close_ms > end:
            continue  # not closed yet
        i = bisect.bisect_right(times, close_ms) - 1
        if i < 0:
            continue  # closed before the first OI sample
        for k, x in zip(cols, (ts, o, h, lo, c, v, samples[i][1] * float(c)), strict=True):
            cols[k].append(float(x))
    result.candles[coin] = len(cols["timestamp"])
    if cols["timestamp"]:
        result.files |= write_candles_daily(cols, out, f"{coin}_hyperliquid_1m")


def run_cli(symbols: Sequence[str], out: Path, minutes: float, quiet: bool) -> int:
    """``liqbot record --hyperliquid``: record, print what was written."""
    from bot.hyperliquid.confirmed import coin_of
    from bot.progress import Progress

    coins = list(dict.fromkeys(coin_of(s) for s in symbols))
    with Progress("recording", total=round(minutes * 60), unit="s", quiet=quiet) as bar:
        result = asyncio.run(bar.timed(record_positions(coins, out, minutes)))
    print(f"{result.wallets} wallets discovered, {result.snapshots} snapshots")
    for coin, n in sorted(result.candles.items()):
        print(f"{coin}: {n} candles with open interest")
    for note in result.notes:
        print(f"note: {note}")
    print(f"{len(result.files)} file(s) in {out}")
    return 0
