"""The HTTP API, through a real HTTP client against the bot's HTTP server with every
pattern's routes mounted (as `aibot run` mounts them): bearer auth, one clear message
for bad input, the OpenAPI document, and each endpoint's behaviour."""
from __future__ import annotations

import json

import aiohttp
import pytest
from aiohttp import web
from pydantic import SecretStr
from sqlalchemy import text

from bot.core.http import HttpServer
from patterns.batch import Batch

TOKEN = "api-test-token-1"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


async def _slack_ack(request):
    return web.Response(status=200)


@pytest.fixture(params=["direct", "front door"])
async def api(app, request):
    """The API as served directly, and through the front door that Slack's intake puts
    on the public port (`bot.core.front`): every behaviour below must be the same."""
    server = HttpServer(app.services, host="127.0.0.1", port=0)
    for feature in app.features:  # as `aibot run` does
        feature.mount(server.app)
    if request.param == "front door":
        server.add_front("/slack/events", _slack_ack)
    await server.start()
    assert (server.front is not None) == (request.param == "front door")
    async with aiohttp.ClientSession(f"http://127.0.0.1:{server.bound_port}") as http:
        yield http
    await server.stop()


@pytest.fixture
def token(app):
    app.settings.api_token = SecretStr(TOKEN)


async def usage_rows(app) -> list:
    assert await app.services.ledger.flush(timeout=10)  # rows are written behind the answer
    async with app.services.db.session() as s:
        return (await s.execute(text("SELECT pattern, platform, workspace, outcome FROM usage ORDER BY id"))).all()


async def sse(response: aiohttp.ClientResponse) -> list[tuple[str, dict]]:
    """The (event, data) pairs of a Server-Sent Events body."""
    events, name = [], None
    async for raw in response.content:
        line = raw.decode().rstrip("\n")
        if line.startswith("event: "):
            name = line[7:]
        elif line.startswith("data: "):
            events.append((name, json.loads(line[6:])))
    return events


# --------------------------------------------------------------------------- auth, OpenAPI


ROUTES = [("POST", "/api/summarize"), ("POST", "/api/chat/stream"), ("POST", "/api/ask"), ("GET", "/api/batch"),
          ("POST", "/api/batch"), ("GET", "/api/batch/job_x"), ("POST", "/api/batch/job_x/cancel")]


async def test_without_a_token_setting_every_route_is_off_and_says_what_to_set(app, api):
    for method, path in ROUTES:
        async with api.request(method, path, json={}) as r:
            assert r.status == 503, path
            assert (await r.json()) == {"error": "The HTTP API is off: set AIBOT_API_TOKEN to enable it."}


async def test_a_missing_or_wrong_token_gets_401_and_changes_nothing(app, api, token, fake_llm):
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}, {"Authorization": f"Basic {TOKEN}"}):
        for method, path in ROUTES:
            async with api.request(method, path, json={"text": "x", "message": "x", "question": "x"},
                                   headers=headers) as r:
                assert r.status == 401, (path, headers)
                assert r.headers["WWW-Authenticate"].startswith("Bearer")
                assert "Authorization: Bearer <AIBOT_API_TOKEN>" in (await r.json())["error"]
    assert await usage_rows(app) == [] and fake_llm.chat_requests == []


async def test_the_openapi_document_describes_every_route(api):
    async with api.get("/api/openapi.json") as r:
        assert r.status == 200
        doc = await r.json()
    assert doc["openapi"].startswith("3.")
    assert set(doc["paths"]) == {"/api/summarize", "/api/chat/stream", "/api/ask", "/api/batch",
                                 "/api/batch/{job_id}", "/api/batch/{job_id}/cancel"}
    summarize = doc["paths"]["/api/summarize"]["post"]
    body = summarize["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    assert doc["components"]["schemas"][body]["properties"]["text"]["type"] == "string"
    assert "text/event-stream" in doc["paths"]["/api/chat/stream"]["post"]["responses"]["200"]["content"]
    assert doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"


# --------------------------------------------------------------------------- summarize


async def test_summarize_returns_the_summary_and_records_it_like_the_command(app, api, token, fake_llm):
    fake_llm.enqueue("A short summary.")
    async with api.post("/api/summarize", json={"text": "A long text about the release plan. " * 20},
                        headers=AUTH) as r:
        assert r.status == 200
        out = await r.json()
    assert out["summary"] == "A short summary." and out["model"] == app.settings.fast_model
    assert await usage_rows(app) == [("api_wrapper", "api", "api", "ok")]


@pytest.mark.parametrize("body, status, message", [
    ({"text": 5}, 400, "`text`: Input should be a valid string."),
    ({"text": ["a"]}, 400, "`text`: Input should be a valid string."),
    ({}, 400, "`text` is required."),
    ({"text": "hi", "colour": "red"}, 400, "`colour` is not a field of this request."),
    ({"text": ""}, 400, "`text`: String should have at least 1 character."),
    ({"text": "   "}, 400, "`text` is empty: send the text to summarize."),
    ([1, 2], 400, "Send a JSON object with `text`, `instruction`, `workspace`."),
    ({"text": "x" * 1_001}, 413, "`text` is too long (1,001 characters; the limit is 1,000, AIBOT_MAX_SUMMARIZE_CHARS)."),
])
async def test_summarize_refuses_bad_input_with_one_clear_message(app, api, token, fake_llm, body, status, message):
    app.settings.max_summarize_chars = 1_000
    async with api.post("/api/summarize", json=body, headers=AUTH) as r:
        assert r.status == status
        assert await r.json() == {"error": message}
    assert fake_llm.chat_requests == [] and await usage_rows(app) == []


async def test_bodies_that_are_not_json_or_too_large_are_refused_and_the_server_keeps_serving(app, api, token, fake_llm):
    async with api.post("/api/summarize", data=b"{not json", headers={**AUTH, "Content-Type": "application/json"}) as r:
        assert r.status == 400 and await r.json() == {"error": "The body is not valid JSON."}
    async with api.post("/api/ask", data=b"x" * (5 * 1024 * 1024), headers={**AUTH, "Content-Type": "application/json"}) as r:
        assert r.status == 413 and (await r.json())["error"].startswith("The body is too large (5,242,880 bytes")
    async with api.post("/api/summarize", data="text=hi", headers={**AUTH, "Content-Type": "application/x-www-form-urlencoded"}) as r:
        assert r.status == 415 and "Send JSON" in (await r.json())["error"]
    fake_llm.enqueue("Still here.")
    async with api.post("/api/summarize", json={"text": "Some text to summarize."}, headers=AUTH) as r:
        assert r.status == 200 and (await r.json())["summary"] == "Still here."


# --------------------------------------------------------------------------- chat (SSE)


async def test_chat_stream_answers_through_the_router_as_server_sent_events(app, api, token, fake_llm):
    fake_llm.enqueue("The launch is on March 3rd.")
    body = {"message": "when is the launch?",
            "history": [{"role": "user", "content": "we talked about the launch plan"},
                        {"role": "assistant", "content": "Yes, the plan is in the doc."}]}
    async with api.post("/api/chat/stream", json=body, headers=AUTH) as r:
        assert r.status == 200 and r.content_type == "text/event-stream"
        events = await sse(r)
    deltas = "".join(d["text"] for e, d in events if e == "delta")
    assert deltas == "The launch is on March 3rd."
    assert events[-1] == ("done", {"text": "The launch is on March 3rd.", "error": None})
    # the chat pattern's prompt, with the history given as the conversation so far
    prompt = json.dumps(fake_llm.chat_requests[-1]["messages"])
    assert "we talked about the launch plan" in prompt and "when is the launch?" in prompt
    assert await usage_rows(app) == [("streaming", "api", "api", "ok")]


async def test_chat_stream_reports_a_model_failure_in_its_done_event(app, api, token, fake_llm):
    from tests.fakes.openai_server import Script

    fake_llm.enqueue(*[Script(status=400)] * 3)
    async with api.post("/api/chat/stream", json={"message": "hello"}, headers=AUTH) as r:
        events = await sse(r)
    name, done = events[-1]
    assert name == "done" and done["error"] and "Traceback" not in done["error"]
    assert "refused the request" in done["error"]


async def test_chat_stream_refuses_bad_input(app, api, token, fake_llm):
    for body, status, message in [
        ({"message": 3}, 400, "`message`: Input should be a valid string."),
        ({"message": "hi", "history": [{"role": "system", "content": "x"}]}, 400, "`history.0.role`: Input should be 'user' or 'assistant'."),
        ({"message": "hi", "history": "none"}, 400, "`history`: Input should be a valid array."),
        ({"message": "x" * 100_001}, 413, "`message` is too long (100,001 characters; the limit is 100,000, AIBOT_MAX_MESSAGE_CHARS)."),
    ]:
        async with api.post("/api/chat/stream", json=body, headers=AUTH) as r:
            assert r.status == status, body
            assert await r.json() == {"error": message}
    assert fake_llm.chat_requests == []


# --------------------------------------------------------------------------- ask (RAG)


async def test_ask_answers_from_the_knowledge_base_with_citations(app, api, token, fake_llm):
    await app.services.kb.ingest(tenant="api", name="rotation.md", added_by="ops",
                                 data=b"# Key rotation\n\nAPI keys are rotated every 90 days by the platform team.")
    fake_llm.enqueue("Keys are rotated every 90 days [1].")
    async with api.post("/api/ask", json={"question": "how often are API keys rotated?"}, headers=AUTH) as r:
        assert r.status == 200
        out = await r.json()
    assert out["answer"] == "Keys are rotated every 90 days [1]." and out["grounded"] is True
    assert [(c["n"], c["document"]) for c in out["citations"]] == [(1, "rotation.md")]
    assert out["citations"][0]["score"] > 0
    assert "rotated every 90 days" in json.dumps(fake_llm.chat_requests[-1]["messages"])
    assert await usage_rows(app) == [("rag", "api", "api", "ok")]
    # another workspace's knowledge base is not this one
    async with api.post("/api/ask", json={"question": "how often are API keys rotated?", "workspace": "T-other"},
                        headers=AUTH) as r:
        other = await r.json()
    assert other["grounded"] is False and other["citations"] == [] and "not in the knowledge base" in other["answer"]


# --------------------------------------------------------------------------- batch list and cancel


async def test_batch_jobs_are_listed_newest_first_and_a_cancelled_job_sends_nothing_more(app, api, token, fake_llm):
    items = {"items": [{"id": f"i{n}", "text": f"text {n}", "instruction": "summarize"} for n in range(3)]}
    ids = []
    for _ in range(2):
        async with api.post("/api/batch", json=items, headers=AUTH) as r:
            assert r.status == 202
            ids.append((await r.json())["job_id"])
    async with api.get("/api/batch", headers=AUTH) as r:
        listed = (await r.json())["jobs"]
    assert [j["job_id"] for j in listed] == ids[::-1] and all(j["status"] == "queued" for j in listed)

    async with api.post(f"/api/batch/{ids[0]}/cancel", headers=AUTH) as r:
        assert r.status == 200
        cancelled = await r.json()
    assert cancelled["status"] == "cancelled" and cancelled["counts"]["cancelled"] == 3
    await app.feature(Batch).worker.run_until_idle()
    assert len(fake_llm.chat_requests) == 3  # only the other job's items
    async with api.get(f"/api/batch/{ids[1]}", headers=AUTH) as r:
        assert (await r.json())["status"] == "done"
    async with api.get(f"/api/batch/{ids[0]}", headers=AUTH) as r:
        assert (await r.json())["status"] == "cancelled"  # the worker did not turn it into done
    async with api.get("/api/batch?status=cancelled", headers=AUTH) as r:
        assert [j["job_id"] for j in (await r.json())["jobs"]] == [ids[0]]

    async with api.post(f"/api/batch/{ids[1]}/cancel", headers=AUTH) as r:
        assert r.status == 409 and "already done" in (await r.json())["error"]
    async with api.post("/api/batch/job_nope/cancel", headers=AUTH) as r:
        assert r.status == 404 and await r.json() == {"error": "There is no such job."}
    async with api.get("/api/batch?limit=lots", headers=AUTH) as r:
        assert r.status == 400 and await r.json() == {"error": "`limit` must be a whole number from 1 to 500."}
    async with api.get("/api/batch?status=eaten", headers=AUTH) as r:
        assert r.status == 400 and "`status` must be one of" in (await r.json())["error"]


async def test_the_batch_api_still_opens_with_its_older_token(app, api, fake_llm):
    app.feature(Batch).settings.token = SecretStr("batch-only")
    async with api.get("/api/batch", headers={"Authorization": "Bearer batch-only"}) as r:
        assert r.status == 200 and (await r.json()) == {"jobs": []}


# --------------------------------------------------------------------------- the running bot


@pytest.mark.slow
def test_the_running_bot_serves_the_api_metrics_and_dashboard_with_json_logs(env, fake_llm):
    """`aibot run` wires it all: every pattern's routes, /metrics, /dashboard, and JSON
    logs whose request id ties an API request to its model call."""
    import socket
    import subprocess
    import sys
    import time
    import urllib.error
    import urllib.request

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = dict(env, AIBOT_HTTP_PORT=str(port), AIBOT_API_TOKEN=TOKEN, AIBOT_LOG_FORMAT="json", AIBOT_LOG_LEVEL="INFO")
    bot = subprocess.Popen([sys.executable, "-m", "bot.cli", "run"], env=env, stdin=subprocess.PIPE,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"

    def call(path: str, body: dict | None = None, headers: dict | None = None) -> tuple[int, bytes]:
        req = urllib.request.Request(base + path, data=None if body is None else json.dumps(body).encode(),
                                     headers={**AUTH, "Content-Type": "application/json", **(headers or {})})
        try:
            with urllib.request.urlopen(req, timeout=20) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                status, body = call("/api/summarize", {"text": "The quarterly numbers are up by four percent."})
                break
            except (urllib.error.URLError, ConnectionError):
                assert time.monotonic() < deadline and bot.poll() is None, bot.stderr.read().decode()
                time.sleep(0.2)
        assert status == 200 and json.loads(body)["summary"].startswith("Summary:")
        status, body = call("/api/chat/stream", {"message": "hello there"})
        assert status == 200 and b"event: done" in body
        status, body = call("/metrics")
        assert status == 200 and b'aibot_model_calls_total{model="gpt-4o-mini",outcome="ok",pattern="api_wrapper"} 1.0' in body
        status, body = call("/dashboard")
        assert status == 200 and b'<table id="totals">' in body and b"api_wrapper" in body
        assert call("/api/summarize", {"text": "x"}, {"Authorization": "Bearer nope"})[0] == 401
    finally:
        bot.stdin.close()  # console EOF: the bot finishes and exits
        assert bot.wait(30) == 0
    lines = [json.loads(ln) for ln in bot.stderr.read().decode().splitlines() if ln.startswith("{")]
    calls = [ln for ln in lines if ln.get("event") == "model_call"]
    assert {c["pattern"] for c in calls} == {"api_wrapper", "streaming"}
    assert all(c["request_id"] and c["request_id"].startswith("api-") for c in calls)
    assert len({c["request_id"] for c in calls}) == 2  # one per API request
    [routed] = [ln for ln in lines if ln.get("event") == "message"]  # the chat request, through the router
    assert routed["request_id"] == next(c["request_id"] for c in calls if c["pattern"] == "streaming")


async def test_a_client_leaving_mid_stream_stops_the_model_call(app, api, token, fake_llm):
    import asyncio

    from tests.fakes.openai_server import Script

    fake_llm.enqueue(Script(text=" ".join(f"w{i}" for i in range(400)), tokens_per_second=20))  # ~20 s
    async with api.post("/api/chat/stream", json={"message": "talk for a long time"}, headers=AUTH) as r:
        async for raw in r.content:
            if raw.startswith(b"event: delta"):
                break
        r.close()  # the client goes away after the first text
    for _ in range(100):  # the stream is stopped long before the model would have finished
        rows = await usage_rows(app)
        if rows:
            break
        await asyncio.sleep(0.1)
    assert rows == [("streaming", "api", "api", "cancelled")]
    async with api.post("/api/summarize", json={"text": "Still serving?"}, headers=AUTH) as r:
        assert r.status == 200
