"""/ifbreak, /mypos and /map SYM PRICE: through the command core, the CLI, the Telegram fake
and the Discord fake (issue 19). The arithmetic is tested in tests/estimator/test_cascade.py;
here: the reply carries the estimator's numbers, says it is an estimate, refuses bad input
with one line, and keeps a position out of groups and logs."""

from __future__ import annotations

import json
import logging
import subprocess
import sys

import pytest

from bot.charts import map_figure
from bot.cli import main
from bot.fmt import money, price_text
from estimator import BINANCE_BTCUSDT, build_book, cascade_path, find_clusters, liquidation_price
from tests.bot.helpers import SYMBOL, group, private, started_service

JSON_FIELDS = ["symbol", "price", "target", "side", "cumulative_usd", "clusters", "proxy",
               "as_of"]
CLUSTER_FIELDS = ["low", "high", "notional_usd", "cumulative_usd"]


@pytest.fixture(autouse=True)
def _ptb_timedelta(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PTB_TIMEDELTA", "1")  # see tests/bot/test_telegram.py


@pytest.fixture
async def parts():
    service, core, store = await started_service()
    yield service, core, store
    store.close()


# --- through the command core ------------------------------------------------------------------
@pytest.mark.parametrize("direction", [-1, 1])
async def test_ifbreak_reports_the_cascade_of_the_estimate(parts, direction):
    service, core, _ = parts
    est = service.board.get(SYMBOL)
    target = round(est.price * (1 + direction * 0.06))
    reply = await core.handle(f"/ifbreak BTC {target}", private())
    cas = cascade_path(est.book, est.clusters, target)
    assert not reply.error and reply.png is None
    words = "longs" if direction < 0 else "shorts"
    assert f"≈ {money(cas.cumulative_usd)} of {words} would be liquidated" in reply.text
    assert cas.bands, "the bundled book has clusters within 6 %"
    for b in cas.bands[:8]:
        assert (f"{price_text(b.low)}–{price_text(b.high)}  {money(b.notional_usd)}  "
                f"(running {money(b.cumulative_usd)})") in reply.text
    assert "estimate, not exchange data" in reply.text
    assert "$ sizes are proxy units" in reply.text  # the bundled candles have no OI
    assert [b.command for b in reply.buttons] == [f"/map BTC {target}"]


@pytest.mark.parametrize(("args", "message"), [
    ("BTC {price}", "equals the current price"),
    ("BTC {far}", "% from the current price; at most 50 %"),
    ("DOGE 5", "DOGE"),
    ("BTC", "Give a symbol and a price"),
    ("BTC 9k 10k", "Too many arguments"),
    ("BTC lots", "'lots' is not a valid price"),
])
async def test_ifbreak_bad_input_is_one_specific_line_and_the_usage(parts, args, message):
    service, core, _ = parts
    est = service.board.get(SYMBOL)
    text = "/ifbreak " + args.format(price=f"{est.price:.10g}", far=f"{est.price * 1.6:.0f}")
    reply = await core.handle(text, private())
    assert reply.error
    first, usage = reply.text.split("\n")
    assert message in first
    assert usage == "Usage: /ifbreak SYM PRICE"


async def test_mypos_uses_the_exact_formula_and_the_tier_for_the_size(parts):
    service, core, _ = parts
    est = service.board.get(SYMBOL)
    entry = round(est.price)
    reply = await core.handle(f"/mypos BTC long {entry} 10x 2m", private())
    lp = liquidation_price(entry, 10, "long", 2_000_000, BINANCE_BTCUSDT)
    tier = BINANCE_BTCUSDT.for_notional(2_000_000)
    assert (tier.max_leverage, tier.mmr) == (20, 0.025)  # not the first tier's 0.4 %
    assert not reply.error, reply.text
    assert f"liquidation ≈ {price_text(lp)}" in reply.text
    assert "up to 20x, maintenance 2.50 %" in reply.text
    cas = cascade_path(est.book, est.clusters, lp)
    assert (f"{money(cas.cumulative_usd)} of longs sit between price {price_text(est.price)} "
            f"and your liquidation at {price_text(lp)}") in reply.text
    biggest = max(cas.bands, key=lambda b: b.notional_usd)
    assert f"the largest band {price_text(biggest.low)}–{price_text(biggest.high)}" in reply.text
    assert "estimate, not exchange data" in reply.text


async def test_mypos_short_without_a_size_takes_the_first_tier_for_the_leverage(parts):
    service, core, _ = parts
    est = service.board.get(SYMBOL)
    entry = round(est.price)
    reply = await core.handle(f"/mypos BTC short {entry} 25", private())
    lp = liquidation_price(entry, 25, "short")
    assert f"liquidation ≈ {price_text(lp)}" in reply.text
    assert "of shorts sit between" in reply.text and "maintenance 0.40 %" in reply.text


@pytest.mark.parametrize(("args", "message"), [
    ("BTC long {p} 50x 5m", "50x is above the 20x maximum for a $5.0M position"),
    ("BTC sideways {p} 10x", "'sideways' is not a side"),
    ("BTC long {p} 200x", "'200x' is not a leverage"),
    ("BTC long {p}", "Give side, entry and leverage"),
    ("BTC long {p} 1x", "no liquidation price above zero"),
    ("BTC long -5 10x", "'-5' is not a valid entry price"),
])
async def test_mypos_bad_input(parts, args, message):
    service, core, _ = parts
    p = f"{service.board.get(SYMBOL).price:.0f}"
    reply = await core.handle("/mypos " + args.format(p=p), private())
    assert reply.error
    first, usage = reply.text.split("\n")
    assert message in first
    assert usage == "Usage: /mypos SYM long|short ENTRY LEVERAGE [SIZE_USD] [watch [PCT]]"


async def test_mypos_past_the_liquidation_says_so(parts):
    service, core, _ = parts
    entry = round(service.board.get(SYMBOL).price * 1.2)
    reply = await core.handle(f"/mypos BTC long {entry} 10x", private())
    assert "is already past it" in reply.text and not reply.error


async def test_mypos_in_a_group_shows_nothing_of_the_position(parts):
    _, core, _ = parts
    for admin in (True, False):
        reply = await core.handle("/mypos BTC long 9876 10x 50k", group("u1", admin))
        assert reply.error and reply.text.startswith("Send /mypos to me in a private chat")
        assert "9876" not in reply.text and "9,876" not in reply.text and "50" not in reply.text


async def test_map_with_a_price_draws_the_path_and_reads_the_curve_at_it(parts):
    service, core, _ = parts
    est = service.board.get(SYMBOL)
    target = round(est.price * 0.93)
    reply = await core.handle(f"/map BTC {target}", private())
    cas = cascade_path(est.book, est.clusters, target)
    assert reply.png is not None and reply.png.startswith(b"\x89PNG")
    assert f"break {price_text(target)} → {money(cas.cumulative_usd)} of longs" in reply.text
    bad = await core.handle(f"/map BTC {est.price:.10g}", private())
    assert bad.error and "equals the current price" in bad.text

    fig = map_figure(est.book, est.clusters, symbol=SYMBOL, exchange="replay", timeframe="1h",
                     path=cas)
    main_ax, curve_ax = fig.axes[:2]
    [shade] = [p for p in main_ax.patches if p.get_gid() == "ifbreak-range"]
    x0, x1 = shade.get_x(), shade.get_x() + shade.get_width()
    assert (x0, x1) == pytest.approx((target, est.price))
    [point] = [ln for ln in curve_ax.lines if ln.get_gid() == "ifbreak-point"]
    assert (point.get_xdata()[0], point.get_ydata()[0]) == (target, cas.cumulative_usd)
    assert curve_ax.get_ylim()[1] >= cas.cumulative_usd
    [label] = [t for t in curve_ax.texts if t.get_gid() == "ifbreak-label"]
    assert money(cas.cumulative_usd) in label.get_text()
    lo, _hi = main_ax.get_xlim()
    assert lo <= target  # the span widens to show the target

    far = cascade_path(est.book, est.clusters, round(est.price * 1.3))
    fig = map_figure(est.book, est.clusters, symbol=SYMBOL, exchange="replay", timeframe="1h",
                     path=far)
    assert fig.axes[0].get_xlim()[1] >= far.target


# --- the CLI -------------------------------------------------------------------------------------
def bundled_cascade(target: float):
    from bot.config import Config, model_params
    from bot.market.replay import BUNDLED_CSV, load_csv

    book = build_book(load_csv(BUNDLED_CSV), model_params(Config()))
    return cascade_path(book, find_clusters(book), target)


def test_cli_ifbreak_json_has_exactly_the_issue_fields(capsys):
    assert main(["ifbreak", "BTC", "7.5k", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert list(out) == JSON_FIELDS
    cas = bundled_cascade(7500)
    assert out["symbol"] == "BTC/USDT:USDT" and out["side"] == "long"
    assert (out["price"], out["target"]) == (cas.price, 7500)
    assert out["cumulative_usd"] == cas.cumulative_usd > 0
    assert out["proxy"] is True and out["as_of"] == "2019-10-17T09:00:00Z"
    assert out["clusters"] and all(list(c) == CLUSTER_FIELDS for c in out["clusters"])
    assert [c["cumulative_usd"] for c in out["clusters"]] == [
        b.cumulative_usd for b in cas.bands]
    # The whole book, not only clusters: more than the clusters' own notional.
    assert out["cumulative_usd"] > sum(c["notional_usd"] for c in out["clusters"])
    assert main(["ifbreak", "BTC", "7000", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["cumulative_usd"] >= out["cumulative_usd"]


def test_cli_ifbreak_text_labels_the_estimate(capsys):
    assert main(["ifbreak", "BTC", "8.5k"]) == 0
    out = capsys.readouterr().out
    assert "of shorts would be liquidated" in out and "estimate, not exchange data" in out
    assert "proxy units" in out


@pytest.mark.parametrize(("args", "message"), [
    (["BTC", "8035.88"], "PRICE 8035.88: target equals the current price"),
    (["BTC", "13k"], "PRICE 13k: target is 61.8 % from the current price; at most 50 %"),
    (["ETH", "8k"], "symbol 'ETH': btcusd_coinbase_1h.csv holds BTC only"),
    (["BTC", "lots"], "PRICE: 'lots' is not a valid price"),
    (["BTC"], "the following arguments are required: price"),
])
def test_cli_ifbreak_bad_input_is_one_line_exit_2(args, message):
    run = subprocess.run([sys.executable, "-m", "bot.cli", "ifbreak", *args],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 2, run.stderr
    assert run.stdout == ""
    assert len(run.stderr.strip().splitlines()) == 1, run.stderr
    assert message in run.stderr and "Traceback" not in run.stderr


# --- the chat platforms --------------------------------------------------------------------------
async def test_telegram_ifbreak_and_mypos_and_nothing_logged(caplog):
    from tests.bot.fake_telegram import ANN, BOB, CAT, GROUP, PRIVATE
    from tests.bot.test_telegram import running

    caplog.set_level(logging.DEBUG)
    async with running() as h:
        price = h.service.board.get(SYMBOL).price
        target = round(price * 0.95)
        ans = await h.ask(PRIVATE, ANN, f"/ifbreak BTC {target}")
        assert f"if price breaks {price_text(target)} ↓" in ans["text"]
        assert "estimate, not exchange data" in ans["text"]
        button = ans["reply_markup"]["inline_keyboard"][0][0]
        assert button == {"text": "Chart", "callback_data": f"/map BTC {target}"}

        entry = "9873.25"  # an odd number that shows up nowhere else
        mine = await h.ask(PRIVATE, ANN, f"/mypos BTC short {entry} 20x 60k")
        assert "BTC/USDT:USDT short from 9,873 at 20x, $60.0K: liquidation ≈" in mine["text"]
        h.fake.admins.add((GROUP["id"], CAT["id"]))
        for user in (BOB, CAT):
            refused = await h.ask(GROUP, user, f"/mypos BTC short {entry} 20x 60k")
            assert refused["text"].startswith("Send /mypos to me in a private chat")
            assert "9,873" not in refused["text"] and entry not in refused["text"]
        lp = mine["text"].split("liquidation ≈ ")[1].split(" ")[0]
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "sendMessage" in logged and "/mypos <position>" in logged  # PTB's DEBUG lines
    for secret in (entry, "9,873", "60k", lp):
        assert secret not in logged


def test_redaction_cuts_a_position_from_a_log_line():
    from bot.redact import redact

    line = ("Calling `sendMessage` with {'chat_id': 5, 'text': 'BTC/USDT:USDT long from 95,000 "
            "at 10x: liquidation ≈ 86,000\\n$820M of longs'}")
    assert redact(line) == "Calling `sendMessage` with {'chat_id': 5, 'text': 'BTC/USDT:USDT "\
        "<position>"
    assert redact("Update(text='/mypos@liqbot BTC long 95k 10x')") == "Update(text='/mypos "\
        "<position>"
    assert redact("/levels BTC long from here") == "/levels BTC long from here"


async def test_discord_ifbreak_and_mypos():
    from tests.bot.test_discord import discord_api, reply_embed, started_bot

    async with discord_api() as fake, started_bot(fake) as b:
        price = b.service.board.get(SYMBOL).price
        target = round(price * 1.04)
        await b.call("ifbreak", {"symbol": "BTC", "price": str(target)}, guild_id=None)
        embed = reply_embed(fake.callbacks[0].payload)
        assert f"if price breaks {price_text(target)} ↑" in embed["description"]
        assert "estimate, not exchange data" in embed["description"]
        await b.call("mypos", {"symbol": "BTC", "side": "long", "entry": f"{price:.0f}",
                               "leverage": "10x"}, guild_id=None)
        embed = reply_embed(fake.callbacks[1].payload)
        lp = liquidation_price(float(f"{price:.0f}"), 10, "long")
        assert f"liquidation ≈ {price_text(lp)}" in embed["description"]
        # In a guild channel (a group) it is refused, privately.
        await b.call("mypos", {"symbol": "BTC", "side": "long", "entry": "9876",
                               "leverage": "10x"})
        payload = fake.callbacks[2].payload
        assert reply_embed(payload)["description"].startswith("Send /mypos to me")
        assert int(payload.get("data", payload).get("flags") or 0) & 64
        # The watch option, in a DM; /unlevel takes its wID.
        await b.call("mypos", {"symbol": "BTC", "side": "short", "entry": f"{price:.0f}",
                               "leverage": "20x", "watch_pct": 1.5}, guild_id=None)
        assert "Watching it as #w1" in reply_embed(fake.callbacks[3].payload)["description"]
        [w] = b.store.active_position_watches(SYMBOL)
        assert (w.side, w.leverage, w.within_pct) == ("short", 20.0, 1.5)
        await b.call("unlevel", {"level_id": "w1"}, guild_id=None)
        assert reply_embed(fake.callbacks[4].payload)["description"] == (
            "Position watch #w1 removed.")
