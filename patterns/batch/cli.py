"""The batch pattern on the command line.

`aibot batch submit FILE.jsonl` and `aibot batch status JOB_ID`: bulk summarize jobs. A
submitted job is stored and processed by the running bot's worker (`aibot run`); `--wait`
processes it right here instead and prints the final status.

`aibot digest list|now|off`: the daily digest schedules. `now -` reads a chat transcript
from stdin (one message per line, `name: text`) and prints its digest, through the same
router handler as a scheduled digest (the internal `digest-run` command, whose
conversation's history is the transcript). A digest of a live Slack/Discord channel
needs the running bot: type `/digest now` there.
"""
from __future__ import annotations

import json
import sys
from datetime import timedelta
from pathlib import Path

from bot.core.errors import UserError, user_message_for
from bot.core.inputs import read_text
from bot.core.messages import HistoryItem, Incoming, utcnow
from bot.core.surface import Limits
from patterns.batch import Batch, times
from patterns.batch.digest import DigestReply
from patterns.batch.jobs import JobStore, parse_jsonl
from patterns.batch.scheduler import RUN_COMMAND
from patterns.batch.settings import BatchSettings


def add(cli) -> None:
    add_batch(cli)
    add_digest(cli)


def add_batch(cli) -> None:
    p = cli.add("batch", help="bulk summarize jobs: submit a JSONL file, check a job")
    bsub = p.add_subparsers(dest="batch_command", required=True, metavar="ACTION")
    s = bsub.add_parser("submit", help="submit FILE.jsonl (one {\"id\", \"text\", \"instruction\"} per line; - for stdin)")
    s.add_argument("file")
    s.add_argument("--provider", action="store_true", help="send it through the OpenAI Batch API (half price, up to 24 h)")
    s.add_argument("--wait", action="store_true", help="process the job here and print the result")
    s.add_argument("--json", action="store_true", help="machine-readable output")
    s.set_defaults(run=submit)
    t = bsub.add_parser("status", help="a job's status, counts, and results when done")
    t.add_argument("job_id")
    t.add_argument("--json", action="store_true", help="machine-readable output")
    t.set_defaults(run=status)


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


async def submit(args, rt) -> int:
    settings = rt.settings
    limit = settings.max_summarize_chars * 2
    data = _read(args.file, limit)
    items = parse_jsonl(data, max_items=settings.section(BatchSettings).max_items,
                        max_chars=settings.max_summarize_chars, cut_at=limit if len(data) > limit else None)
    async with rt.open() as bot:
        jobs = JobStore(bot.services.db)
        job_id = await jobs.create(items, model=settings.fast_model, mode="provider" if args.provider else "direct",
                                   source=args.file)
        if args.provider:
            from patterns.batch.provider import submit as send_to_provider

            await send_to_provider(bot.services, job_id)  # if this fails, the running bot's worker retries
        if args.wait:
            if args.provider:
                raise UserError("--wait works for direct jobs; provider batches take up to 24 h (check with `aibot batch status`).")
            await bot.feature(Batch).worker.run_until_idle(job_id)
            _print(await jobs.status(job_id), args.json)
            return 0
    if args.json:
        print(json.dumps({"job_id": job_id, "status": "queued", "total": len(items)}))
    else:
        print(f"{job_id}: queued, {len(items)} items. The running bot processes it; check with `aibot batch status {job_id}`.")
    return 0


async def status(args, rt) -> int:
    async with rt.open() as bot:
        found = await JobStore(bot.services.db).status(args.job_id)
    if found is None:
        raise UserError(f"There is no job {args.job_id[:60]!r}.")
    _print(found, args.json)
    return 0


def add_digest(cli) -> None:
    p = cli.add("digest", help="daily digest schedules: list, now, off")
    verbs = p.add_subparsers(dest="verb", required=True, metavar="VERB")
    ls = verbs.add_parser("list", help="every digest schedule")
    ls.add_argument("--json", action="store_true", help="machine-readable output")
    ls.set_defaults(run=run_list)
    now = verbs.add_parser("now", help="digest a transcript from stdin (-), one `name: text` message per line")
    now.add_argument("source", nargs="?", help="- to read a chat transcript from stdin")
    now.add_argument("--platform", choices=cli.platforms, help="a live channel's platform (needs the running bot)")
    now.add_argument("--channel")
    now.add_argument("--workspace")
    now.set_defaults(run=run_now)
    off = verbs.add_parser("off", help="remove a channel's digest schedule")
    off.add_argument("--platform", required=True, choices=cli.platforms)
    off.add_argument("--channel", required=True)
    off.add_argument("--workspace", default=None, help="Slack workspace / Discord guild id (default: the only one)")
    off.set_defaults(run=run_off)


def _row(s, now) -> dict:
    nxt = times.following(s.spec, now).astimezone(s.spec.zone)
    return {
        "platform": s.platform, "workspace": s.tenant, "channel": s.channel, "time": f"{s.spec.at:%H:%M}",
        "zone": s.spec.tz, "weekdays": s.spec.weekdays, "last_period": s.last_period, "next_run": nxt.isoformat(),
    }


async def run_list(args, rt) -> int:
    async with rt.open() as bot:
        rows = [_row(s, utcnow()) for s in await bot.feature(Batch).digests.store.all()]
    if args.json:
        print(json.dumps(rows, indent=2))
    elif not rows:
        print("No digest scheduled.")
    else:
        for r in rows:
            days = "weekdays" if r["weekdays"] else "daily"
            print(f"{r['platform']}/{r['workspace']}/{r['channel']}  {r['time']} {r['zone']} {days}  "
                  f"last {r['last_period'] or '-'}  next {r['next_run']}")
    return 0


async def run_off(args, rt) -> int:
    async with rt.open() as bot:
        store = bot.feature(Batch).digests.store
        matches = [s for s in await store.all() if s.platform == args.platform and s.channel == args.channel
                   and (args.workspace is None or s.tenant == args.workspace)]
        if not matches:
            print(f"There is no digest scheduled for {args.platform} channel {args.channel}.", file=sys.stderr)
            return 1
        if len(matches) > 1:
            print("aibot: that channel has schedules in several workspaces; pass --workspace.", file=sys.stderr)
            return 2
        s = matches[0]
        await store.remove(platform=s.platform, tenant=s.tenant, channel=s.channel)
    print(f"Daily digest off for {s.platform}/{s.tenant}/{s.channel}.")
    return 0


class _Transcript:
    """A conversation whose history is the stdin transcript and whose posts are printed."""

    limits = Limits()

    def __init__(self, items: list[HistoryItem]) -> None:
        self.items = items
        self.posted: list[str] = []

    async def post(self, text: str, *, ephemeral: bool = False) -> str:
        self.posted.append(text)
        return str(len(self.posted))

    async def edit(self, message_id: str, text: str) -> None:
        self.posted[int(message_id) - 1] = text

    async def history(self, *, limit: int, since=None, scope="channel") -> list[HistoryItem]:
        return self.items[-limit:]

    async def download(self, attachment) -> bytes:
        raise UserError("A transcript has no attachments.")


def parse_transcript(text: str, now) -> list[HistoryItem]:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    items = []
    for i, line in enumerate(lines):
        user, sep, body = line.partition(":")
        if not sep or not user.strip() or len(user) > 80 or not body.strip():
            user, body = "someone", line
        items.append(HistoryItem(user=user.strip(), text=body.strip(), ts=now - timedelta(seconds=len(lines) - i)))
    return items


async def run_now(args, rt) -> int:
    if args.platform is not None and args.source is None:
        print(f"aibot: the command line cannot reach the running {args.platform} bot; "
              f"type /digest now in that channel instead.", file=sys.stderr)
        return 1
    if args.source != "-":
        print("aibot: digest now takes - (a transcript on stdin); for a live channel type /digest now there.",
              file=sys.stderr)
        return 2
    text = read_text("-", rt.settings.max_summarize_chars)
    now = utcnow()
    conv = _Transcript(parse_transcript(text, now))
    until = now + timedelta(seconds=1)
    msg = Incoming(platform="cli", tenant="cli", channel="stdin", user="cli", user_name="cli", text="",
                   command=RUN_COMMAND, id="digest:stdin", ts=now, unattended=True,
                   options={"until": until.isoformat(), "tz": "UTC"})
    async with rt.open() as bot:
        handled = await bot.router.dispatch(msg, conv)
    if handled.error is not None or not isinstance(handled.result, DigestReply):
        print("aibot: " + (user_message_for(handled.error) if handled.error else "the digest failed."), file=sys.stderr)
        return 1
    print("\n".join(conv.posted))
    return 0
