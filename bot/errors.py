"""liqbot's exception hierarchy: one root, specific kinds, user-safe messages where marked."""


class LiqBotError(Exception):
    """Root of every error liqbot raises on purpose."""


class ConfigError(LiqBotError):
    """The configuration file or environment is invalid (exit code 2)."""


class MarketDataError(LiqBotError):
    """Market data could not be fetched or is invalid (exchange errors are chained)."""


class BadSymbolError(MarketDataError):
    """The exchange does not list the symbol; the message is safe to show a user."""


class DataFileError(MarketDataError):
    """A replay/candle file is malformed; the message names the file and line."""


class StoreError(LiqBotError):
    """The store could not be opened or migrated."""


class StorePathError(StoreError, ConfigError):
    """The configured store path cannot hold a store (missing or read-only folder, a
    directory): a config problem, exit code 2."""


class StoreUnreachableError(StoreError, ConfigError):
    """The configured PostgreSQL store cannot be reached or refuses the login (exit code 2);
    the message never holds the password."""


class StoreLockedError(StoreError):
    """Another process owns the store (only one ``liqbot run`` per SQLite store)."""


class LeaseLostError(StoreError):
    """A market worker no longer holds the symbol's lease (another worker took it over): its
    tick was not committed (bot.leases)."""


class UserInputError(LiqBotError):
    """A command was malformed; ``str(exc)`` is a short message safe to show the user."""

    def __init__(self, message: str, usage: str | None = None) -> None:
        super().__init__(message)
        self.usage = usage


class UsageError(UserInputError):
    """A command-line argument is unusable (e.g. --out in a folder that does not exist): the
    CLI prints the message on one line and exits 2, before any work is done."""


class NonFiniteResultError(LiqBotError):
    """A computation on the data gave NaN or infinity: no result and no verdict (exit 1)."""


class LimitExceededError(UserInputError):
    """A per-chat cap or rate limit was hit; the message says which and what to do."""


class MarketUnavailableError(MarketDataError):
    """The exchange stayed unreachable, rate-limited or erroring after our retries (transient)."""


class PlatformUnreachableError(LiqBotError):
    """A chat platform (Telegram Bot API, Discord) could not be reached while an adapter
    started: ``liqbot run`` retries that start in the background (bot.platform_start)."""


class DeliveryError(LiqBotError):
    """A notifier could not deliver an alert (platform errors are chained)."""


class PermanentDeliveryError(DeliveryError):
    """The chat can never receive this (blocked the bot, deleted, kicked): deactivate it."""


class RejectedDeliveryError(DeliveryError):
    """The platform refused this one message (e.g. HTTP 400): retrying cannot help, but the
    chat itself is fine. The outbox row fails at once; the chat stays active."""


class EditFailedError(DeliveryError):
    """The platform cannot edit that message (deleted, too old, not found): the dispatcher
    sends the update as a new message instead."""


class TransientDeliveryError(DeliveryError):
    """Delivery may succeed later (network, 5xx, rate limit); ``retry_after_s`` when known."""

    def __init__(self, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s
