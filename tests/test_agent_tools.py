"""The agent's tools as the model sees them: schemas from signatures, the calculator's
answers and refusals, bad arguments turned into readable errors."""
from __future__ import annotations

import time

import pytest

from patterns.agent import calc
from patterns.agent.toolbox import ALL, Run, calculate, channel_history, now
from patterns.agent.tools import ToolError, tool


def test_schemas_come_from_signatures_and_docstrings():
    specs = {t.name: t.spec()["function"] for t in ALL}
    assert set(specs) == {"kb_search", "calculate", "sql_query", "channel_history", "now"}
    kb = specs["kb_search"]["parameters"]
    assert kb["properties"]["query"] == {"type": "string", "description": "what to look for, in a few words"}
    assert kb["properties"]["k"]["type"] == "integer" and kb["properties"]["k"]["default"] == 5
    assert kb["required"] == ["query"] and kb["additionalProperties"] is False
    assert "run" not in kb["properties"]  # the run context is never shown to the model
    assert specs["channel_history"]["parameters"]["properties"]["hours"]["type"] == "number"
    assert specs["now"]["parameters"]["properties"] == {}
    assert specs["calculate"]["description"].startswith("Evaluate an arithmetic expression")


def test_a_new_tool_is_just_a_typed_function():
    @tool(step="greeting {name}")
    async def greet(run, name: str, times: int = 1) -> str:
        """Say hello.

        name: who to greet
        """
        return "hi " * times + name

    params = greet.spec()["function"]["parameters"]
    assert params["required"] == ["name"] and params["properties"]["times"]["type"] == "integer"
    assert greet.status(greet.parse('{"name": "Ada"}')) == "greeting Ada"


@pytest.mark.parametrize(
    ("arguments", "reason"),
    [
        ('{"expression": "1 +', "not valid JSON"),
        ("[1, 2]", "must be a JSON object"),
        ('{"expr": "1+1"}', "invalid arguments"),
        ('{"expression": "1+1", "extra": true}', "invalid arguments"),
    ],
)
def test_malformed_arguments_are_a_readable_error(arguments, reason):
    with pytest.raises(ToolError, match=reason):
        calculate.parse(arguments)


@pytest.mark.parametrize(
    ("expression", "value"),
    [
        ("2 + 3 * 4", 14),
        ("(1200 - 1000) / 1000 * 100", 20.0),
        ("2 ** 10", 1024),
        ("2^8", 256),
        ("sqrt(16) + abs(-2)", 6.0),
        ("round(pi, 2)", 3.14),
        ("factorial(20)", 2432902008176640000),
        ("max(3, 7, 5) // 2", 3),
        ("-(-5) % 3", 2),
    ],
)
def test_calculator_computes(expression, value):
    assert calc.calculate(expression) == value


@pytest.mark.parametrize(
    "expression",
    [
        "9**9**9",
        "10**10**10",
        "2 ** 100000",
        "factorial(100000)",
        "factorial(factorial(10))",
        "__import__('os')",
        "__import__('os').system('id')",
        "(1).__class__",
        "abs.__self__",
        "lambda: 1",
        "[x for x in range(10**9)]",
        "open('/etc/passwd')",
        "eval('1+1')",
        "'a' * 10",
        "9" * 150,
        "1 + " * 300 + "1",
        "10.0 ** 400",
        "exp(10000)",
        "1e308 * 10",
        "1e308 * 10 - 1e308 * 10",
        "1 / 0",
        "x",
        "",
    ],
)
def test_calculator_refuses_quickly(expression):
    t0 = time.monotonic()
    with pytest.raises(calc.CalcError):
        calc.calculate(expression)
    assert time.monotonic() - t0 < 0.5


async def test_calculator_errors_reach_the_model_as_results():
    out = await calculate.invoke(None, {"expression": "9**9**9"}, timeout=2)
    assert out.startswith("error:") and "too large" in out


async def test_now_uses_the_users_time_zone():
    from bot.core.messages import Incoming

    msg = Incoming(platform="test", tenant="T", channel="C", user="U", text="x", timezone="Asia/Tokyo")
    out = await now.invoke(Run(services=None, conv=None, msg=msg), {}, timeout=2)
    assert "Asia/Tokyo" in out
    msg = Incoming(platform="test", tenant="T", channel="C", user="U", text="x", timezone="Not/AZone")
    assert "UTC" in await now.invoke(Run(services=None, conv=None, msg=msg), {}, timeout=2)


async def test_channel_history_reads_the_conversation_and_filters_by_words():
    from types import SimpleNamespace

    from bot.core.messages import HistoryItem, Incoming, utcnow
    from tests.harness import RecordingConversation

    conv = RecordingConversation(history=[
        HistoryItem(user="bob", text="the invoice run failed again", ts=utcnow()),
        HistoryItem(user="carol", text="lunch at noon?", ts=utcnow()),
    ])
    services = SimpleNamespace(settings=SimpleNamespace(history_limit=50))
    run = Run(services=services, conv=conv, msg=Incoming(platform="t", tenant="T", channel="C", user="U", text="x"))
    out = await channel_history.invoke(run, {"query": "invoice failures", "hours": 2}, timeout=2)
    assert "bob: the invoice run failed again" in out and "lunch" not in out
