"""Every failure of a model call as one `LLMError` kind (never an SDK exception)."""
from __future__ import annotations

import logging
import sys

from bot.core.errors import LLMError

log = logging.getLogger(__name__)


def as_llm_error(exc: BaseException) -> LLMError:
    """`exc` as the LLMError a caller sees: its kind says what went wrong, never the SDK's text."""
    if isinstance(exc, LLMError):
        return exc
    openai = sys.modules.get("openai")  # not imported yet: `exc` cannot be one of its errors
    if openai is None:
        return LLMError("error", type(exc).__name__)
    if isinstance(exc, openai.RateLimitError):
        return LLMError("rate_limited", "429", retry_after=_retry_after(exc))
    if isinstance(exc, openai.APITimeoutError) and not _refused(exc):
        return LLMError("timeout", type(exc).__name__)
    if isinstance(exc, openai.APITimeoutError):  # the aiohttp transport reports a refusal as a timeout
        return LLMError("connection", "refused")
    if isinstance(exc, openai.APIConnectionError):
        return LLMError("connection", type(exc).__name__)
    if isinstance(exc, (openai.AuthenticationError, openai.PermissionDeniedError)):
        return LLMError("auth", str(getattr(exc, "status_code", "")))
    if isinstance(exc, (openai.BadRequestError, openai.NotFoundError, openai.UnprocessableEntityError)):
        return LLMError("bad_request", str(getattr(exc, "status_code", "")))
    if isinstance(exc, openai.APIStatusError):
        return LLMError("unavailable", str(exc.status_code))
    return LLMError("error", type(exc).__name__)


def _refused(exc: BaseException) -> bool:
    """Whether a "timeout" was in fact a connection that could not be made (the SDK's aiohttp
    transport maps aiohttp's ClientConnectorError to httpx's ConnectTimeout)."""
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, (ConnectionRefusedError, OSError)) and not isinstance(exc, TimeoutError):
            return True
        name = type(exc).__name__
        if name in ("ClientConnectorError", "ClientConnectorDNSError", "ClientConnectorCertificateError"):
            return True
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return False


def _retry_after(exc) -> float | None:
    retry = exc.response.headers.get("retry-after") if exc.response is not None else None
    try:
        return float(retry) if retry else None
    except ValueError:
        return None


def stream_error(exc: BaseException, *, sent: bool, pattern: str) -> BaseException:
    """What a failed stream raises: a cancellation or an LLMError as it is; anything else
    as an LLMError, `cut` once text has been sent."""
    if isinstance(exc, LLMError) or not isinstance(exc, Exception):
        return exc
    kind = "cut" if sent else as_llm_error(exc).kind
    log.warning("model stream failed (%s, pattern %s): %s", kind, pattern, type(exc).__name__)
    return LLMError(kind, type(exc).__name__)
