"""Time windows as people type them: `4h`, `30m`, `2d`, `90 minutes`."""
from __future__ import annotations

import re
from datetime import timedelta

_WINDOW = re.compile(r"^(\d{1,4})\s*(m|min|mins|minutes?|h|hr|hrs|hours?|d|days?)$", re.IGNORECASE)


def parse_window(arg: str) -> timedelta | None:
    """`4h`, `30m`, `2d`, `90 minutes` as a time window; None if `arg` is not one."""
    m = _WINDOW.match(arg.strip())
    if not m:
        return None
    n, unit = int(m.group(1)), m.group(2).lower()
    if unit.startswith("m"):
        return timedelta(minutes=n)
    if unit.startswith("h"):
        return timedelta(hours=n)
    return timedelta(days=n)


def describe(window: timedelta) -> str:
    """A window in words: `4 hours`, `2 days`, `90 minutes`."""
    minutes = int(window.total_seconds() // 60)
    if minutes % (60 * 24) == 0:
        d = minutes // (60 * 24)
        return f"{d} day{'s' if d != 1 else ''}"
    if minutes % 60 == 0:
        h = minutes // 60
        return f"{h} hour{'s' if h != 1 else ''}"
    return f"{minutes} minutes"
