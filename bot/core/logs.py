"""Request ids and the log formats.

Every platform event (and every HTTP API request) runs in a `request_scope`: a short id
in a context variable, so every log line written while handling it, including each
model call's line, carries the same `request_id`. With `AIBOT_LOG_FORMAT=json` each log
line is one JSON object (time, level, logger, message, request_id, and the record's
`extra` fields such as pattern, model, outcome, latency_ms), for a log pipeline to join
an event to its model calls.
"""
from __future__ import annotations

import contextvars
import json
import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone

REQUEST_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar("aibot_request_id", default=None)
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

# what every LogRecord has; anything else on a record came from `extra=` and goes out too
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime", "request_id"}


def new_request_id(kind: str = "") -> str:
    return (kind[:12] + "-" if kind else "") + uuid.uuid4().hex[:12]


@contextmanager
def request_scope(kind: str = "", request_id: str | None = None, *, inherit: bool = False) -> Iterator[str]:
    """Run the block under a request id: `request_id`, else (with `inherit`) the one
    already in effect (an API request handing a message to the router), else a new one."""
    rid = request_id or (REQUEST_ID.get() if inherit else None) or new_request_id(kind)
    token = REQUEST_ID.set(rid)
    try:
        yield rid
    finally:
        REQUEST_ID.reset(token)


class RequestIdFilter(logging.Filter):
    """Adds `record.request_id` (None outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = REQUEST_ID.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line."""

    def format(self, record: logging.LogRecord) -> str:
        out = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None) or REQUEST_ID.get(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False, default=str)


def formatter(kind: str) -> logging.Formatter:
    return JsonFormatter() if kind == "json" else logging.Formatter(TEXT_FORMAT)
