"""No store write leaves a transaction open (sqlite-utils 3.x's db.execute() did: the write
seemed to work on the same connection but was rolled back at close, and it held the write lock).

Every public Store method is listed here as a write (called, then checked) or a read, so a new
method cannot skip the check."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import pytest

from bot.alerts import SymbolState
from bot.alerts.events import AlertEvent, EventKind
from bot.audit.receipts import DueReceipt
from bot.errors import LimitExceededError
from bot.store import Store
from bot.tape.events import Liquidation
from tests.bot.engine_helpers import SYM, T0, short

READS = {"active_levels", "active_liq_subscriptions", "active_subscriptions", "due", "find_chat",
         "get_chat", "integrity_ok", "journal_mode", "liq_subscriber_counts", "liquidations",
         "list_levels", "list_liq_subscriptions", "list_subscriptions", "load_clusters",
         "load_summaries", "load_state", "oldest_pending", "outbox_counts", "pending_count",
         "subscriber_counts",
         "tape_flushed", "watch_version", "watched_symbols", "close",
         "list_position_watches", "active_position_watches", "thread",
         "quiet_symbols", "held_count",
         # audit (bot/audit/tables.py) and Hyperliquid wallets (bot/hyperliquid/wallets.py)
         "evaluation_count", "last_evaluation_ms", "last_path_ms", "path", "receipt_captures",
         "receipts_due", "scored_table", "unscored", "wallet", "wallet_count", "wallet_states",
         "wallets_to_scan", "confirmed_subscriptions", "outbox_waiter", "outbox_depth",
         "top_subscription", "active_top_subscriptions"}


def event(chat: int, ref: str, kind: EventKind = EventKind.APPROACH) -> AlertEvent:
    return AlertEvent(kind=kind, chat=chat, symbol=SYM, ref=ref, epoch=1, price=94_000.0,
                      ts_ms=T0)


def writes(s: Store) -> dict[str, Callable[[], Any]]:
    """One call per public write method, in an order where each has something to act on."""
    st: dict[str, Any] = {}

    def chat() -> None:
        st["chat"] = s.upsert_chat("telegram", 7).id

    def tick() -> None:
        s.commit_tick(SYM, SymbolState(), [short()], [event(st["chat"], "a"),
                                                       event(st["chat"], "b")], now=T0)
        st["rows"] = [r.id for r in s.due(T0 + 1)]

    def level() -> None:
        st["level"] = s.add_level(st["chat"], SYM, 95_000.0).id

    def watch() -> None:
        st["watch"] = s.add_position_watch(st["chat"], SYM, "long", 95_000.0, 10.0, None,
                                           86_000.0, 2.0, now=T0).id

    return {
        "upsert_chat": chat,
        "set_timezone": lambda: s.set_timezone(st["chat"], "Asia/Tokyo"),
        "subscribe": lambda: s.subscribe(st["chat"], SYM),
        "add_level": level,
        "save_clusters": lambda: s.save_clusters(SYM, [short()], now=T0),
        "commit_tick": tick,
        "claim_due": lambda: s.claim_due(T0 + 1, limit=1),
        "claim": lambda: s.claim(st["rows"][0], now=T0),
        "mark_sent": lambda: s.mark_sent(st["rows"][0], now=T0),
        "mark_retry": lambda: s.mark_retry(st["rows"][1], T0 + 5, "HTTP 502"),
        "release": lambda: (s.claim(st["rows"][1], now=T0 + 5), s.release(st["rows"][1])),
        "mark_failed": lambda: s.mark_failed(st["rows"][1], "HTTP 400", now=T0),
        "recover_inflight": s.recover_inflight,
        "prune_outbox": lambda: s.prune_outbox(T0 + 1),
        "mark_sent_thread": lambda: s.mark_sent_thread(
            st["rows"][0], T0, st["chat"], "a", "m1", (("approach", T0, 94_000.0),), False),
        "prune_threads": lambda: s.prune_threads(T0 + 1),
        "set_quiet": lambda: s.set_quiet(st["chat"], SYM, False),
        "subscribe_liqs": lambda: s.subscribe_liqs(st["chat"], SYM, 1e5, 1e6, now=T0),
        "add_liquidations": lambda: s.add_liquidations(
            [Liquidation("binanceusdm", T0, SYM, "long", 94_000.0, 1.0, 94_000.0)]),
        "commit_tape": lambda: s.commit_tape(
            SYM, T0, [event(st["chat"], f"{SYM}@{T0}", EventKind.LIQUIDATIONS)], now=T0),
        "prune_liquidations": lambda: s.prune_liquidations(T0 + 1),
        "add_path": lambda: s.add_path(SYM, [(T0, 95_000.0, 93_000.0, 94_000.0)]),
        "add_evaluation": lambda: s.add_evaluation(SYM, T0, T0 + 1, T0 + 2, 94_000.0, False, True,
                                                   [(True, 94_000.0, 94_400.0, 1e9)]),
        "set_scores": lambda: s.set_scores(SYM, [(T0, {"touched": True})]),
        "add_receipts_due": lambda: s.add_receipts_due([DueReceipt(
            st["chat"], "S1", 1, SYM, "short", 94_000.0, 94_400.0, 93_700.0, T0, T0 - 1,
            T0 + 60_000, 1e9, False)]),
        "commit_receipts": lambda: s.commit_receipts([AlertEvent(
            EventKind.RECEIPT, st["chat"], SYM, "S1", 1, price=94_500.0, ts_ms=T0 + 60_000,
            side="short", low=94_000.0, high=94_400.0, tape_usd=1e6, control_usd=0.0)],
            now=T0),
        "prune_audit": lambda: s.prune_audit(T0 + 120_000),
        "see_wallets": lambda: s.see_wallets(["0xabc"], T0),
        "save_scan": lambda: s.save_scan("0xabc", T0, 1e6, {"positions": []}),
        # confirmed (Hyperliquid) subscriptions, bot/hyperliquid/alerts.py
        "subscribe_confirmed": lambda: s.subscribe_confirmed(st["chat"], SYM, 1e6, 0.5, now=T0),
        "commit_confirmed": lambda: s.commit_confirmed(
            [event(st["chat"], "hl:S1", EventKind.CONFIRMED)], T0),
        "unsubscribe_confirmed": lambda: s.unsubscribe_confirmed(st["chat"], SYM),
        "unsubscribe_liqs": lambda: s.unsubscribe_liqs(st["chat"], SYM),
        "remove_level": lambda: s.remove_level(st["chat"], st["level"]),
        "unsubscribe": lambda: s.unsubscribe(st["chat"], SYM),
        "add_position_watch": watch,
        "commit_watches": lambda: s.commit_watches(
            s.list_position_watches(st["chat"]),
            [event(st["chat"], f"pos:{st['watch']}:near", EventKind.POSITION)], now=T0),
        "remove_position_watch": lambda: s.remove_position_watch(st["chat"], st["watch"]),
        # the daily /top digest, bot/alerts/top_digest.py
        "subscribe_top": lambda: s.subscribe_top(st["chat"], 3, None, now=T0),
        "queue_top_digests": lambda: s.queue_top_digests(
            [event(st["chat"], "top", EventKind.TOP_DIGEST)], T0),
        "unsubscribe_top": lambda: s.unsubscribe_top(st["chat"]),
        "deactivate_chat": lambda: s.deactivate_chat(st["chat"], "blocked", now=T0),
    }


def test_every_public_method_is_classified() -> None:
    public = {n for n, f in inspect.getmembers(Store, callable) if not n.startswith("_")}
    listed = READS | set(writes(Store(memory=True)))
    assert public - listed == set(), (
        "new Store method(s): list each under READS, or (a write) in writes() with a call, so "
        "test_no_write_leaves_a_transaction_open checks it")
    assert listed - public == set()



def test_no_write_leaves_a_transaction_open(store: Store, open_store) -> None:
    assert not store.db.in_transaction  # after open + migrations
    for name, call in writes(store).items():
        call()
        assert not store.db.in_transaction, f"Store.{name} left a transaction open"
    # Committed, not just visible on this connection: a second connection sees the last write.
    other = open_store()
    assert not other.get_chat(1).active
    assert other.load_clusters(SYM) == [short()]


def test_a_refused_write_rolls_back_and_leaves_no_transaction(open_store) -> None:
    s = open_store(max_subscriptions=1, max_levels=1)
    chat = s.upsert_chat("telegram", 1).id
    s.subscribe(chat, SYM)
    s.add_level(chat, SYM, 1.0)
    with pytest.raises(LimitExceededError):
        s.subscribe(chat, "ETH/USDT:USDT")
    assert not s.db.in_transaction
    with pytest.raises(LimitExceededError):
        s.add_level(chat, SYM, 2.0)
    assert not s.db.in_transaction
    assert len(s.list_subscriptions(chat)) == len(s.list_levels(chat)) == 1
