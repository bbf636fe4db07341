"""Exact-match answer cache in PostgreSQL, keyed by a hash of everything the model sees.

A hit costs one indexed lookup instead of a model call. Entries expire after
`AIBOT_CACHE_TTL` seconds (0 turns the cache off). A cache failure is logged and treated
as a miss: the cache can make answers cheaper, never break them.
"""
from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects.postgresql import insert

from bot.core.messages import utcnow
from bot.core.models import CacheEntry

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Cached:
    text: str
    prompt_tokens: int
    completion_tokens: int


def cache_key(model: str, messages: list[dict], options: dict, *, scope: str = "") -> str:
    """`scope` (the tenant) keeps one workspace's answers from ever being served to another."""
    body = {"m": model, "msgs": messages, "o": options}
    if scope:
        body["s"] = scope
    blob = json.dumps(body, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class Cache:
    def __init__(self, db, *, ttl_seconds: int) -> None:
        self.db = db
        self.ttl = timedelta(seconds=ttl_seconds)

    @property
    def enabled(self) -> bool:
        return self.ttl.total_seconds() > 0

    async def get(self, key: str) -> Cached | None:
        if not self.enabled:
            return None
        try:
            async with self.db.session.autocommit() as s:  # one statement: no BEGIN/COMMIT round trips
                row = (
                    await s.execute(
                        update(CacheEntry)
                        .where(CacheEntry.key == key, CacheEntry.expires_at > func.now())
                        .values(hits=CacheEntry.hits + 1)
                        .returning(CacheEntry.text, CacheEntry.prompt_tokens, CacheEntry.completion_tokens)
                    )
                ).first()
        except Exception:
            log.warning("cache lookup failed; calling the model", exc_info=True)
            return None
        return Cached(*row) if row else None

    async def put(self, key: str, model: str, text: str, prompt_tokens: int, completion_tokens: int) -> None:
        if not self.enabled or not text:
            return
        values = dict(
            key=key,
            model=model[:200],
            text=text,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            expires_at=utcnow() + self.ttl,
        )
        stmt = insert(CacheEntry).values(**values)
        stmt = stmt.on_conflict_do_update(
            index_elements=[CacheEntry.key],
            set_={"text": stmt.excluded.text, "expires_at": stmt.excluded.expires_at},
        )
        try:
            async with self.db.session.autocommit() as s:  # one statement
                await s.execute(stmt)
        except Exception:
            log.warning("cache write failed", exc_info=True)

    async def delete(self, key: str) -> None:
        """Forget one entry (an answer someone rated 👎)."""
        async with self.db.session.begin() as s:
            await s.execute(delete(CacheEntry).where(CacheEntry.key == key))

    async def purge_expired(self) -> int:
        async with self.db.session.begin() as s:
            res = await s.execute(delete(CacheEntry).where(CacheEntry.expires_at <= func.now()))
        return res.rowcount or 0

    async def count(self) -> int:
        async with self.db.session() as s:
            return int((await s.execute(select(func.count()).select_from(CacheEntry))).scalar_one())
