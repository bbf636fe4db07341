"""The LLM client through the real openai SDK against the fake server, with the real
ledger in PostgreSQL: what gets answered, retried, refused and recorded."""
from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import select

from bot.core.errors import LLMError, LLMNotConfigured
from bot.core.llm import LLM, ChatOptions
from bot.core.messages import CallInfo
from bot.core.models import Usage
from tests.fakes.openai_server import Script

CALL = CallInfo("streaming", platform="test", tenant="T1", channel="C1", user="U1")
MSGS = [{"role": "user", "content": "hello there"}]


async def ledger_rows(app) -> list[Usage]:
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
