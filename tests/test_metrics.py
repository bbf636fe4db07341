"""`/metrics` is prometheus-client's exposition of what this process did: answers,
first visible text, model calls by pattern and model, cache hits by kind, platform API
calls and 429s by method, in-flight answers, queue depth, the database pool. A scrape
reads no usage ledger, labels carry no user or channel ids, several worker processes
report their sum (PROMETHEUS_MULTIPROC_DIR), and JSON logs tie an event to its model
calls by request id."""
from __future__ import annotations

import io
import json
import logging
import os
import re
import subprocess
import sys

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import event

from adapters.slack.adapter import build_client
from adapters.slack.settings import SlackSettings
from bot.core import logs
from bot.core.http import HttpServer
from bot.core.metrics import METRICS
from tests.fakes.slack_server import BOT_TOKEN, FakeSlack


@pytest.fixture
async def scrape(app):
    server = HttpServer(app.services, host="127.0.0.1", port=0)
    await server.start()
    async with aiohttp.ClientSession(f"http://127.0.0.1:{server.bound_port}") as http:

        async def get() -> dict[tuple, float]:
            async with http.get("/metrics") as r:
                assert r.status == 200 and r.content_type == "text/plain"
                body = await r.text()
            get.text = body
            return {(s.name, tuple(sorted(s.labels.items()))): s.value
                    for fam in text_string_to_metric_families(body) for s in fam.samples}

        yield get
    await server.stop()


def value(samples: dict, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_a_streamed_answer_is_counted_timed_and_its_model_call_labelled_by_pattern(app, bot, scrape, fake_llm):
    before = await scrape()
    fake_llm.enqueue("The release is on Friday.")
    assert await bot.send("@aibot when is the release?") == ["The release is on Friday."]
    after = await scrape()
    model = app.settings.chat_model
    assert value(after, "aibot_answers_total", platform="test", route="answer", outcome="ok") - \
        value(before, "aibot_answers_total", platform="test", route="answer", outcome="ok") == 1
    assert value(after, "aibot_answer_seconds_count", platform="test", route="answer") - \
        value(before, "aibot_answer_seconds_count", platform="test", route="answer") == 1
    assert value(after, "aibot_first_visible_seconds_count", platform="test") - \
        value(before, "aibot_first_visible_seconds_count", platform="test") == 1
    assert value(after, "aibot_model_calls_total", pattern="streaming", model=model, outcome="ok") - \
        value(before, "aibot_model_calls_total", pattern="streaming", model=model, outcome="ok") == 1
    assert value(after, "aibot_model_tokens_total", pattern="streaming", model=model, kind="completion") > \
        value(before, "aibot_model_tokens_total", pattern="streaming", model=model, kind="completion")
    # histograms, with buckets, and every family explained
    assert value(after, "aibot_model_seconds_bucket", pattern="streaming", model=model, le="+Inf") >= 1
    assert "# HELP aibot_answers_total " in scrape.text and "# TYPE aibot_model_seconds histogram" in scrape.text
    assert value(after, "aibot_answers_in_flight", platform="test") == 0
    # bounded labels: no user, channel or workspace id anywhere
    for user_side in ('"U1"', '"C1"', '"T1"', "alice"):
        assert user_side not in scrape.text


async def test_exact_cache_hits_and_misses_are_counted_by_kind(app, scrape, fake_llm):
    from bot.core.messages import CallInfo

    before = await scrape()
    fake_llm.enqueue("Paris.")
    call = CallInfo("api_wrapper", "test", "T1", "C1", "U1")
    messages = [{"role": "user", "content": "capital of France?"}]
    first = await app.services.llm.complete(messages, call=call, cache=True)
    second = await app.services.llm.complete(messages, call=call, cache=True)
    assert (first.cached, second.cached) == (False, True)
    after = await scrape()
    assert value(after, "aibot_cache_lookups_total", kind="exact", result="miss") - \
        value(before, "aibot_cache_lookups_total", kind="exact", result="miss") == 1
    assert value(after, "aibot_cache_lookups_total", kind="exact", result="hit") - \
        value(before, "aibot_cache_lookups_total", kind="exact", result="hit") == 1


async def test_a_scrape_reads_no_usage_ledger_and_reports_the_pool(app, scrape):
    statements: list[str] = []

    def seen(conn, cursor, statement, *args):
        statements.append(statement)

    engine = app.services.db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", seen)
    try:
        samples = await scrape()
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    assert not [s for s in statements if "usage" in s.lower()], statements
    assert ("aibot_db_pool_connections", (("state", "idle"),)) in samples
    assert ("aibot_db_pool_connections", (("state", "in_use"),)) in samples


async def test_slack_api_calls_and_429s_are_counted_by_method():
    fake = await FakeSlack().start()
    try:
        settings = SlackSettings.load(env_file=None, bot_token=BOT_TOKEN, app_token="xapp-1", api_url=fake.base_url)
        client = build_client(settings)
        calls = METRICS.platform_calls.labels("slack", "chat.postMessage", "2xx")
        limited = METRICS.platform_rate_limited.labels("slack", "chat.postMessage")
        ok_before, limited_before = calls._value.get(), limited._value.get()
        fake.rate_limit("chat.postMessage", times=1, retry_after=1)
        await client.chat_postMessage(channel="C1", text="hello")
        assert fake.rate_limited == 1  # the 429 was retried by the SDK's own handler, as before
        assert calls._value.get() - ok_before == 1
        assert limited._value.get() - limited_before == 1
    finally:
        await fake.stop()


def test_several_processes_report_their_sum_in_multiprocess_mode(tmp_path):
    """Workers sharing a port: each writes to PROMETHEUS_MULTIPROC_DIR, any one's
    exposition has everyone's counts."""
    env = dict(os.environ, PROMETHEUS_MULTIPROC_DIR=str(tmp_path))
    count = ("from bot.core.metrics import METRICS\n"
             "METRICS.answers.labels('slack', 'answer', 'ok').inc()\n"
             "METRICS.in_flight.labels('slack').inc()\n")
    for _ in range(2):
        subprocess.run([sys.executable, "-c", count], env=env, check=True, timeout=60)
    expose = ("import asyncio\nfrom bot.core.metrics import METRICS\n"
              "print(asyncio.run(METRICS.exposition()).decode())")
    out = subprocess.run([sys.executable, "-c", expose], env=env, check=True, timeout=60, capture_output=True,
                         text=True).stdout
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for fam in text_string_to_metric_families(out) for s in fam.samples}
    assert value(samples, "aibot_answers_total", platform="slack", route="answer", outcome="ok") == 2


async def test_json_logs_tie_a_platform_event_to_its_model_calls(bot, fake_llm):
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.formatter("json"))
    handler.addFilter(logs.RequestIdFilter())
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        fake_llm.enqueue("Hi there.")
        await bot.send("@aibot hello")
        fake_llm.enqueue("Again.")
        await bot.send("@aibot hello again")
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    events = [ln for ln in lines if ln.get("event") == "message"]
    calls = [ln for ln in lines if ln.get("event") == "model_call"]
    assert len(events) == 2 and len(calls) == 2
    assert [c["request_id"] for c in calls] == [e["request_id"] for e in events]
    assert events[0]["request_id"] != events[1]["request_id"] and events[0]["request_id"].startswith("test-")
    assert calls[0]["pattern"] == "streaming" and calls[0]["outcome"] == "ok" and "latency_ms" in calls[0]
    assert all(ln["level"] and ln["logger"] and ln["time"] for ln in lines)


async def test_discord_rest_calls_and_429s_are_counted_by_route_without_ids(app, fake_llm):
    from tests.discord_env import BOT, connect, settle
    from tests.fakes.discord_server import FakeDiscord

    route = "PATCH channels/:id/messages/:id"
    before_429 = METRICS.platform_rate_limited.labels("discord", route)._value.get()
    before_ok = METRICS.platform_calls.labels("discord", "POST channels/:id/messages", "2xx")._value.get()
    async with FakeDiscord() as fake:
        adapter = await connect(app, fake)
        try:
            from tests.fakes.openai_server import Script

            fake_llm.enqueue(Script(text=" ".join(f"word{i}" for i in range(60)), tokens_per_second=40))
            fake.fail_next("PATCH", r"^/channels/\d+/messages/\d+$", retry_after=0.3, times=1)
            await fake.send_message(f"{BOT} count for me")
            await settle(app, fake)
        finally:
            await adapter.stop()
    assert METRICS.platform_rate_limited.labels("discord", route)._value.get() - before_429 == 1
    assert METRICS.platform_calls.labels("discord", "POST channels/:id/messages", "2xx")._value.get() - before_ok >= 1
    labels = {s.labels.get("method", "") for fam in METRICS.registry.collect() for s in fam.samples}
    assert not [m for m in labels if re.search(r"\d{5,}", m)], labels  # no snowflake ids in a label
