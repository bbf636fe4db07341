"""`aibot batch submit FILE.jsonl` and `aibot batch status JOB_ID`: bulk summarize jobs.

A submitted job is stored and processed by the running bot's worker (`aibot run`);
`--wait` processes it right here instead and prints the final status.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from bot.app import App
from bot.core.errors import UserError
from patterns.batch.jobs import JobStore, parse_jsonl


def add_parser(sub) -> None:
    p = sub.add_parser("batch", help="bulk summarize jobs: submit a JSONL file, check a job")
    bsub = p.add_subparsers(dest="batch_command", required=True, metavar="ACTION")
    s = bsub.add_parser("submit", help="submit FILE.jsonl (one {\"id\", \"text\", \"instruction\"} per line; - for stdin)")
    s.add_argument("file")
    s.add_argument("--provider", action="store_true", help="send it through the OpenAI Batch API (half price, up to 24 h)")
    s.add_argument("--wait", action="store_true", help="process the job here and print the result")
    s.add_argument("--json", action="store_true", help="machine-readable output")
    s.set_defaults(func=submit)
    t = bsub.add_parser("status", help="a job's status, counts, and results when done")
    t.add_argument("job_id")
    t.add_argument("--json", action="store_true", help="machine-readable output")
    t.set_defaults(func=status)


def _read(path: str, limit: int) -> bytes:
    try:
        if path == "-":
            return sys.stdin.buffer.read(limit + 1)
        with Path(path).open("rb") as fh:
            return fh.read(limit + 1)
    except OSError as exc:
        raise UserError(f"Cannot read {path}: {exc.strerror or exc}.") from None


def _print(found: dict, as_json: bool) -> None:
    if as_json:
        print(json.dumps(found, indent=2, ensure_ascii=False))
        return
    c = found["counts"]
    print(f"{found['job_id']}: {found['status']} ({c['done']} done, {c['failed']} failed, {c['pending']} pending of {found['total']})")
    for r in found.get("results", []):
        print(f"- {r['id']}: {r.get('summary') if r['status'] == 'done' else 'FAILED: ' + str(r.get('error'))}")


async def submit(args, settings) -> int:
    data = _read(args.file, settings.max_summarize_chars * 2)
    items = parse_jsonl(data, max_items=settings.batch_max_items, max_chars=settings.max_summarize_chars)
    async with await App.open(settings) as app:
        jobs = JobStore(app.services.db)
        job_id = await jobs.create(items, model=settings.fast_model, mode="provider" if args.provider else "direct",
                                   source=args.file)
        if args.provider:
            from patterns.batch.provider import submit as send_to_provider

            await send_to_provider(app.services, job_id)  # if this fails, the running bot's worker retries
        if args.wait:
            from patterns.batch.worker import BatchWorker

            if args.provider:
                raise UserError("--wait works for direct jobs; provider batches take up to 24 h (check with `aibot batch status`).")
            await BatchWorker(services=app.services).run_until_idle(job_id)
            _print(await jobs.status(job_id), args.json)
            return 0
    if args.json:
        print(json.dumps({"job_id": job_id, "status": "queued", "total": len(items)}))
    else:
        print(f"{job_id}: queued, {len(items)} items. The running bot processes it; check with `aibot batch status {job_id}`.")
    return 0


async def status(args, settings) -> int:
    async with await App.open(settings) as app:
        found = await JobStore(app.services.db).status(args.job_id)
    if found is None:
        raise UserError(f"There is no job {args.job_id[:60]!r}.")
    _print(found, args.json)
    return 0
