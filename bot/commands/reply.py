"""The neutral types the command core speaks: who asked (Caller) and what to answer (Reply)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Caller:
    """Who sent a command. Adapters fill it in; ``is_admin`` means admin *of that chat* (group
    admin, Discord Manage Channels) — configured bot admins are checked by the core."""

    platform: str  # "telegram" | "discord" | "console"
    chat_id: str
    user_id: str
    is_group: bool = False
    is_admin: bool = False
    thread_id: str | None = None
    display_name: str = ""


WEB_LABEL = "Interactive chart"  # the button under a chart that opens its web view (bot.web)


@dataclass(frozen=True)
class Button:
    """An inline action: a label and the command text it runs."""

    label: str
    command: str


@dataclass(frozen=True)
class Reply:
    """What to answer: plain text (adapters escape it), an optional PNG with ``text`` as its
    caption, buttons, and follow-up replies. ``error`` marks a refusal (bad input, limits)."""

    text: str
    png: bytes | None = None
    filename: str = "chart.png"
    buttons: tuple[Button, ...] = ()
    followups: tuple[Reply, ...] = ()
    error: bool = False
    web_url: str = ""  # the chart's interactive page (bot.web), shown as a button; "" = none
