"""Discord gateway load: mentions at fixed rates against `aibot run`, over the gateway.

The Discord variant of bench/load_slack.py (whose fake model, process and measuring
helpers it shares). The bot is `python -m bot.cli run` in its own process with
DISCORD_BOT_TOKEN, discord.py pointed at the fake Discord (tests/fakes/discord_server.py,
in this process: REST, the gateway, a per-channel edit bucket of 5 per 5 s with real
X-RateLimit-* headers), on the embedded PostgreSQL; the openai SDK talks to the fake model
(its own process) which streams every answer in `--ttft + --tokens / --tps` seconds.

Per rate (msg/s), `rate * --seconds` MESSAGE_CREATE dispatches mentioning the bot are sent
open-loop across `--channels` channels of one guild; then the run waits until every
answer is final. Measured per step: complete % (the reply's text ends with the model's
last word), error replies and questions answered twice, first visible p50 (the model's
first token -> the bot's reply created), overhead p50/p99 (question sent -> final text,
minus the model's own time), CPU ms per message of the bot's process and its RSS.

Baseline, in the same run: a bare discord.py client (its own process, the same intents)
whose `on_message` does nothing, sent the same dispatches: the CPU any discord.py bot pays
to receive them.

    .venv/bin/python bench/load_discord.py --rates 5,10,20 --seconds 10 [--rounds 2]

Gateway events carry no acknowledgement, so there is no ack column. Discord documents a
global limit of 50 REST requests per second per bot token (raised on request for large
bots): an answer is one post and one or more edits, so one token carries about 20
progressive answers a second; the fake does not enforce that global limit. Medians over
rounds; loopback only; bounded in count and time.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from load_slack import (ModelProcess, answer_figures, cpu_seconds, fmt, median_of, rss_mb, settled,  # noqa: E402
                        stop_process, usage_count)

from tests.fakes.discord_server import FakeDiscord  # noqa: E402

BOT = f"<@{FakeDiscord.BOT_ID}>"


def baseline_client(api_url: str) -> None:
    """A bare discord.py client receiving the same messages (`--baseline-client`)."""
    import discord

    from adapters.discord.adapter import use_api_base, use_gateway_of

    use_api_base(api_url)
    intents = discord.Intents.default()
    intents.message_content = True
    client = discord.Client(intents=intents)

    @client.event
    async def on_message(message) -> None:
        return None

    async def main() -> None:
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, lambda: asyncio.ensure_future(client.close()))
        await client.login("baseline-token-not-real")
        await use_gateway_of(client)
        await client.connect()

    asyncio.run(main())


async def send_step(fake: FakeDiscord, rate: float, n: int, first_qid: int) -> dict[int, tuple[float, str]]:
    """`n` mentions at `rate`/s over the fake's load channels: {qid: (sent at, message id)}."""
    sent: dict[int, tuple[float, str]] = {}
    start = time.perf_counter()
    channels = fake.load_channels
    for i in range(n):
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        qid = first_qid + i
        at = time.time()
        m = await fake.send_message(f"{BOT} question q{qid}x please", channel=channels[qid % len(channels)])
        sent[qid] = (at, m["id"])
    return sent


def outcomes(fake: FakeDiscord, start_index: int, sent: dict[int, tuple[float, str]]) -> dict[int, dict]:
    """For each question: when its reply was created (first visible), when its text became
    final, whether an error was shown, and how many replies it got."""
    offset = time.time() - time.monotonic()
    by_msg = {mid: q for q, (_, mid) in sent.items()}
    out = {q: {"first": None, "final": None, "error": False, "answers": 0} for q in sent}
    reply_of: dict[str, int] = {}  # the bot's reply id -> question
    for m in fake.bot_messages():
        ref = str((m.get("message_reference") or {}).get("message_id"))
        if ref in by_msg:
            reply_of[m["id"]] = by_msg[ref]
    for call in fake.calls[start_index:]:
        if call.status != 200 or not isinstance(call.body, dict):
            continue
        content = call.body.get("content") or ""
        if call.method == "POST" and call.path.endswith("/messages"):
            q = by_msg.get(str((call.body.get("message_reference") or {}).get("message_id")))
            if q is None:
                continue
            out[q]["answers"] += 1
            if out[q]["first"] is None:
                out[q]["first"] = call.at + offset
        elif call.method == "PATCH" and "/messages/" in call.path:
            q = reply_of.get(call.path.rsplit("/", 1)[1])
            if q is None:
                continue
        else:
            continue
        if content.rstrip().endswith("end."):
            out[q]["final"] = call.at + offset
        elif "wrong" in content or "sorry" in content.lower():
            out[q]["error"] = True
    return out


async def run_step(args, fake: FakeDiscord, pid: int, model: ModelProcess | None, rate: float, first_qid: int) -> dict:
    n = int(min(rate * args.seconds, args.max_count))
    start_index = len(fake.calls)
    cpu0, wall0 = cpu_seconds(pid), time.monotonic()
    sent = await send_step(fake, rate, n, first_qid)
    res: dict = {"rate": rate, "n": n}
    if model is not None:
        seen = await settled(args, lambda: outcomes(fake, start_index, sent))
        res |= answer_figures(args, seen, {q: at for q, (at, _) in sent.items()}, model.timing(), n)
    else:
        await asyncio.sleep(1.0)
    cpu = cpu_seconds(pid) - cpu0
    res |= {"cpu_ms_per_msg": cpu * 1000 / n, "cpu_pct": 100.0 * cpu / (time.monotonic() - wall0), "rss_mb": rss_mb(pid)}
    return res


async def wait_sessions(fake: FakeDiscord, count: int, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while sum(s.identified.is_set() and not s.ws.closed for s in fake.sessions) < count:
        if proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode}")
        if time.monotonic() > deadline:
            raise TimeoutError("no gateway session")
        await asyncio.sleep(0.1)


async def one_round(args, r: int, database_url: str, model: ModelProcess) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {"baseline": [], "bot": []}
    rates = [float(x) for x in args.rates.split(",")]
    async with FakeDiscord(channels=args.channels) as fake:
        base = subprocess.Popen([sys.executable, __file__, "--baseline-client", fake.api_url], cwd=ROOT)
        try:
            await wait_sessions(fake, 1, base)
            for i, rate in enumerate(rates):
                out["baseline"].append(await run_step(args, fake, base.pid, None, rate, (r * 100 + 50 + i) * 10_000))
        finally:
            stop_process(base)
        await asyncio.sleep(0.5)
        data_dir = tempfile.mkdtemp(prefix="aibot-load-discord-")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "AIBOT_", "OPENAI_", "DISCORD_"))}
        env.update({"DISCORD_BOT_TOKEN": "load-token-not-real", "DISCORD_API_URL": fake.api_url,
                    "OPENAI_BASE_URL": model.base_url, "OPENAI_API_KEY": "bench", "DATABASE_URL": database_url,
                    "AIBOT_DATA_DIR": data_dir, "AIBOT_CACHE_TTL": "0", "AIBOT_LOG_LEVEL": args.log_level,
                    "AIBOT_EMBEDDING_PROVIDER": "openai", "HF_HUB_OFFLINE": "1"})
        env.update(dict(kv.split("=", 1) for kv in args.env))
        rows_before = await usage_count(database_url)
        log = open(Path(data_dir) / "bot.log", "w")
        bot = subprocess.Popen([sys.executable, "-m", "bot.cli", "run"], cwd=ROOT, env=env, stderr=log)
        try:
            await wait_sessions(fake, 1, bot)
            warm = await run_step(args, fake, bot.pid, model, 4, (r * 100 + 99) * 10_000)
            for i, rate in enumerate(rates):
                out["bot"].append(await run_step(args, fake, bot.pid, model, rate, (r * 100 + i) * 10_000))
                print(f"round {r + 1} {rate:g} msg/s: {out['bot'][-1]}", file=sys.stderr)
            out["limits"] = [{"edit_429s": fake.overruns}]
        finally:
            stop_process(bot)
            log.close()
    rows = await usage_count(database_url) - rows_before
    answered = round(sum(row["n"] * row["complete_pct"] / 100 for row in [warm, *out["bot"]]))
    out["ledger"] = [{"rows": rows, "answered": answered}]
    print(f"round {r + 1}: {rows} usage ledger rows for {answered} answers; {fake.overruns} edits answered 429",
          file=sys.stderr)
    errors = [ln for ln in (Path(data_dir) / "bot.log").read_text().splitlines() if " ERROR " in ln or "Traceback" in ln]
    if errors:
        print(f"bot log ({data_dir}/bot.log) has {len(errors)} error lines, e.g. {errors[0][:300]}", file=sys.stderr)
    return out


def report(args, rounds: list[dict[str, list[dict]]]) -> str:
    rates = [float(x) for x in args.rates.split(",")]
    lines = [f"discord gateway, rounds={args.rounds} seconds/step={args.seconds} channels={args.channels} "
             f"model={args.ttft + args.tokens / args.tps:.1f}s ({args.tokens} tokens)", "",
             "| rate msg/s | complete % | errors / twice | first visible p50 ms | overhead p50 / p99 ms "
             "| CPU ms/msg (bare discord.py) | bot CPU % of a core | RSS MB |",
             "|---|---|---|---|---|---|---|---|"]
    for i, rate in enumerate(rates):
        bot = [rd["bot"][i] for rd in rounds]
        base = [rd["baseline"][i] for rd in rounds]
        lines.append(
            f"| {rate:g} | {fmt(median_of(bot, 'complete_pct'), '.1f')} | {fmt(median_of(bot, 'errors'))} / "
            f"{fmt(median_of(bot, 'twice'))} | {fmt(median_of(bot, 'first_p50'))} "
            f"| {fmt(median_of(bot, 'overhead_p50'))} / {fmt(median_of(bot, 'overhead_p99'))} "
            f"| {fmt(median_of(bot, 'cpu_ms_per_msg'), '.1f')} ({fmt(median_of(base, 'cpu_ms_per_msg'), '.1f')}) "
            f"| {fmt(median_of(bot, 'cpu_pct'))} | {fmt(median_of(bot, 'rss_mb'))} |")
    lines += ["", "usage ledger rows written / answers, per round: "
              + ", ".join(f"{rd['ledger'][0]['rows']} / {rd['ledger'][0]['answered']}" for rd in rounds),
              "edits the fake answered 429 (per-channel bucket), per round: "
              + ", ".join(str(rd["limits"][0]["edit_429s"]) for rd in rounds if rd.get("limits"))]
    return "\n".join(lines)


async def main(args) -> None:
    from sqlalchemy.ext.asyncio import create_async_engine

    from bot.core import pgembed
    from bot.core.db import Database

    pg_dir = Path(tempfile.mkdtemp(prefix="aibot-load-pg-"))
    server, database_url = await asyncio.to_thread(pgembed.start, pg_dir / "pg")
    engine = create_async_engine(database_url)
    await Database.from_engine(engine).upgrade()
    await engine.dispose()
    model = ModelProcess(ttft=args.ttft, tps=args.tps, tokens=args.tokens)
    try:
        rounds = [await one_round(args, r, database_url, model) for r in range(args.rounds)]
    finally:
        model.stop()
        await asyncio.to_thread(pgembed.stop, server)
    print(report(args, rounds))
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "rounds": rounds}, indent=1))


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--baseline-client":
        baseline_client(sys.argv[2])
        sys.exit(0)
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rates", default="5,10,20", help="comma-separated msg/s, one step each")
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--max-count", type=int, default=1200)
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--channels", type=int, default=200, help="text channels the mentions are spread over")
    p.add_argument("--ttft", type=float, default=0.3)
    p.add_argument("--tokens", type=int, default=48)
    p.add_argument("--tps", type=float, default=40.0)
    p.add_argument("--grace", type=float, default=60.0)
    p.add_argument("--log-level", default="WARNING")
    p.add_argument("--env", action="append", default=[], help="extra KEY=VALUE for the bot")
    p.add_argument("--json")
    asyncio.run(main(p.parse_args()))
