"""A mention while a large document is being added: time to the first sign of life and to
the first words, against the same mentions with nothing being added.

As a user would see it, on Slack HTTP mode: `aibot run` in its own process with the local
embedding model (the default), the fake Slack in this process, the fake model in a
process of its own (1.5 s streamed answers), the embedded PostgreSQL. The workspace's
knowledge base already holds a small document, so every mention first looks for a strong
hit there: its question is embedded on the same model that embeds the upload.

Each round:

- idle: `--mentions` signed `app_mention` events, one every `--every` seconds, each
  waited for;
- during: a ~`--kb`-KB Markdown document (Cranfield abstracts, one heading each) is shared
  with the bot in a DM, and while it is being added (until the bot's "Added ..." reply)
  the same mentions are sent at the same pace.

For each mention: status = event sent -> the first Slack call in its thread (the
"thinking" status, or the answer itself where there is none); first words = event sent ->
the first Slack call that shows answer text; both include the model's 0.3 s to its first
token. Medians over every mention of every round, and the time the document took to add.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/load_upload.py [--rounds 3] [--kb 719]

Loopback only; bounded in count and time.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402

from bench.load_slack import ModelProcess, bot_env, free_port, pct, signed, stop_process, wait_http  # noqa: E402
from bench.rag_cranfield import DEFAULT_DATA, parse_docs  # noqa: E402
from tests.fakes.slack_server import FakeSlack  # noqa: E402

TEAM, DM, USER = "T0FAKETEAM", "D024BE91L", "U2147483697"
TEXT = {"chat.postMessage", "chat.update", "chat.appendStream", "chat.stopStream", "chat.startStream"}
QUESTION = "what do the notes say about heat transfer in hypersonic boundary layers? (q{n}x)"


def document(data: Path, kb: int, salt: str) -> bytes:
    """A Markdown document of about `kb` KB: Cranfield abstracts under their titles."""
    parts, size = [f"# Aeronautics notes {salt}\n\n"], 0
    for num, (title, abstract) in sorted(parse_docs(data / "cran.all.1400").items()):
        if not abstract.strip():
            continue
        part = f"## {title or f'Abstract {num}'}\n\n{' '.join(abstract.split())}\n\n"
        parts.append(part)
        size += len(part.encode())
        if size >= kb * 1024:
            break
    return "".join(parts).encode()


def mention(n: int, ts: str) -> dict:
    return {
        "token": "x", "team_id": TEAM, "api_app_id": "A0BENCH", "type": "event_callback",
        "event_id": f"EvUp{n}", "event_time": int(time.time()), "authed_users": ["U0BOTUSER"],
        "event": {"type": "app_mention", "user": "U061F7AUR", "text": "<@U0BOTUSER> " + QUESTION.format(n=n),
                  "ts": ts, "channel": f"C{n % 50:08d}", "event_ts": ts},
    }


def file_share(info: dict, n: int) -> dict:
    ts = f"1700000100.{n:06d}"
    return {
        "token": "x", "team_id": TEAM, "api_app_id": "A0BENCH", "type": "event_callback",
        "event_id": f"EvFile{n}", "event_time": int(time.time()),
        "event": {"type": "message", "subtype": "file_share", "text": "for the knowledge base", "user": USER,
                  "ts": ts, "channel": DM, "event_ts": ts, "channel_type": "im", "upload": False,
                  "files": [{k: info[k] for k in ("id", "name", "title", "mimetype", "filetype", "size", "mode",
                                                   "is_external", "url_private", "url_private_download")}]},
    }


class Bench:
    def __init__(self, args, fake: FakeSlack, url: str) -> None:
        self.args, self.fake, self.url = args, fake, url
        self.offset = time.time() - time.monotonic()  # the fake's call times are monotonic
        self.n = 0

    async def post(self, session: aiohttp.ClientSession, payload: dict) -> float:
        self.fake.deliver(payload)
        body = json.dumps(payload)
        sent = time.time()
        async with session.post(self.url, data=body, headers=signed(body)) as resp:
            await resp.read()
        return sent

    def thread_calls(self, thread_ts: str, since: int):
        for call in self.fake.calls[since:]:
            if not call.ok:
                continue
            args = call.args
            thread = args.get("thread_ts")
            if thread is None and args.get("ts"):
                msg = self.fake.messages.get((args.get("channel", ""), args["ts"]))
                thread = msg.thread_ts if msg is not None else None
            if thread == thread_ts:
                yield call

    async def ask(self, session: aiohttp.ClientSession) -> dict:
        """One mention, waited for; when its thread first showed something, and words."""
        self.n += 1
        ts = f"1700000200.{self.n:06d}"
        since = len(self.fake.calls)
        sent = await self.post(session, mention(self.n, ts))
        status = words = None
        deadline = time.monotonic() + self.args.timeout
        while time.monotonic() < deadline and words is None:
            await asyncio.sleep(0.02)
            for call in self.thread_calls(ts, since):
                at = call.at + self.offset
                status = at if status is None else min(status, at)
                text = call.args.get("text") or call.args.get("markdown_text") or ""
                if call.method in TEXT and text.strip():
                    words = at
                    break
        return {"status_ms": None if status is None else (status - sent) * 1000,
                "words_ms": None if words is None else (words - sent) * 1000}

    async def mentions(self, session, *, until=None) -> list[dict]:
        out = []
        for _ in range(self.args.mentions):
            if until is not None and until():
                break
            start = time.monotonic()
            out.append(await self.ask(session))
            await asyncio.sleep(max(0.0, self.args.every - (time.monotonic() - start)))
        return out

    async def upload(self, session, name: str, data: bytes, n: int) -> tuple[asyncio.Event, list]:
        """Share `data` in a DM; an event set when the bot has replied about it."""
        info = self.fake.add_file(name=name, content=data, mimetype="text/markdown", filetype="markdown")
        since = len(self.fake.calls)
        done, took = asyncio.Event(), []
        sent = await self.post(session, file_share(info, n))

        async def watch() -> None:
            while True:
                for call in self.fake.calls[since:]:
                    if call.method == "chat.postMessage" and call.args.get("channel") == DM and name in (
                            call.args.get("text") or ""):
                        took.append(call.at + self.offset - sent)
                        done.set()
                        return
                await asyncio.sleep(0.1)

        task = asyncio.create_task(watch())
        done.task = task  # keep it alive
        return done, took


async def main(args) -> None:
    from bot.core import pgembed

    pg_dir = Path(tempfile.mkdtemp(prefix="aibot-upload-pg-"))
    server, database_url = await asyncio.to_thread(pgembed.start, pg_dir / "pg")
    model = ModelProcess(ttft=args.ttft, tps=args.tps, tokens=args.tokens)
    fake = await FakeSlack(page_size=200).start()
    port = free_port()
    data_dir = tempfile.mkdtemp(prefix="aibot-upload-")
    env = bot_env(args, port=port, slack=fake, model_url=model.base_url, database_url=database_url, data_dir=data_dir)
    env.pop("AIBOT_EMBEDDING_PROVIDER")  # the local model, the default
    env.update(dict(kv.split("=", 1) for kv in args.env))
    log = open(Path(data_dir) / "bot.log", "w")
    bot = subprocess.Popen([sys.executable, "-m", "bot.cli", "run"], cwd=ROOT, env=env, stderr=log)
    idle, during, took = [], [], []
    try:
        await wait_http(f"http://127.0.0.1:{port}/healthz", bot)
        bench = Bench(args, fake, f"http://127.0.0.1:{port}/slack/events")
        async with aiohttp.ClientSession() as session:
            # a knowledge base with one small document, the model loaded, connections warm
            seeded, _ = await bench.upload(session, "seed.md", document(args.data, 4, "seed"), 0)
            await asyncio.wait_for(seeded.wait(), args.timeout * 4)
            await bench.mentions(session)
            for r in range(args.rounds):
                idle += await bench.mentions(session)
                done, t = await bench.upload(session, f"notes-{r}.md", document(args.data, args.kb, f"r{r}"), r + 1)
                await asyncio.sleep(args.lead)  # downloaded, extracted, chunked: embedding under way
                got = await bench.mentions(session, until=done.is_set)
                during += got
                await asyncio.wait_for(done.wait(), args.timeout * 20)
                took += t
                print(f"round {r + 1}: document added in {t[0]:.1f} s; idle {summary(idle)}; "
                      f"during {summary(during)}", file=sys.stderr)
    finally:
        stop_process(bot)
        log.close()
        await fake.stop()
        model.stop()
        await asyncio.to_thread(pgembed.stop, server)
    print(report(args, idle, during, took))
    if args.json:
        Path(args.json).write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "idle": idle,
                                               "during": during, "took": took}, indent=1))


def summary(rows: list[dict]) -> str:
    return (f"status p50 {fmt(med(rows, 'status_ms'))} ms, first words p50 {fmt(med(rows, 'words_ms'))} / "
            f"max {fmt(pct([r['words_ms'] for r in rows if r['words_ms'] is not None], 1.0))} ms (n={len(rows)})")


def med(rows: list[dict], key: str) -> float | None:
    vals = [r[key] for r in rows if r[key] is not None]
    return statistics.median(vals) if vals else None


def fmt(v) -> str:
    return "-" if v is None else f"{v:.0f}"


def report(args, idle: list[dict], during: list[dict], took: list[float]) -> str:
    def row(name: str, rows: list[dict]) -> str:
        status = [r["status_ms"] for r in rows if r["status_ms"] is not None]
        words = [r["words_ms"] for r in rows if r["words_ms"] is not None]
        return (f"| {name} | {len(rows)} | {fmt(pct(status, 0.5))} / {fmt(pct(status, 0.9))} "
                f"| {fmt(pct(words, 0.5))} / {fmt(pct(words, 0.9))} / {fmt(pct(words, 1.0))} "
                f"| {sum(1 for r in rows if r['words_ms'] is None)} |")

    lines = [
        f"rounds={args.rounds} document={args.kb} KB (local embeddings) model: {args.ttft}s to the first token, "
        f"{args.ttft + args.tokens / args.tps:.1f}s in all; load average {os.getloadavg()[0]:.1f} at the end",
        "",
        "| mentions | n | status p50 / p90 ms | first words p50 / p90 / max ms | no words |",
        "|---|---|---|---|---|",
        row("idle", idle),
        row("during the upload", during),
        "",
        "document added in (s): " + ", ".join(f"{t:.1f}" for t in took),
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--kb", type=int, default=719, help="size of the document added, in KB")
    p.add_argument("--mentions", type=int, default=8, help="mentions per phase (fewer if the upload ends first)")
    p.add_argument("--every", type=float, default=1.5, help="seconds between mentions")
    p.add_argument("--lead", type=float, default=2.0, help="seconds after the upload before the first mention")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds a mention may take before it counts as lost")
    p.add_argument("--ttft", type=float, default=0.3)
    p.add_argument("--tokens", type=int, default=48)
    p.add_argument("--tps", type=float, default=40.0)
    p.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the Cranfield collection (cran.all.1400)")
    p.add_argument("--log-level", default="WARNING")
    p.add_argument("--env", action="append", default=[], help="extra KEY=VALUE for the bot")
    p.add_argument("--json", help="write every mention's figures here")
    asyncio.run(main(p.parse_args()))
