"""One message per (chat, cluster): approach → inside → broke as a message edited in place.

A *thread* is what the store remembers about a chat's messages on one cluster
(:class:`bot.alerts.threads.AlertThreads`): the platform's id of the message to edit, the
timeline shown in it and whether the cluster broke. Rules (:func:`plan`):

- approach: a new message (phones buzz), unless the chat's message on that cluster is still
  open (a re-approach before any break), which is then edited;
- inside: an edit of the open message (a new message when there is none);
- break: a new message (phones buzz) carrying the whole timeline; the thread is closed, so the
  next approach after the break re-arms starts a new message.

Edits go through the outbox like every alert (their own dedupe key, the event's); an edit the
platform refuses (message deleted, too old) is sent as a new message instead
(:class:`bot.dispatcher.Dispatcher`). The timeline keeps the last :data:`MAX_STEPS` steps.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.alerts.events import AlertEvent, EventKind
from bot.alerts.messages import render
from bot.fmt import price_text, time_text

KINDS = (EventKind.APPROACH, EventKind.INSIDE, EventKind.BREAK)
MAX_STEPS = 6
STEP_NAMES = {"approach": "approach", "inside": "inside", "break": "broke"}


@dataclass(frozen=True)
class Thread:
    """A chat's message on one cluster. ``timeline``: (kind, ts_ms, price) per step."""

    chat: int
    ref: str
    message_id: str
    timeline: tuple[tuple[str, int, float], ...]
    closed: bool


@dataclass(frozen=True)
class Plan:
    """How to deliver one lifecycle event: edit ``edit_id`` (None: a new message), with this
    timeline; ``closed`` after it is delivered."""

    edit_id: str | None
    timeline: tuple[tuple[str, int, float], ...]
    closed: bool


def plan(event: AlertEvent, thread: Thread | None) -> Plan:
    """The delivery of ``event`` given the chat's thread on its cluster (see the module)."""
    step = (event.kind.value, event.ts_ms, event.price)
    is_open = thread is not None and not thread.closed
    earlier = thread.timeline if is_open and thread is not None else ()
    if event.kind is EventKind.BREAK:
        return Plan(None, (*earlier, step)[-MAX_STEPS:], True)
    edit = thread.message_id if is_open and thread is not None else None
    return Plan(edit, (*earlier, step)[-MAX_STEPS:], False)


def text(event: AlertEvent, timeline: tuple[tuple[str, int, float], ...], tz: str = "UTC") -> str:
    """The event's line, then the timeline when it has more than one step:
    ``timeline: approach 12:00 at 92,900 → inside 13:15 at 94,050 → broke 14:05 at 94,700``
    (times in the chat's zone)."""
    line = render(event, tz)
    if len(timeline) < 2:
        return line
    steps = " → ".join(f"{STEP_NAMES.get(k, k)} {time_text(ts, tz)[11:16]} at {price_text(p)}"
                       for k, ts, p in timeline)
    return f"{line}\ntimeline: {steps}"
