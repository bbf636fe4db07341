"""A small error hierarchy with one catch point (the router).

`UserError` text is shown to the user as is. `LLMError` carries a kind that the ledger
records and a short user-facing sentence. Anything else is logged with context and the
user gets a short apology: raw exception text never reaches a channel.
"""
from __future__ import annotations


class AibotError(Exception):
    """Base of the errors this project raises on purpose."""


class UserError(AibotError):
    """A problem with what the user asked; the message is shown verbatim."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.user_message = message


class ShuttingDown(UserError):
    """The process is stopping before the answer was finished (the note closing it)."""

    def __init__(self) -> None:
        super().__init__("The bot is shutting down (a restart or an update); please ask again in a minute.")


class ConfigError(AibotError):
    """Configuration is missing or wrong; the message names the variable to set."""


class LLMNotConfigured(UserError):
    """No model endpoint is configured; the message says what to set."""


class LLMError(AibotError):
    """A model call failed. `kind` is one of: rate_limited, unavailable, timeout, cut,
    bad_request, auth, connection, error."""

    _MESSAGES = {
        "rate_limited": "The language model is rate-limiting us right now; please try again in a minute.",
        "unavailable": "The language model service returned an error; please try again shortly.",
        "timeout": "The language model did not answer in time; please try again.",
        "cut": "The language model stopped answering midway.",
        "bad_request": "The language model refused the request (it may be too long or malformed).",
        "auth": "The language model rejected our credentials; an admin should check OPENAI_API_KEY.",
        "connection": "I could not reach the language model; an admin should check OPENAI_BASE_URL.",
        "error": "Something went wrong while talking to the language model.",
    }

    def __init__(self, kind: str, detail: str = "", *, retry_after: float | None = None) -> None:
        super().__init__(f"{kind}: {detail}" if detail else kind)
        self.kind = kind if kind in self._MESSAGES else "error"
        self.retry_after = retry_after

    @property
    def user_message(self) -> str:
        return self._MESSAGES[self.kind]


def user_message_for(exc: BaseException) -> str:
    """What a user sees for an exception: its own message if it is meant for users,
    otherwise a short apology (details go to the log, never the channel)."""
    if isinstance(exc, (UserError, LLMError)):
        return exc.user_message
    return "Sorry, something went wrong on my side while handling that. It has been logged."


def unreachable(service: str, url: str, variable: str, exc: BaseException) -> ConfigError:
    """A remote API that cannot be reached at start-up, as one line naming the setting
    that points at it (the network error's own words, without a traceback)."""
    os_error = getattr(exc, "os_error", None) or exc
    reason = getattr(os_error, "strerror", None) or str(exc) or type(exc).__name__
    return ConfigError(
        f"Cannot reach the {service} at {url} ({reason}). Check the network connection, "
        f"or {variable} if it is set (it points the bot at another address)."
    )
