"""Slack adapter: ack latency, first-token-to-first-visible-update, Web API calls.

Everything real but Slack and the model: the bot composed as `aibot run` does, slack-bolt
in Socket Mode and slack_sdk against the fake Slack (tests/fakes/slack_server.py), the
openai SDK against the fake model streaming at a fixed rate (`--ttft`, `--tps`).

Per round:
- acks: `--commands` slash commands (`/help`) sent back to back; ack latency = time from
  the fake sending the envelope to receiving its ack. Baseline, in the same process: a
  bare bolt app whose listener only calls `ack()`, on the same fake.
- answers: `--answers` mentions answered one after another, with the native stream and
  with the post+edit fallback (a workspace refusing chat.startStream). For each: time
  from the model's first token (the fake model sends it `ttft` after the request) to the
  first Slack call that shows text; Web API calls per answer (all methods); writes per
  0.5 s of streaming per message (target ≤ 1).
- load: `--concurrent` mentions at once (fallback path): calls per 0.5 s per message.

Medians over rounds of per-round medians (p99 for acks).

    .venv/bin/python bench/slack_stream.py [--rounds 3] [--answers 8] [--commands 50]
"""
from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pydantic import SecretStr  # noqa: E402
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler  # noqa: E402
from slack_bolt.app.async_app import AsyncApp  # noqa: E402

from adapters.slack.adapter import SlackAdapter  # noqa: E402
from adapters.slack.settings import SlackSettings  # noqa: E402
from bot.app import App  # noqa: E402
from bot.core.settings import Settings  # noqa: E402
from tests.fakes.openai_server import FakeOpenAI, Script  # noqa: E402
from tests.fakes.slack_server import APP_TOKEN, BOT_TOKEN, FakeSlack  # noqa: E402
from tests.slack_support import load  # noqa: E402

WRITES = {"chat.postMessage", "chat.update", "chat.startStream", "chat.appendStream", "chat.stopStream"}
VISIBLE = {"chat.postMessage", "chat.update", "chat.appendStream", "chat.stopStream"}


def p99(values: list[float]) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(0.99 * (len(values) - 1))))]


class Bench:
    def __init__(self, args) -> None:
        self.args = args
        self.seq = 0

    def next_id(self) -> int:
        self.seq += 1
        return self.seq

    async def acks(self, fake: FakeSlack, n: int) -> list[float]:
        payload = load("slash_command")
        envs = []
        for i in range(n):
            body = {**payload, "command": "/help", "text": "", "response_url": fake.response_url(),
                    "trigger_id": f"bench-{self.next_id()}"}
            envs.append(await fake.send_command(body))
        out = []
        for env_id in envs:
            env = await fake.wait_acked(env_id, timeout=30)
            out.append((env.acked_at - env.sent_at) * 1000)
        return out

    async def baseline_acks(self, fake: FakeSlack, settings: SlackSettings, n: int) -> list[float]:
        adapter = SlackAdapter(settings=settings)  # only for its configured client
        bare = AsyncApp(client=adapter.client, ignoring_self_events_enabled=False)

        @bare.command("/help")
        async def only_ack(ack):
            await ack()

        handler = AsyncSocketModeHandler(bare, APP_TOKEN)
        await handler.connect_async()
        await fake.wait_connected()
        try:
            return await self.acks(fake, n)
        finally:
            await handler.close_async()
            await fake.wait_for(lambda: not fake._ws, timeout=10)

    async def answer(self, fake: FakeSlack, llm: FakeOpenAI, adapter: SlackAdapter, app: App) -> dict:
        i = self.next_id()
        ts = f"1600000000.{i:06d}"
        channel = f"C0BENCH{i}"
        before_calls, before_llm = len(fake.calls), len(llm.requests)
        target = adapter.handled + 1
        await fake.send_event(load("app_mention", event_id=f"EvBench{i}", ts=ts, channel=channel,
                                   text=f"<@U0BOTUSER> question {i}"))
        await fake.wait_for(lambda: adapter.handled >= target, timeout=30)
        await adapter.idle()
        calls = fake.calls[before_calls:]
        mine = [c for c in calls if c.args.get("channel") == channel or c.args.get("channel_id") == channel]
        request = llm.requests[before_llm]
        first_token_wall = request.at + self.args.ttft
        offset = time.time() - time.monotonic()
        first_visible = next(c for c in mine if c.method in VISIBLE and (c.args.get("text") or c.args.get("markdown_text") or c.method == "chat.update"))
        writes = [c for c in mine if c.method in WRITES]
        return {
            "first_visible_ms": (first_visible.at + offset - first_token_wall) * 1000,
            "calls": len(mine),
            "writes": len(writes),
            "writes_per_half_s": len(writes) / (self.stream_seconds / 0.5),
        }

    @property
    def stream_seconds(self) -> float:
        return self.args.tokens / self.args.tps

    async def concurrent(self, fake, adapter, app, n: int) -> float:
        before = len(fake.calls)
        target = adapter.handled + n
        base = self.next_id()
        for k in range(n):
            ts = f"1610000000.{base * 1000 + k:09d}"
            await fake.send_event(load("app_mention", event_id=f"EvLoad{base}-{k}", ts=ts, channel=f"C0LOAD{k % 5}",
                                       text=f"<@U0BOTUSER> question {k}"), )
        await fake.wait_for(lambda: adapter.handled >= target, timeout=60)
        await adapter.idle()
        writes = [c for c in fake.calls[before:] if c.method in WRITES]
        return len(writes) / n / (self.stream_seconds / 0.5)

    async def run(self) -> dict:
        a = self.args
        answer_text = " ".join(f"word{i}" for i in range(a.tokens - 1)) + " end."
        llm = FakeOpenAI(ttft=a.ttft, tokens_per_second=a.tps,
                         responder=lambda body: Script(text=answer_text)).start()
        fake = await FakeSlack().start()
        settings = Settings(
            _env_file=None, openai_base_url=llm.base_url, openai_api_key="bench",
            data_dir=Path(tempfile.mkdtemp(prefix="aibot-bench-")), database_url=a.database_url, cache_ttl_seconds=0,
        )
        slack = SlackSettings.load(env_file=None, bot_token=SecretStr(BOT_TOKEN), app_token=SecretStr(APP_TOKEN),
                                   api_url=fake.base_url)
        res: dict[str, list] = {k: [] for k in ("ack_p99", "ack_base_p99", "native_first", "native_calls",
                                              "native_rate", "edit_first", "edit_calls", "edit_rate", "load_rate")}
        async with await App.open(settings) as app:
            for r in range(a.rounds):
                res["ack_base_p99"].append(p99(await self.baseline_acks(fake, slack, a.commands)))
                adapter = SlackAdapter(settings=slack)
                await app.attach(adapter)
                await fake.wait_connected()
                try:
                    res["ack_p99"].append(p99(await self.acks(fake, a.commands)))
                    await adapter.idle()
                    native = [await self.answer(fake, llm, adapter, app) for _ in range(a.answers)]
                    fake.fail("chat.startStream", "not_allowed")
                    adapter.workspace("T0FAKETEAM").can_stream = True  # ask again: the first answer finds out
                    edit = [await self.answer(fake, llm, adapter, app) for _ in range(a.answers)]
                    res["load_rate"].append(await self.concurrent(fake, adapter, app, a.concurrent))
                    fake._failures.clear()
                finally:
                    await adapter.stop()
                    await fake.wait_for(lambda: not fake._ws, timeout=10)
                for name, runs in (("native", native), ("edit", edit)):
                    res[f"{name}_first"].append(statistics.median(x["first_visible_ms"] for x in runs))
                    res[f"{name}_calls"].append(statistics.median(x["calls"] for x in runs))
                    res[f"{name}_rate"].append(statistics.median(x["writes_per_half_s"] for x in runs))
                print(f"round {r + 1}/{a.rounds} done", file=sys.stderr)
        await fake.stop()
        llm.stop()
        return {k: statistics.median(v) for k, v in res.items()} | {"rounds": res}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--answers", type=int, default=8, help="sequential answers per mode and round")
    parser.add_argument("--commands", type=int, default=50, help="slash commands per round (ack latency)")
    parser.add_argument("--concurrent", type=int, default=20, help="answers at once in the load case")
    parser.add_argument("--ttft", type=float, default=0.3, help="fake model: seconds to the first token")
    parser.add_argument("--tps", type=float, default=40.0, help="fake model: tokens per second")
    parser.add_argument("--tokens", type=int, default=120, help="tokens per answer")
    parser.add_argument("--database-url", default=None, help="default: the embedded server in a temp dir")
    args = parser.parse_args()
    out = asyncio.run(Bench(args).run())
    s = args.tokens / args.tps
    print(f"\nfake model: ttft {args.ttft * 1000:.0f} ms, {args.tps:.0f} tokens/s, {args.tokens} tokens (~{s:.1f} s of streaming)")
    print("| measure | native stream | post + edits |")
    print("|---|---|---|")
    print(f"| first token → first visible Slack update (median) | {out['native_first']:.0f} ms | {out['edit_first']:.0f} ms |")
    print(f"| Web API calls per answer (median, all methods) | {out['native_calls']:.0f} | {out['edit_calls']:.0f} |")
    print(f"| writes per 0.5 s of streaming per message, 1 answer | {out['native_rate']:.2f} | {out['edit_rate']:.2f} |")
    print(f"| writes per 0.5 s per message, {args.concurrent} answers at once | | {out['load_rate']:.2f} |")
    print(f"\nslash-command ack latency p99: {out['ack_p99']:.1f} ms (baseline bare bolt ack: "
          f"{out['ack_base_p99']:.1f} ms, ratio {out['ack_p99'] / out['ack_base_p99']:.2f}x)")


if __name__ == "__main__":
    main()
