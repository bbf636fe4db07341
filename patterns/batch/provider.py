"""Provider batch mode: a job sent through the OpenAI Batch API (files + batches
endpoints; half the price, results within 24 h).

`submit` uploads the job's requests as a JSONL file (`purpose="batch"`) and creates a
batch; `poll_provider_jobs` (run by the worker) checks each open batch and, once it has
completed, downloads the output file and records each item's result. An item is marked
done once (`... AND status = 'pending'`) and only then recorded in the usage ledger, at the
batch price, so a poll repeated after a crash never charges an item twice.
"""
from __future__ import annotations

import io
import json
import logging
from decimal import Decimal

from sqlalchemy import text

from bot.core import tokens
from bot.core.errors import LLMError, LLMNotConfigured
from bot.core.config import LLM_SETUP_HINT
from bot.core.llm import ChatOptions, as_llm_error
from bot.core.messages import CallInfo
from patterns.batch.jobs import PATTERN, JobStore

log = logging.getLogger(__name__)

BATCH_DISCOUNT = Decimal("0.5")
ANSWER_TOKENS = 700
_FINAL_FAILURES = {"failed", "expired", "cancelled"}


def _client(services):
    if services.llm.client is None:
        raise LLMNotConfigured(LLM_SETUP_HINT)
    return services.llm.client


async def submit(services, job_id: str) -> str:
    """Send a stored provider-mode job to the Batch API; the provider's batch id."""
    client = _client(services)
    settings = services.settings
    async with services.db.session.begin() as s:  # one submitter per job, also across replicas
        claimed = (await s.execute(text(
            "UPDATE batch_jobs SET provider_status = 'submitting' WHERE id = :id AND provider_batch_id IS NULL "
            "AND provider_status IS NULL RETURNING id"), {"id": job_id})).first()
    if claimed is None:
        return ""
    async with services.db.session() as s:
        job = (await s.execute(text("SELECT model FROM batch_jobs WHERE id = :id"), {"id": job_id})).first()
        items = (await s.execute(text(
            "SELECT item_id, text, instruction FROM batch_items WHERE job_id = :id ORDER BY seq"), {"id": job_id})).all()
    budget = max(200, settings.context_tokens - ANSWER_TOKENS - 400)
    lines = []
    for it in items:
        messages = [{"role": "system", "content": it.instruction},
                    {"role": "user", "content": tokens.truncate(it.text, budget)}]
        body = services.llm._params(messages, ChatOptions(model=job.model, max_tokens=ANSWER_TOKENS, temperature=0.2))
        lines.append(json.dumps({"custom_id": it.item_id, "method": "POST", "url": "/v1/chat/completions", "body": body}))
    data = ("\n".join(lines) + "\n").encode()
    try:
        uploaded = await client.files.create(file=(f"{job_id}.jsonl", io.BytesIO(data)), purpose="batch")
        batch = await client.batches.create(
            input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h",
            metadata={"aibot_job": job_id},
        )
    except Exception as exc:
        async with services.db.session.begin() as s:  # not sent: let the next poll try again
            await s.execute(text("UPDATE batch_jobs SET provider_status = NULL WHERE id = :id"), {"id": job_id})
        raise as_llm_error(exc) from None
    async with services.db.session.begin() as s:
        await s.execute(text(
            "UPDATE batch_jobs SET status = 'running', provider_batch_id = :b, provider_status = :st WHERE id = :id"),
            dict(b=batch.id, st=batch.status, id=job_id))
    return batch.id


async def poll_provider_jobs(services) -> int:
    """Check every open provider batch once; the number of jobs finished."""
    async with services.db.session() as s:
        open_jobs = (await s.execute(text(
            "SELECT id, model, provider_batch_id FROM batch_jobs WHERE mode = 'provider' AND status <> 'done'"))).all()
    if not open_jobs:
        return 0
    finished = 0
    for job in open_jobs:
        try:
            if job.provider_batch_id is None:
                await submit(services, job.id)
                continue
            finished += await _poll_one(services, job)
        except (LLMError, LLMNotConfigured) as exc:
            log.warning("provider batch for job %s: %s", job.id, exc)
    return finished


async def _poll_one(services, job) -> int:
    client = _client(services)
    batch = await client.batches.retrieve(job.provider_batch_id)
    async with services.db.session.begin() as s:
        await s.execute(text("UPDATE batch_jobs SET provider_status = :st WHERE id = :id"), dict(st=batch.status, id=job.id))
    if batch.status == "completed" or batch.status in _FINAL_FAILURES:
        for file_id in (batch.output_file_id, batch.error_file_id):
            if file_id:
                content = await client.files.content(file_id)
                await _collect(services, job, content.text)
        async with services.db.session.begin() as s:
            await s.execute(text(
                "UPDATE batch_items SET status = 'failed', error = :err, updated_at = now() "
                "WHERE job_id = :id AND status = 'pending'"),
                dict(id=job.id, err=f"no result from the provider batch ({batch.status})"))
            await JobStore(services.db).finish_if_complete(s, job.id)
        return 1
    return 0


async def _collect(services, job, content: str) -> None:
    for line in content.splitlines():
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
            item_id = str(rec["custom_id"])
        except (ValueError, KeyError, TypeError):
            log.warning("provider batch %s: an unreadable output line was ignored", job.provider_batch_id)
            continue
        resp = rec.get("response") or {}
        body = resp.get("body") or {}
        ok = resp.get("status_code") == 200 and body.get("choices")
        if ok:
            summary = (body["choices"][0].get("message") or {}).get("content") or ""
            usage = body.get("usage") or {}
            pt, ct = int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)
            status, result, error = "done", summary.strip(), None
        else:
            pt = ct = 0
            status, result = "failed", None
            error = f"provider error: {((rec.get('error') or body.get('error') or {}).get('code') or resp.get('status_code'))}"[:300]
        async with services.db.session.begin() as s:
            row = (await s.execute(text(
                "UPDATE batch_items SET status = :st, result = :result, error = :error, attempts = attempts + 1, "
                "prompt_tokens = :pt, completion_tokens = :ct, updated_at = now() "
                "WHERE job_id = :job AND item_id = :item AND status = 'pending' RETURNING item_id"),
                dict(st=status, result=result, error=error, pt=pt, ct=ct, job=job.id, item=item_id))).first()
        if row is not None and ok:
            await services.llm.record_usage(
                CallInfo(PATTERN, platform="batch", tenant=job.id, channel=item_id[:200]),
                body.get("model") or job.model, prompt_tokens=pt, completion_tokens=ct, discount=BATCH_DISCOUNT,
                extra={"provider_batch": job.provider_batch_id},
            )
