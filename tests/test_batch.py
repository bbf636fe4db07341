"""Bulk summarize jobs: validation, the worker (429s, restarts), the OpenAI Batch API
path against the fake server, the HTTP API and the CLI."""
from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import aiohttp
import pytest
from pydantic import SecretStr
from sqlalchemy import text

from bot.core.errors import UserError
from bot.core.http import HttpServer
from bot.core.pricing import PriceTable
from patterns.batch.jobs import Item, JobStore, parse_jsonl
from patterns.batch.provider import poll_provider_jobs, submit
from patterns.batch import Batch
from patterns.batch.worker import BatchWorker, Budget
from tests.fakes.openai_server import Script

FIXTURES = Path(__file__).parent / "fixtures" / "batch"


def worker(app, **kw) -> BatchWorker:
    """A bulk-job worker on the composed bot's batch settings (as its own worker is)."""
    return BatchWorker(services=app.services, settings=app.feature(Batch).settings, **kw)
LIMITS = dict(max_items=100, max_chars=10_000)


def items(n: int) -> list[Item]:
    return [Item(f"item-{i}", f"Report {i}: the team shipped feature {i} and fixed {i * 3} bugs.", "Summarize in one line.")
            for i in range(n)]


async def job_rows(app, job_id: str) -> list:
    async with app.services.db.session() as s:
        return (await s.execute(text(
            "SELECT item_id, status, result, attempts FROM batch_items WHERE job_id = :j ORDER BY seq"), {"j": job_id})).all()


async def ledger(app) -> list:
    await app.services.ledger.flush()  # rows are written behind the answer
    async with app.services.db.session() as s:
        return (await s.execute(text(
            "SELECT pattern, channel AS item, outcome, cache_hit, cost_usd, prompt_tokens, completion_tokens, model "
            "FROM usage ORDER BY id"))).all()


def paid(rows) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in rows:
        if r.outcome == "ok" and not r.cache_hit:
            out[r.item] = out.get(r.item, 0) + 1
    return out


# ----------------------------------------------------------------------------- input


def test_bad_lines_are_each_named_and_nothing_is_accepted():
    with pytest.raises(UserError) as err:
        parse_jsonl((FIXTURES / "bad.jsonl").read_bytes(), **LIMITS)
    msg = err.value.user_message
    assert msg.startswith("Nothing was submitted")
    for expected in ("line 2: not valid JSON", "line 3: `id` must be a non-empty string", "line 4: `text` must be",
                     "line 5: `instruction` must be", "line 6: duplicate id 'ok1' (first on line 1)",
                     "line 7: expected a JSON object", "line 8: unknown field(s) priority"):
        assert expected in msg
    assert "\nline 1:" not in msg


@pytest.mark.parametrize("data, expected", [
    (b"", "there are no items"),
    (b"\xff\xfe garbage", "not UTF-8"),
    (b'{"id": "a", "text": "' + b"x" * 10_001 + b'", "instruction": "s"}', "too long (10,001 characters"),
    (b'{"id": "a", "text": "' + b"x" * 30_000, "line 1: oversize (30,021 characters; an item's text may have at most 10,000)"),
    (b'{"id": "a", "text": "nul \\u0000 here", "instruction": "s"}', "line 1: `text` contains a NUL character (\\u0000)"),
    (b'{"id": "a\\u0000", "text": "t", "instruction": "s"}', "line 1: `id` contains a NUL character"),
    (b'{"id": "a", "text": "half \\ud800 pair", "instruction": "s"}', "line 1: `text` contains an unpaired surrogate (\\ud800)"),
])
def test_empty_binary_and_oversized_input_is_refused(data, expected):
    with pytest.raises(UserError, match=None) as err:
        parse_jsonl(data, **LIMITS)
    assert expected in err.value.user_message


# ----------------------------------------------------------------------------- worker


async def test_job_completes_through_429s_and_each_item_is_billed_once(app, fake_llm):
    job = await JobStore(app.services.db).create(items(6), model="gpt-4o-mini")
    # more 429s in a row than the SDK retries (2): the worker's own backoff honours Retry-After
    fake_llm.enqueue(*[Script(status=429, retry_after=0.01)] * 7, Script(status=503))
    await worker(app, concurrency=3).run_until_idle(job)
    status = await JobStore(app.services.db).status(job)
    assert status["status"] == "done" and status["counts"] == {"pending": 0, "done": 6, "failed": 0}
    assert [r["id"] for r in status["results"]] == [f"item-{i}" for i in range(6)]
    assert all(r["summary"].startswith("Summary:") for r in status["results"])
    rows = await ledger(app)
    assert all(r.pattern == "batch" for r in rows)
    assert paid(rows) == {f"item-{i}": 1 for i in range(6)}
    assert any(r.outcome == "rate_limited" and r.cost_usd == 0 for r in rows)
    assert max(r.attempts for r in await job_rows(app, job)) >= 2


async def test_item_that_keeps_failing_is_marked_failed_and_the_job_still_finishes(app, fake_llm):
    app.feature(Batch).settings.max_attempts = 2
    job = await JobStore(app.services.db).create(items(1), model="gpt-4o-mini")
    fake_llm.enqueue(*[Script(status=500)] * 6)
    await worker(app, concurrency=1).run_until_idle(job)
    status = await JobStore(app.services.db).status(job)
    assert status["status"] == "done" and status["results"] == [
        {"id": "item-0", "status": "failed", "error": "model error: unavailable"}]


async def test_restart_in_the_middle_of_a_job_loses_nothing_and_charges_nothing_twice(app, fake_llm):
    fake_llm.ttft = 0.05
    store = JobStore(app.services.db)
    job = await store.create(items(12), model="gpt-4o-mini")
    first = worker(app, concurrency=3)
    crashed = asyncio.create_task(first.run_until_idle(job))
    while sum(r.status == "done" for r in await job_rows(app, job)) < 4:
        await asyncio.sleep(0.02)
    crashed.cancel()  # the process dies with items in flight
    await asyncio.gather(crashed, return_exceptions=True)
    mid = await job_rows(app, job)
    assert 4 <= sum(r.status == "done" for r in mid) < 12 and all(r.status in ("done", "pending") for r in mid)

    await worker(app, concurrency=3).run_until_idle(job)
    final = await job_rows(app, job)
    assert [r.status for r in final] == ["done"] * 12
    assert {r.item_id: r.result for r in final if r.item_id in {m.item_id for m in mid if m.status == "done"}} == {
        m.item_id: m.result for m in mid if m.status == "done"}  # finished items are not redone
    assert paid(await ledger(app)) == {f"item-{i}": 1 for i in range(12)}


async def test_an_item_whose_call_finished_before_a_crash_is_not_paid_again(app, fake_llm):
    """The crash window between the model's answer and the item's commit: the answer is
    cached before its ledger row, so the resumed item is a free cache hit."""
    from bot.core.messages import CallInfo
    from bot.core.summarizer import summarize

    [item] = items(1)
    job = await JobStore(app.services.db).create([item], model="gpt-4o-mini")
    settings = app.services.settings
    await summarize(app.services.llm, item.text, call=CallInfo("batch", "batch", job, item.id),
                    budget_tokens=settings.context_tokens, model="gpt-4o-mini", instruction=item.instruction,
                    max_tokens=700, concurrency=1)  # the dead worker's call; its transaction rolled back
    await worker(app).run_until_idle(job)
    rows = await ledger(app)
    assert [(r.outcome, r.cache_hit) for r in rows] == [("ok", False), ("ok", True)]
    assert rows[1].cost_usd == 0 and len(fake_llm.chat_requests) == 1
    assert (await JobStore(app.services.db).status(job))["results"][0]["status"] == "done"


async def test_budget_waits_for_the_requests_per_minute_window():
    now = [0.0]
    slept: list[float] = []

    async def sleep(s: float) -> None:
        slept.append(s)
        now[0] += s

    budget = Budget(rpm=2, tpm=1_000, clock=lambda: now[0], sleep=sleep)
    await budget.acquire(100)
    await budget.acquire(100)
    assert slept == []
    await budget.acquire(100)  # third request in the same minute waits for the window
    assert slept == [60.0] and now[0] == 60.0
    await budget.acquire(950)  # the token budget: 100 (at t=60) + 950 > 1000
    assert now[0] == 120.0


# ----------------------------------------------------------------------------- provider batch


async def test_provider_batch_path_uses_files_and_batches_and_bills_half(app, fake_llm):
    fake_llm.batch_polls_to_complete = 2
    store = JobStore(app.services.db)
    job = await store.create(items(3), model="gpt-4o-mini", mode="provider")
    batch_id = await submit(app.services, job)
    assert await submit(app.services, job) == ""  # sent once, however often asked
    upload = next(r for r in fake_llm.requests if r.path == "/v1/files")
    assert upload.body == {"purpose": "batch"}
    created = next(r for r in fake_llm.requests if r.path == "/v1/batches")
    assert created.body["endpoint"] == "/v1/chat/completions" and created.body["completion_window"] == "24h"

    assert await poll_provider_jobs(app.services) == 0  # still in progress
    assert (await store.status(job))["provider_status"] == "in_progress"
    assert await poll_provider_jobs(app.services) == 1
    assert await poll_provider_jobs(app.services) == 0  # nothing left open; nothing collected twice
    status = await store.status(job)
    assert status["status"] == "done" and [r["status"] for r in status["results"]] == ["done"] * 3
    assert status["results"][0]["summary"].startswith("Summary:")
    rows = await ledger(app)
    assert paid(rows) == {"item-0": 1, "item-1": 1, "item-2": 1}
    prices = PriceTable()
    for r in rows:
        full = prices.cost("gpt-4o-mini", r.prompt_tokens, r.completion_tokens)
        assert abs(r.cost_usd - full / 2) <= Decimal("0.00000001") and r.cost_usd > 0  # Numeric(14, 8)
    assert fake_llm.chat_requests == [] and batch_id.startswith("batch_")


# ----------------------------------------------------------------------------- HTTP API


@pytest.fixture
async def api(app):
    server = HttpServer(app.services, host="127.0.0.1", port=0)
    app.feature(Batch).mount(server.app)  # as `aibot run` does
    await server.start()
    async with aiohttp.ClientSession(f"http://127.0.0.1:{server.bound_port}") as http:
        yield http
    await server.stop()


async def test_http_api_is_off_without_a_token(app, api):
    async with api.post("/api/batch", json={"items": []}) as r:
        assert r.status == 503 and "set AIBOT_API_TOKEN" in (await r.json())["error"]


async def test_http_api_refuses_missing_or_wrong_tokens(app, api):
    app.feature(Batch).settings.token = SecretStr("s3cret-token")
    body = {"items": [{"id": "a", "text": "t", "instruction": "i"}]}
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret-token"}):
        async with api.post("/api/batch", json=body, headers=headers) as r:
            assert r.status == 401 and r.headers["WWW-Authenticate"].startswith("Bearer")
        async with api.get("/api/batch/job_x", headers=headers) as r:
            assert r.status == 401
    async with app.services.db.session() as s:
        assert (await s.execute(text("SELECT count(*) FROM batch_jobs"))).scalar() == 0


async def test_http_api_submit_poll_and_results(app, api, fake_llm):
    app.feature(Batch).settings.token = SecretStr("s3cret-token")
    auth = {"Authorization": "Bearer s3cret-token"}
    async with api.post("/api/batch", json={"items": [{"id": "a"}]}, headers=auth) as r:
        assert r.status == 400 and "item 0: `text` must be a non-empty string" in (await r.json())["error"]
    async with api.post("/api/batch", data=b"{nope", headers=auth) as r:
        assert r.status == 400 and "not valid JSON" in (await r.json())["error"]
    nul = {"items": [{"id": "a", "text": "ok"}, {"id": "b", "text": "x\u0000y", "instruction": "s"}]}
    async with api.post("/api/batch", json=nul, headers=auth) as r:
        error = (await r.json())["error"]
        assert r.status == 400 and "item 1: `text` contains a NUL character" in error and "item 0:" in error
    lines = b'{"id": "a", "text": "t", "instruction": "s"}\n{"id": "b", "text": "\\u0000", "instruction": "s"}'
    async with api.post("/api/batch", data=lines, headers={**auth, "Content-Type": "application/x-ndjson"}) as r:
        assert r.status == 400 and (await r.json())["error"].endswith("line 2: `text` contains a NUL character "
                                                                      "(\\u0000), which cannot be stored; remove it")
    data = (FIXTURES / "good.jsonl").read_bytes()
    async with api.post("/api/batch", data=data, headers={**auth, "Content-Type": "application/x-ndjson"}) as r:
        assert r.status == 202
        job = (await r.json())["job_id"]
    async with api.get(f"/api/batch/{job}", headers=auth) as r:
        queued = await r.json()
    assert queued["status"] == "queued" and queued["counts"]["pending"] == 3 and "results" not in queued
    await worker(app).run_until_idle()
    async with api.get(f"/api/batch/{job}", headers=auth) as r:
        done = await r.json()
    assert done["status"] == "done" and [x["id"] for x in done["results"]] == ["a1", "a2", "a3"]
    async with api.get("/api/batch/job_doesnotexist", headers=auth) as r:
        assert r.status == 404


# ----------------------------------------------------------------------------- CLI


def aibot(env, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bot.cli", *args], env=env, capture_output=True, text=True, timeout=120)


def test_cli_names_nul_characters_and_oversize_lines(env, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(b'{"id": "a", "text": "nul \\u0000", "instruction": "s"}\n{"id": "b", "text": "' + b"x" * 5_000 + b'"}\n')
    out = aibot({**env, "AIBOT_MAX_SUMMARIZE_CHARS": "1000"}, "batch", "submit", str(bad))
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert "line 1: `text` contains a NUL character" in out.stderr
    assert "line 2: oversize: the input is cut at 2,000 bytes inside this line" in out.stderr
    assert "not valid JSON" not in out.stderr


@pytest.mark.slow
def test_cli_submit_wait_and_status(env, fake_llm):
    bad = aibot(env, "batch", "submit", str(FIXTURES / "bad.jsonl"))
    assert bad.returncode == 1 and "line 2: not valid JSON" in bad.stderr and "Traceback" not in bad.stderr
    out = aibot(env, "batch", "submit", str(FIXTURES / "good.jsonl"), "--wait", "--json")
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["status"] == "done" and result["counts"]["done"] == 3
    status = aibot(env, "batch", "status", result["job_id"])
    assert status.returncode == 0 and status.stdout.startswith(f"{result['job_id']}: done (3 done, 0 failed")
    missing = aibot(env, "batch", "status", "job_nope")
    assert missing.returncode == 1 and "There is no job 'job_nope'" in missing.stderr


@pytest.mark.slow
def test_running_bot_serves_the_batch_api_and_processes_jobs(env, fake_llm):
    """`aibot run` wires it all: the API on its HTTP server, the worker in the background."""
    import socket
    import time
    import urllib.error
    import urllib.request

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = dict(env, AIBOT_HTTP_PORT=str(port), AIBOT_BATCH_TOKEN="e2e-token", AIBOT_BATCH_POLL="0.2")
    bot = subprocess.Popen([sys.executable, "-m", "bot.cli", "run"], env=env, stdin=subprocess.PIPE,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}/api/batch"
    auth = {"Authorization": "Bearer e2e-token"}

    def call(url: str, data: bytes | None = None, headers: dict | None = None):
        req = urllib.request.Request(url, data=data, headers={**auth, **(headers or {})})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())

    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                status, body = call(base, (FIXTURES / "good.jsonl").read_bytes(), {"Content-Type": "application/x-ndjson"})
                break
            except (urllib.error.URLError, ConnectionError):
                assert time.monotonic() < deadline and bot.poll() is None, bot.stderr.read().decode()
                time.sleep(0.2)
        assert status == 202
        job = body["job_id"]
        while True:
            status, body = call(f"{base}/{job}")
            if body["status"] == "done":
                break
            assert time.monotonic() < deadline
            time.sleep(0.2)
        assert [r["id"] for r in body["results"]] == ["a1", "a2", "a3"]
        assert call(f"{base}/{job}", headers={"Authorization": "Bearer nope"})[0] == 401
    finally:
        bot.stdin.close()  # console EOF: the bot finishes and exits
        assert bot.wait(30) == 0
