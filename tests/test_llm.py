"""The LLM client through the real openai SDK against the fake server, with the real
ledger in PostgreSQL: what gets answered, retried, refused and recorded."""
from __future__ import annotations

from decimal import Decimal

import asyncio
import socket

import pytest
from sqlalchemy import select

from bot.core import tokens
from bot.core.errors import LLMError, LLMNotConfigured
from bot.core.llm import LLM, ChatOptions
from bot.core.messages import CallInfo
from bot.core.models import Usage
from tests.fakes.openai_server import Script

CALL = CallInfo("streaming", platform="test", tenant="T1", channel="C1", user="U1")
MSGS = [{"role": "user", "content": "hello there"}]


async def ledger_rows(app) -> list[Usage]:
    await app.services.ledger.flush()  # rows are written behind the answer
    async with app.services.db.session() as s:
        return list((await s.execute(select(Usage).order_by(Usage.id))).scalars())


async def test_complete_returns_text_and_writes_one_ledger_row(app, fake_llm):
    fake_llm.enqueue(Script(text="General Kenobi.", prompt_tokens=1000, completion_tokens=500))
    result = await app.services.llm.complete(MSGS, call=CALL)
    assert result.text == "General Kenobi."
    [row] = await ledger_rows(app)
    assert (row.pattern, row.model, row.prompt_tokens, row.completion_tokens) == ("streaming", "gpt-4o-mini", 1000, 500)
    assert (row.platform, row.workspace, row.channel, row.user_id) == ("test", "T1", "C1", "U1")
    assert row.outcome == "ok" and not row.cache_hit and not row.streamed
    # gpt-4o-mini: $0.15 / 1M in, $0.60 / 1M out
    assert row.cost_usd == Decimal("0.00045000")
    assert float(row.latency_ms) > 0


async def test_stream_yields_deltas_and_records_usage_and_time_to_first_token(app, fake_llm):
    fake_llm.enqueue(Script(text="one two three four", ttft=0.05, tokens_per_second=200))
    stream = app.services.llm.stream(MSGS, call=CALL)
    parts = [p async for p in stream]
    assert len(parts) == 4 and "".join(parts) == "one two three four"
    assert fake_llm.chat_requests[-1]["stream_options"] == {"include_usage": True}
    [row] = await ledger_rows(app)
    assert row.streamed and row.outcome == "ok"
    assert row.completion_tokens == 4 and row.prompt_tokens > 0
    assert 40 <= float(row.ttft_ms) <= float(row.latency_ms)


async def test_rate_limit_is_retried_after_retry_after(app, fake_llm):
    fake_llm.enqueue(Script(status=429, retry_after=0.05), Script(text="made it"))
    result = await app.services.llm.complete(MSGS, call=CALL)
    assert result.text == "made it"
    assert len(fake_llm.chat_requests) == 2
    rows = await ledger_rows(app)
    assert [r.outcome for r in rows] == ["ok"]  # one call, one row, however many retries


@pytest.mark.parametrize(
    ("script", "kind"),
    [
        (Script(status=429, retry_after=0.01), "rate_limited"),
        (Script(status=500), "unavailable"),
        (Script(status=400), "bad_request"),
        (Script(status=401), "auth"),
    ],
)
async def test_persistent_errors_raise_a_kind_and_record_it(app, fake_llm, script, kind):
    fake_llm.enqueue(script, script, script, script)
    with pytest.raises(LLMError) as err:
        await app.services.llm.complete(MSGS, call=CALL)
    assert err.value.kind == kind
    assert "scripted" not in err.value.user_message
    [row] = await ledger_rows(app)
    assert row.outcome == kind and row.prompt_tokens == 0 and row.cost_usd == 0


async def test_hanging_server_times_out(app, fake_llm):
    settings = app.services.settings.model_copy(update={"llm_timeout": 0.3, "llm_max_retries": 0})
    from bot.core.llm import build_client

    llm = LLM(client=build_client(settings), settings=settings, ledger=app.services.ledger)
    fake_llm.enqueue(Script(hang=True))
    with pytest.raises(LLMError) as err:
        await llm.complete(MSGS, call=CALL)
    assert err.value.kind == "timeout"
    [row] = await ledger_rows(app)
    assert row.outcome == "timeout"


async def test_stream_cut_midway_raises_cut_after_the_text_so_far(app, fake_llm):
    fake_llm.enqueue(Script(text="a b c d e f g h", cut_after=3))
    got = []
    with pytest.raises(LLMError) as err:
        async for p in app.services.llm.stream(MSGS, call=CALL):
            got.append(p)
    assert err.value.kind == "cut"
    assert "".join(got) == "a b c"
    [row] = await ledger_rows(app)
    assert row.outcome == "cut" and row.streamed
    assert row.completion_tokens == 3  # estimated from what arrived, since no usage chunk came


async def test_tool_call_deltas_are_assembled(app, fake_llm):
    fake_llm.enqueue(
        Script(tool_calls=[{"name": "calculate", "arguments": {"expression": "2*21"}},
                           {"name": "now", "arguments": {}}])
    )
    stream = app.services.llm.stream(MSGS, call=CALL, options=ChatOptions(tools=[{"type": "function", "function": {"name": "calculate"}}]))
    assert [p async for p in stream] == []
    calls = stream.completion.tool_calls
    assert [(c.name, c.arguments) for c in calls] == [("calculate", '{"expression": "2*21"}'), ("now", "{}")]
    assert stream.completion.finish_reason == "tool_calls"


async def test_a_stream_of_only_tool_calls_still_records_time_to_first_token(app, fake_llm):
    fake_llm.enqueue(Script(tool_calls=[{"name": "now", "arguments": {}}], ttft=0.05))
    stream = app.services.llm.stream(MSGS, call=CALL, options=ChatOptions(tools=[{"type": "function", "function": {"name": "now"}}]))
    assert [p async for p in stream] == []
    [row] = await ledger_rows(app)
    assert row.outcome == "ok" and row.ttft_ms is not None and 40 <= float(row.ttft_ms) <= float(row.latency_ms)


async def test_exact_cache_answers_repeats_without_a_model_call(app, fake_llm):
    fake_llm.enqueue("cached answer")
    first = await app.services.llm.complete(MSGS, call=CALL, cache=True)
    second = await app.services.llm.complete(MSGS, call=CALL, cache=True)
    assert first.text == second.text == "cached answer"
    assert second.cached and len(fake_llm.chat_requests) == 1
    rows = await ledger_rows(app)
    assert [r.cache_hit for r in rows] == [False, True]
    assert rows[1].cost_usd == 0


async def test_unknown_options_are_rejected():
    with pytest.raises(ValueError):
        ChatOptions(temprature=0.2)


async def test_no_model_configured_says_what_to_set(app):
    llm = LLM(client=None, settings=app.services.settings, ledger=app.services.ledger)
    with pytest.raises(LLMNotConfigured) as err:
        await llm.complete(MSGS, call=CALL)
    assert "OPENAI_API_KEY" in err.value.user_message and "OPENAI_BASE_URL" in err.value.user_message
    with pytest.raises(LLMNotConfigured):
        [p async for p in llm.stream(MSGS, call=CALL)]
    assert await ledger_rows(app) == []  # nothing was called, nothing recorded


async def test_unreachable_server_is_a_connection_error_and_recorded(app):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # free once closed: nothing listens there
    settings = app.services.settings.model_copy(update={"openai_base_url": f"http://127.0.0.1:{port}/v1", "llm_max_retries": 0})
    from bot.core.llm import build_client

    llm = LLM(client=build_client(settings), settings=settings, ledger=app.services.ledger)
    with pytest.raises(LLMError) as err:
        await llm.complete(MSGS, call=CALL)
    assert err.value.kind == "connection"
    [row] = await ledger_rows(app)
    assert row.outcome == "connection" and row.cost_usd == 0


async def test_complete_without_usage_from_the_server_estimates_tokens_and_says_so(app, fake_llm):
    fake_llm.enqueue(Script(text="General Kenobi.", send_usage=False))
    result = await app.services.llm.complete(MSGS, call=CALL, extra={"step": 1})
    [row] = await ledger_rows(app)
    assert row.completion_tokens == result.completion_tokens == tokens.count("General Kenobi.")
    assert row.prompt_tokens == result.prompt_tokens > 0
    assert row.extra == {"step": 1, "usage_estimated": True} and row.cost_usd > 0


async def test_complete_with_usage_from_the_server_keeps_extra_as_given(app, fake_llm):
    fake_llm.enqueue(Script(text="General Kenobi.", prompt_tokens=7, completion_tokens=3))
    await app.services.llm.complete(MSGS, call=CALL, extra={"step": 1})
    [row] = await ledger_rows(app)
    assert (row.prompt_tokens, row.completion_tokens, row.extra) == (7, 3, {"step": 1})


async def test_stream_without_usage_from_the_server_estimates_tokens_and_says_so(app, fake_llm):
    fake_llm.enqueue(Script(text="one two three", send_usage=False))
    stream = app.services.llm.stream(MSGS, call=CALL)
    assert "".join([p async for p in stream]) == "one two three"
    [row] = await ledger_rows(app)
    assert row.outcome == "ok" and row.completion_tokens == stream.completion.completion_tokens == tokens.count("one two three")
    assert row.prompt_tokens == stream.completion.prompt_tokens > 0
    assert row.extra == {"usage_estimated": True} and row.cost_usd > 0


async def test_stream_that_ends_without_finish_reason_is_cut_after_all_its_text(app, fake_llm):
    fake_llm.enqueue(Script(text="a b c", send_finish=False, prompt_tokens=11, completion_tokens=3))
    stream = app.services.llm.stream(MSGS, call=CALL)
    got = []
    with pytest.raises(LLMError) as err:
        async for p in stream:
            got.append(p)
    assert err.value.kind == "cut" and "".join(got) == "a b c"
    assert stream.completion.text == "a b c" and stream.completion.finish_reason is None
    [row] = await ledger_rows(app)
    assert (row.outcome, row.streamed, row.prompt_tokens, row.completion_tokens) == ("cut", True, 11, 3)
    assert row.cost_usd > 0  # what arrived was generated, so it is paid for


@pytest.mark.parametrize(
    ("script", "kind", "retry_after"),
    [(Script(status=429, retry_after=0.01), "rate_limited", 0.01), (Script(status=400), "bad_request", None)],
)
async def test_stream_refused_before_any_text_raises_its_kind_and_records_it(app, fake_llm, script, kind, retry_after):
    fake_llm.enqueue(script, script, script, script)
    stream = app.services.llm.stream(MSGS, call=CALL, extra={"step": 2})
    with pytest.raises(LLMError) as err:
        [p async for p in stream]
    assert err.value.kind == kind and err.value.retry_after == retry_after
    assert stream.completion.text == "" and stream.completion.tool_calls == []
    [row] = await ledger_rows(app)
    assert (row.outcome, row.streamed, row.prompt_tokens, row.completion_tokens) == (kind, True, 0, 0)
    assert row.cost_usd == 0 and row.extra == {"step": 2}  # nothing estimated: extra as given


async def test_stream_closed_by_the_caller_records_cancelled_with_the_text_so_far(app, fake_llm):
    fake_llm.enqueue(Script(text="one two three four", tokens_per_second=20))
    stream = app.services.llm.stream(MSGS, call=CALL)
    deltas = aiter(stream)
    first = await anext(deltas)
    await deltas.aclose()  # the reader went away (e.g. `async with aclosing(...)` left early)
    assert first == "one" and stream.completion.text == "one"
    [row] = await ledger_rows(app)
    assert (row.outcome, row.streamed, row.completion_tokens) == ("cancelled", True, 1)
    assert row.prompt_tokens > 0 and row.extra == {"usage_estimated": True}
    assert row.cost_usd > 0  # the provider bills what it generated before we hung up


async def test_stream_whose_task_is_cancelled_records_cancelled(app, fake_llm):
    fake_llm.enqueue(Script(text="one two three four", tokens_per_second=5))
    stream = app.services.llm.stream(MSGS, call=CALL)
    got: list[str] = []
    first = asyncio.Event()

    async def read() -> None:
        async for p in stream:
            got.append(p)
            first.set()

    task = asyncio.create_task(read())
    await first.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert got == ["one"] and stream.completion.text == "one"
    [row] = await ledger_rows(app)
    assert (row.outcome, row.streamed, row.completion_tokens) == ("cancelled", True, 1)


async def test_stream_cache_hit_sends_the_whole_answer_at_once_without_a_model_call(app, fake_llm):
    fake_llm.enqueue("one two three")
    first = app.services.llm.stream(MSGS, call=CALL, cache=True)
    assert [p async for p in first] == ["one", " two", " three"]
    second = app.services.llm.stream(MSGS, call=CALL, cache=True, extra={"step": 2})
    assert [p async for p in second] == ["one two three"]
    assert second.completion.cached and second.completion.text == "one two three"
    assert len(fake_llm.chat_requests) == 1
    rows = await ledger_rows(app)
    assert [(r.cache_hit, r.streamed, r.outcome) for r in rows] == [(False, True, "ok"), (True, True, "ok")]
    assert rows[1].cost_usd == 0 and rows[1].ttft_ms is not None and rows[1].extra == {"step": 2}


async def test_a_cut_stream_is_not_cached(app, fake_llm):
    fake_llm.enqueue(Script(text="a b c d", cut_after=2), "fresh answer")
    with pytest.raises(LLMError):
        [p async for p in app.services.llm.stream(MSGS, call=CALL, cache=True)]
    again = app.services.llm.stream(MSGS, call=CALL, cache=True)
    assert "".join([p async for p in again]) == "fresh answer" and not again.completion.cached
    assert len(fake_llm.chat_requests) == 2
