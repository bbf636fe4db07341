"""Provider batch mode: a job sent through the OpenAI Batch API (files + batches
endpoints; half the price, results within 24 h).

Items are summarized exactly as direct mode summarizes them (`bot.core.summarizer.Plan`,
same budget, answer size and options): an item too long for one call is split, the parts
are summarized, their summaries combined, round after round. A round's requests depend
on the previous round's answers, so a job takes one batch per round. `submit` uploads the
current round's requests of every pending item as a JSONL file (`purpose="batch"`,
`custom_id` "{seq}:{round}:{piece}") and creates a batch; `poll_provider_jobs` (run by
the worker) checks each open batch and, once it has ended, reduces every item whose
answers are all back: done with its summary, or on to the next round, which is sent at
once. The job is done when no item is pending.

An item's answers are collected once: only while the item is pending at the round they
belong to (`... AND status = 'pending' AND round = :round`), and only then recorded in
the usage ledger (one row per answer, at the batch price), so a poll repeated after a
crash never charges anything twice.
"""
from __future__ import annotations

import io
import json
import logging
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import text

from bot.core.errors import LLMError, LLMNotConfigured
from bot.core.llm import as_llm_error
from bot.core.settings import LLM_SETUP_HINT
from bot.core.messages import CallInfo
from bot.core.summarizer import Plan, Stage
from patterns.batch.jobs import ANSWER_TOKENS, PATTERN, JobStore

log = logging.getLogger(__name__)

BATCH_DISCOUNT = Decimal("0.5")
MAX_REQUESTS = 50_000  # the Batch API's limits per batch
MAX_FILE_MB = 200
_FINAL_FAILURES = {"failed", "expired", "cancelled"}
_ENDED = {"completed"} | _FINAL_FAILURES


def _client(services):
    if services.llm.client is None:
        raise LLMNotConfigured(LLM_SETUP_HINT)
    return services.llm.client


def _plan(services, instruction: str, model: str) -> Plan:
    """The rounds direct mode (`patterns.batch.worker`) runs for an item."""
    return Plan(instruction=instruction, budget_tokens=services.settings.context_tokens,
                max_tokens=ANSWER_TOKENS, model=model)


def _stage(item) -> Stage:
    return Stage(item.text if item.stage_text is None else item.stage_text, item.round)


def _shown(status: str, round_: int) -> str:
    """The provider's batch status, naming the round once there is more than one."""
    return status if round_ == 0 else f"{status} (round {round_ + 1})"


async def submit(services, job_id: str) -> str:
    """Send the current round of a stored provider-mode job to the Batch API; the
    provider's batch id ("" when there is nothing for this caller to send)."""
    client = _client(services)
    async with services.db.session.begin() as s:  # one submitter per job and round, also across replicas
        job = (await s.execute(text(
            "UPDATE batch_jobs SET provider_status = 'submitting' WHERE id = :id AND provider_batch_id IS NULL "
            "AND provider_status IS NULL AND status NOT IN ('done', 'cancelled') RETURNING model, provider_round"), {"id": job_id})).first()
    if job is None:
        return ""
    async with services.db.session() as s:
        items = (await s.execute(text(
            "SELECT seq, text, stage_text, round, instruction FROM batch_items "
            "WHERE job_id = :id AND status = 'pending' ORDER BY seq"), {"id": job_id})).all()
    lines = []
    for it in items:
        plan = _plan(services, it.instruction, job.model)
        for piece, messages in enumerate(plan.step(_stage(it)).requests):
            body = services.llm._params(messages, plan.options)
            lines.append(json.dumps({"custom_id": f"{it.seq}:{it.round}:{piece}", "method": "POST",
                                     "url": "/v1/chat/completions", "body": body}))
    data = ("\n".join(lines) + "\n").encode()
    refused = None
    if len(lines) > MAX_REQUESTS or len(data) > MAX_FILE_MB * 1024 * 1024:
        refused = (f"this round needs {len(lines):,} requests ({len(data) / 2**20:,.0f} MB) in one provider batch; "
                   f"the OpenAI Batch API takes at most {MAX_REQUESTS:,} and {MAX_FILE_MB} MB: "
                   "submit fewer or shorter items per job, or use direct mode")
    if not lines or refused:
        async with services.db.session.begin() as s:
            await s.execute(text(
                "UPDATE batch_items SET status = 'failed', error = :err, updated_at = now() "
                "WHERE job_id = :id AND status = 'pending'"), {"id": job_id, "err": refused})
            await s.execute(text("UPDATE batch_jobs SET provider_status = NULL WHERE id = :id"), {"id": job_id})
            await JobStore(services.db).finish_if_complete(s, job_id)
        return ""
    try:
        uploaded = await client.files.create(
            file=(f"{job_id}-round{job.provider_round + 1}.jsonl", io.BytesIO(data)), purpose="batch")
        batch = await client.batches.create(
            input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h",
            metadata={"aibot_job": job_id, "aibot_round": str(job.provider_round + 1)},
        )
    except Exception as exc:
        async with services.db.session.begin() as s:  # not sent: let the next poll try again
            await s.execute(text("UPDATE batch_jobs SET provider_status = NULL WHERE id = :id"), {"id": job_id})
        raise as_llm_error(exc) from None
    async with services.db.session.begin() as s:
        await s.execute(text(
            "UPDATE batch_jobs SET status = 'running', provider_batch_id = :b, provider_status = :st WHERE id = :id"),
            dict(b=batch.id, st=_shown(batch.status, job.provider_round), id=job_id))
    return batch.id


async def poll_provider_jobs(services) -> int:
    """Check every open provider batch once, collect the ended ones and send the next
    round where items need one; the number of jobs finished."""
    async with services.db.session() as s:
        open_jobs = (await s.execute(text(
            "SELECT id, model, provider_batch_id, provider_round FROM batch_jobs "
            "WHERE mode = 'provider' AND status NOT IN ('done', 'cancelled')"))).all()
    finished = 0
    for job in open_jobs:
        try:
            if job.provider_batch_id is None:
                await submit(services, job.id)
                continue
            ended, done = await _poll_one(services, job)
            finished += done
            if ended and not done:
                await submit(services, job.id)  # the next round, without waiting for the next poll
        except (LLMError, LLMNotConfigured) as exc:
            log.warning("provider batch for job %s: %s", job.id, exc)
    return finished


async def _poll_one(services, job) -> tuple[bool, bool]:
    """(the batch has ended and is collected, the job is done)."""
    client = _client(services)
    batch = await client.batches.retrieve(job.provider_batch_id)
    async with services.db.session.begin() as s:  # a poll that is late (another one moved on) changes nothing
        await s.execute(text("UPDATE batch_jobs SET provider_status = :st WHERE id = :id AND provider_batch_id = :b"),
                        dict(st=_shown(batch.status, job.provider_round), id=job.id, b=job.provider_batch_id))
    if batch.status not in _ENDED:
        return False, False
    contents = []
    for file_id in (batch.output_file_id, batch.error_file_id):
        if file_id:
            contents.append((await client.files.content(file_id)).text)
    await _collect(services, job, "\n".join(contents))
    async with services.db.session.begin() as s:
        await s.execute(text(  # items of this round that got no answer at all
            "UPDATE batch_items SET status = 'failed', error = :err, updated_at = now() "
            "WHERE job_id = :id AND status = 'pending' AND round = :round"),
            dict(id=job.id, round=job.provider_round, err=f"no result from the provider batch ({batch.status})"))
        await JobStore(services.db).finish_if_complete(s, job.id)
        await s.execute(text(  # items left need another round: the next poll (or this one) sends it
            "UPDATE batch_jobs SET provider_batch_id = NULL, provider_status = NULL, provider_round = provider_round + 1 "
            "WHERE id = :id AND provider_batch_id = :b AND status <> 'done'"), dict(id=job.id, b=job.provider_batch_id))
        status = (await s.execute(text("SELECT status FROM batch_jobs WHERE id = :id"), {"id": job.id})).scalar()
    return True, status == "done"


@dataclass(frozen=True)
class _Answer:
    text: str | None  # None: no usable answer
    error: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    model: str | None = None
    cached_tokens: int = 0  # usage.prompt_tokens_details.cached_tokens


def _answer(rec: dict | None) -> _Answer:
    if rec is None:
        return _Answer(None, "no result from the provider batch")
    resp = rec.get("response") or {}
    body = resp.get("body") or {}
    if resp.get("status_code") == 200 and body.get("choices"):
        usage = body.get("usage") or {}
        return _Answer((body["choices"][0].get("message") or {}).get("content") or "",
                       prompt_tokens=int(usage.get("prompt_tokens") or 0),
                       completion_tokens=int(usage.get("completion_tokens") or 0), model=body.get("model"),
                       cached_tokens=int((usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0))
    code = (rec.get("error") or body.get("error") or {}).get("code") or resp.get("status_code")
    return _Answer(None, f"provider error: {code}")


async def _collect(services, job, content: str) -> None:
    """Group a batch's output and error lines per item and round, and collect each group."""
    answers: dict[tuple[int, int], dict[int, dict]] = {}
    for line in content.splitlines():
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
            seq, round_, piece = (int(x) for x in str(rec["custom_id"]).split(":"))
        except (ValueError, KeyError, TypeError):
            log.warning("provider batch %s: an unreadable output line was ignored", job.provider_batch_id)
            continue
        answers.setdefault((seq, round_), {})[piece] = rec
    for (seq, round_), pieces in answers.items():
        await _collect_item(services, job, seq, round_, pieces)


async def _collect_item(services, job, seq: int, round_: int, pieces: dict[int, dict]) -> None:
    """Reduce one item's answers for one round: done, failed, or pending at the next round."""
    async with services.db.session.begin() as s:
        item = (await s.execute(text(
            "SELECT item_id, text, stage_text, round, instruction FROM batch_items "
            "WHERE job_id = :job AND seq = :seq AND status = 'pending' AND round = :round FOR UPDATE"),
            dict(job=job.id, seq=seq, round=round_))).first()
        if item is None:
            return  # collected before (a repeated poll), or not this job's
        plan = _plan(services, item.instruction, job.model)
        step = plan.step(_stage(item))
        n = len(step.requests)
        answers = [_answer(pieces.get(i)) for i in range(n)]
        bad = next((i for i, a in enumerate(answers) if a.text is None), None)
        values = dict(status="failed", result=None, error=None, round=round_, stage=item.stage_text)
        if bad is not None:
            where = [f"round {round_ + 1}"] if round_ else []
            where += [f"part {bad + 1} of {n}"] if n > 1 else []
            values["error"] = (answers[bad].error + (f" ({', '.join(where)})" if where else ""))[:300]
        else:
            outcome = plan.advance(step, [a.text for a in answers])
            if isinstance(outcome, Stage):
                values.update(status="pending", round=outcome.round, stage=outcome.text)
            else:
                values.update(status="done", result=outcome)
        await s.execute(text(
            "UPDATE batch_items SET status = :status, result = :result, error = :error, round = :round, "
            "stage_text = :stage, attempts = attempts + 1, prompt_tokens = prompt_tokens + :pt, "
            "completion_tokens = completion_tokens + :ct, updated_at = now() WHERE job_id = :job AND seq = :seq"),
            dict(values, pt=sum(a.prompt_tokens for a in answers), ct=sum(a.completion_tokens for a in answers),
                 job=job.id, seq=seq))
    for i, a in enumerate(answers):  # after the commit: a crash in between never charges twice
        if a.text is not None:
            await services.llm.record_usage(
                CallInfo(PATTERN, platform="batch", tenant=job.id, channel=item.item_id[:200]),
                a.model or job.model, prompt_tokens=a.prompt_tokens, completion_tokens=a.completion_tokens,
                cached_tokens=a.cached_tokens, discount=BATCH_DISCOUNT, extra={"provider_batch": job.provider_batch_id, "custom_id": f"{seq}:{round_}:{i}"},
            )
