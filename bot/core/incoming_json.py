"""An `Incoming` as JSON and back, so that a message can be handled again by another
process (the answer journal). The platform's raw payload is not kept: an adapter that
resumes a message fetches what it needs again."""
from __future__ import annotations

import json
from dataclasses import asdict, fields
from datetime import datetime
from typing import Any

from bot.core.messages import Attachment, Incoming

_ATTACHMENT = "$attachment"
_SKIPPED = {"raw"}


def _plain(value: Any) -> Any:
    if isinstance(value, Attachment):
        return {_ATTACHMENT: asdict(value)}
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return str(value)


def _typed(value: Any) -> Any:
    if isinstance(value, dict) and _ATTACHMENT in value:
        return Attachment(**value[_ATTACHMENT])
    if isinstance(value, list):
        return [_typed(v) for v in value]
    if isinstance(value, dict):
        return {k: _typed(v) for k, v in value.items()}
    return value


def dumps(msg: Incoming) -> str:
    """`msg` as a JSON object (text)."""
    out: dict[str, Any] = {}
    for f in fields(Incoming):
        if f.name in _SKIPPED:
            continue
        value = getattr(msg, f.name)
        if f.name == "ts":
            value = value.isoformat()
        elif f.name == "attachments":
            value = [asdict(a) for a in value]
        elif f.name == "options":
            value = None if value is None else _plain(dict(value))
        out[f.name] = value
    return json.dumps(out, ensure_ascii=False)


def loads(data: str | dict) -> Incoming:
    """The `Incoming` that `dumps` wrote (unknown keys from a newer version are ignored)."""
    d = json.loads(data) if isinstance(data, str) else dict(data)
    known = {f.name for f in fields(Incoming)} - _SKIPPED
    d = {k: v for k, v in d.items() if k in known}
    if "ts" in d:
        d["ts"] = datetime.fromisoformat(d["ts"])
    d["attachments"] = tuple(Attachment(**a) for a in d.get("attachments") or ())
    if d.get("options") is not None:
        d["options"] = _typed(d["options"])
    return Incoming(**d)
