"""When a daily digest is due: parsing `/digest on ...` and the time-zone arithmetic.

A schedule is a local wall-clock time in an IANA zone, optionally weekdays only. Its
*period* is the local date of an occurrence, so there is exactly one period per local
day, also on DST change days: a time that does not exist that day (02:30 on the spring
change in Europe/Berlin) runs at the same offset as before the change (03:30 local), a
time that exists twice (02:30 on the autumn change) runs at its first occurrence.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.core.errors import UserError

USAGE = "/digest on HH:MM [Time/Zone] [weekdays] | off | now | status"
EXAMPLE = "`/digest on 09:00 Europe/Berlin weekdays`"
_TIME = re.compile(r"^(\d{1,2})(?::(\d{2}))?\s*(am|pm)?$", re.IGNORECASE)
_WEEKDAYS = {"weekdays", "weekday", "workdays", "mon-fri"}


@dataclass(frozen=True)
class Spec:
    at: time
    tz: str
    weekdays: bool = False

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.tz)

    def describe(self) -> str:
        days = "on weekdays" if self.weekdays else "every day"
        return f"{self.at:%H:%M} {self.tz}, {days}"


def parse_time(text: str) -> time | None:
    m = _TIME.match(text.strip())
    if not m:
        return None
    hour, minute, ampm = int(m.group(1)), int(m.group(2) or 0), (m.group(3) or "").lower()
    if m.group(2) is None and not ampm:
        return None  # a bare "9" is too ambiguous
    if ampm:
        if not 1 <= hour <= 12:
            return None
        hour = hour % 12 + (12 if ampm == "pm" else 0)
    if hour > 23 or minute > 59:
        return None
    return time(hour, minute)


def zone_or_none(name: str | None) -> str | None:
    if not name:
        return None
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None
    return name


def parse_spec(words: list[str], *, default_tz: str | None) -> Spec:
    """`09:00 Europe/Berlin weekdays` (zone and weekdays optional, any order after the time)."""
    if not words:
        raise UserError(f"Tell me when, e.g. {EXAMPLE}.")
    at = parse_time(words[0])
    if at is None:
        raise UserError(f"`{words[0][:40]}` is not a time of day; use 24-hour HH:MM, e.g. {EXAMPLE}.")
    tz, weekdays = None, False
    for w in words[1:]:
        if w.lower() in _WEEKDAYS:
            weekdays = True
        elif tz is None and zone_or_none(w):
            tz = w
        else:
            raise UserError(
                f"`{w[:60]}` is neither a time zone nor `weekdays`. Time zones are IANA names like "
                f"Europe/Berlin, America/New_York or UTC, e.g. {EXAMPLE}."
            )
    return Spec(at, tz or zone_or_none(default_tz) or "UTC", weekdays)


def occurrence(day: date, spec: Spec) -> datetime:
    """The UTC instant of the schedule's time on local date `day`."""
    local = datetime.combine(day, spec.at, tzinfo=spec.zone)  # fold=0: see the module docstring
    return local.astimezone(timezone.utc)


def _runs_on(day: date, spec: Spec) -> bool:
    return not spec.weekdays or day.weekday() < 5


def latest(spec: Spec, now: datetime) -> datetime | None:
    """The last occurrence at or before `now`."""
    day = now.astimezone(spec.zone).date()
    for back in range(0, 9):
        d = day - timedelta(days=back)
        if _runs_on(d, spec):
            occ = occurrence(d, spec)
            if occ <= now:
                return occ
    return None


def following(spec: Spec, now: datetime) -> datetime:
    """The first occurrence strictly after `now`."""
    day = now.astimezone(spec.zone).date()
    for ahead in range(0, 9):
        d = day + timedelta(days=ahead)
        if _runs_on(d, spec):
            occ = occurrence(d, spec)
            if occ > now:
                return occ
    raise AssertionError("no occurrence within 9 days")


def previous(spec: Spec, occ: datetime) -> datetime:
    """The occurrence before `occ` (the start of a first digest's window)."""
    return latest(spec, occ - timedelta(seconds=1)) or occ - timedelta(days=1)


def period(spec: Spec, occ: datetime) -> str:
    return occ.astimezone(spec.zone).date().isoformat()
