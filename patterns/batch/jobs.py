"""Batch pattern, face two: bulk summarize jobs with a job id.

A job is a list of items (`id`, `text`, `instruction`), validated as a whole (one clear
message per bad line, nothing created when any line is bad) and stored with per-item
status in one transaction. `patterns.batch.worker` processes direct jobs;
`patterns.batch.provider` sends provider jobs through the OpenAI Batch API.
"""
from __future__ import annotations

import json
import uuid
from dataclasses import dataclass

from sqlalchemy import text

from bot.core.errors import UserError

PATTERN = "batch"
ANSWER_TOKENS = 700  # the longest summary of one item, in both modes
MAX_ID = 200
MAX_INSTRUCTION = 4_000
MAX_ERRORS_SHOWN = 10
MODES = ("direct", "provider")


@dataclass(frozen=True)
class Item:
    id: str
    text: str
    instruction: str


def _unstorable(field: str, value: str) -> str | None:
    """Why PostgreSQL's text type cannot hold `value`, or None."""
    if "\x00" in value:
        return f"`{field}` contains a NUL character (\\u0000), which cannot be stored; remove it"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        code = ord(value[exc.start])
        return f"`{field}` contains an unpaired surrogate (\\u{code:04x}), which is not valid Unicode; remove it"
    return None


def _item(obj, where: str, max_chars: int) -> Item | str:
    """An Item, or what is wrong with it."""
    if not isinstance(obj, dict):
        return f"{where}: expected a JSON object with id, text and instruction"
    unknown = sorted(set(obj) - {"id", "text", "instruction"})
    if unknown:
        return f"{where}: unknown field(s) {', '.join(unknown)[:80]} (use id, text, instruction)"
    raw_id = obj.get("id")
    if isinstance(raw_id, int) and not isinstance(raw_id, bool):
        raw_id = str(raw_id)
    if not isinstance(raw_id, str) or not raw_id.strip():
        return f"{where}: `id` must be a non-empty string"
    if len(raw_id) > MAX_ID:
        return f"{where}: `id` is longer than {MAX_ID} characters"
    body, instruction = obj.get("text"), obj.get("instruction")
    if not isinstance(body, str) or not body.strip():
        return f"{where}: `text` must be a non-empty string"
    if len(body) > max_chars:
        return f"{where}: `text` is too long ({len(body):,} characters; the limit is {max_chars:,})"
    if not isinstance(instruction, str) or not instruction.strip():
        return f"{where}: `instruction` must be a non-empty string, e.g. \"Summarize in 3 bullets\""
    if len(instruction) > MAX_INSTRUCTION:
        return f"{where}: `instruction` is longer than {MAX_INSTRUCTION:,} characters"
    for name, value in (("id", raw_id), ("text", body), ("instruction", instruction)):
        if (why := _unstorable(name, value)) is not None:
            return f"{where}: {why}"
    return Item(raw_id.strip(), body, instruction.strip())


def validate(objs: list[tuple[str, object]], *, max_items: int, max_chars: int) -> list[Item]:
    """Items from (where, parsed object) pairs; UserError listing every problem otherwise."""
    problems: list[str] = []
    items: list[Item] = []
    seen: dict[str, str] = {}
    for where, obj in objs:
        got = _item(obj, where, max_chars) if not isinstance(obj, _Bad) else f"{where}: {obj.why}"
        if isinstance(got, str):
            problems.append(got)
            continue
        if got.id in seen:
            problems.append(f"{where}: duplicate id {got.id!r} (first on {seen[got.id]})")
            continue
        seen[got.id] = where
        items.append(got)
    if not problems and not items:
        problems.append("there are no items: give one JSON object per line with id, text and instruction")
    if not problems and len(items) > max_items:
        problems.append(f"too many items ({len(items):,}; the limit is {max_items:,}, AIBOT_BATCH_MAX_ITEMS)")
    if problems:
        shown = problems[:MAX_ERRORS_SHOWN]
        more = f"\n… and {len(problems) - len(shown)} more" if len(problems) > len(shown) else ""
        raise UserError("Nothing was submitted; fix these and try again:\n" + "\n".join(shown) + more)
    return items


class _Bad:
    def __init__(self, why: str) -> None:
        self.why = why


def parse_jsonl(data: bytes, *, max_items: int, max_chars: int, cut_at: int | None = None) -> list[Item]:
    """Items from JSON Lines (blank lines are allowed); see `validate`. `cut_at` says the
    input was cut after that many bytes (a reader's size limit): its last line is then
    named as oversize rather than as broken JSON."""
    if cut_at is not None:
        data = data[:cut_at]
    try:
        content = data.decode("utf-8-sig", errors="strict" if cut_at is None else "ignore")
    except UnicodeDecodeError:
        raise UserError("Nothing was submitted: the file is not UTF-8 text.") from None
    objs: list[tuple[str, object]] = []
    lines = content.splitlines()
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        if cut_at is not None and n == len(lines):
            objs.append((f"line {n}", _Bad(
                f"oversize: the input is cut at {cut_at:,} bytes inside this line "
                f"(an item's text may have at most {max_chars:,} characters)")))
            continue
        try:
            objs.append((f"line {n}", json.loads(line)))
        except ValueError as exc:
            if len(line) > max_chars + MAX_INSTRUCTION + MAX_ID:
                why = f"oversize ({len(line):,} characters; an item's text may have at most {max_chars:,})"
            else:
                why = f"not valid JSON ({exc.msg} at column {exc.colno})"
            objs.append((f"line {n}", _Bad(why)))
        if len(objs) > max_items:
            raise UserError(f"Nothing was submitted: more than {max_items:,} items (AIBOT_BATCH_MAX_ITEMS).")
    return validate(objs, max_items=max_items, max_chars=max_chars)


class JobStore:
    def __init__(self, db) -> None:
        self.db = db

    async def create(self, items: list[Item], *, model: str, mode: str = "direct", source: str = "") -> str:
        """Store a job and all its items in one transaction; its id."""
        if mode not in MODES:
            raise UserError(f"Unknown mode {mode!r}; use one of: {', '.join(MODES)}.")
        job_id = "job_" + uuid.uuid4().hex[:24]
        async with self.db.session.begin() as s:
            await s.execute(
                text("INSERT INTO batch_jobs (id, status, mode, model, total, source) "
                     "VALUES (:id, 'queued', :mode, :model, :total, :source)"),
                dict(id=job_id, mode=mode, model=model, total=len(items), source=source[:300]),
            )
            await s.execute(
                text("INSERT INTO batch_items (job_id, item_id, seq, text, instruction) "
                     "VALUES (:job, :item, :seq, :text, :instruction)"),
                [dict(job=job_id, item=it.id, seq=i, text=it.text, instruction=it.instruction) for i, it in enumerate(items)],
            )
        return job_id

    async def status(self, job_id: str, *, results: bool = True) -> dict | None:
        """Status, counts per item status, and the results once the job is done."""
        async with self.db.session() as s:
            job = (await s.execute(
                text("SELECT id, status, mode, model, total, created_at, finished_at, provider_status "
                     "FROM batch_jobs WHERE id = :id"), {"id": job_id[:40]})).mappings().first()
            if job is None:
                return None
            counts = dict((await s.execute(
                text("SELECT status, count(*) FROM batch_items WHERE job_id = :id GROUP BY status"), {"id": job_id})).all())
            out = {
                "job_id": job["id"], "status": job["status"], "mode": job["mode"], "model": job["model"],
                "total": job["total"],
                "counts": {k: int(counts.get(k, 0)) for k in ("pending", "done", "failed")}
                | ({"cancelled": int(counts["cancelled"])} if counts.get("cancelled") else {}),
                "created_at": job["created_at"].isoformat(),
                "finished_at": job["finished_at"].isoformat() if job["finished_at"] else None,
            }
            if job["provider_status"]:
                out["provider_status"] = job["provider_status"]
            if results and job["status"] in ("done", "cancelled"):
                rows = (await s.execute(
                    text("SELECT item_id, status, result, error FROM batch_items WHERE job_id = :id ORDER BY seq"),
                    {"id": job_id})).mappings().all()
                out["results"] = [
                    {"id": r["item_id"], "status": r["status"], **({"summary": r["result"]} if r["status"] == "done"
                                                                  else {"error": r["error"] or r["status"]})}
                    for r in rows
                ]
        return out

    async def recent(self, *, limit: int = 50, status: str | None = None) -> list[dict]:
        """The newest jobs first, without their items."""
        async with self.db.session() as s:
            rows = (await s.execute(text(
                "SELECT id, status, mode, model, total, source, created_at, finished_at FROM batch_jobs "
                "WHERE CAST(:status AS text) IS NULL OR status = :status ORDER BY created_at DESC, id LIMIT :limit"),
                {"status": status, "limit": limit})).mappings().all()
        return [{"job_id": r["id"], "status": r["status"], "mode": r["mode"], "model": r["model"], "total": r["total"],
                 "source": r["source"], "created_at": r["created_at"].isoformat(),
                 "finished_at": r["finished_at"].isoformat() if r["finished_at"] else None} for r in rows]

    async def cancel(self, job_id: str) -> str | None:
        """Cancel a job: its items not processed yet are never sent (an item being processed
        right now finishes). The job's status before, or None if there is no such job."""
        async with self.db.session.begin() as s:
            before = (await s.execute(text("SELECT status FROM batch_jobs WHERE id = :id FOR UPDATE"),
                                      {"id": job_id[:40]})).scalar()
            if before is None or before in ("done", "cancelled"):
                return before
            await s.execute(text("UPDATE batch_items SET status = 'cancelled', updated_at = now() "
                                 "WHERE job_id = :id AND status = 'pending'"), {"id": job_id})
            await s.execute(text("UPDATE batch_jobs SET status = 'cancelled', finished_at = now() WHERE id = :id"),
                            {"id": job_id})
        return before

    async def pending_items(self) -> int:
        """Items of every job not processed yet (ix_batch_items_pending answers it)."""
        async with self.db.session() as s:
            return int((await s.execute(text("SELECT count(*) FROM batch_items WHERE status = 'pending'"))).scalar())

    async def finish_if_complete(self, s, job_id: str) -> None:
        """Mark the job done when no item is pending (inside the caller's transaction)."""
        await s.execute(
            text("UPDATE batch_jobs SET status = 'done', finished_at = now() WHERE id = :id "
                 "AND status NOT IN ('done', 'cancelled') "
                 "AND NOT EXISTS (SELECT 1 FROM batch_items WHERE job_id = :id AND status = 'pending')"),
            {"id": job_id},
        )
