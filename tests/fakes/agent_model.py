"""A scripted "analyst" model for the fake OpenAI server: it plays the tool-using model
for "total sales for last month and growth vs the month before", reading the tool
results the bot sends back, so the numbers in its answer come from the real tools.

    fake.responder = sales_analyst

Step 1: call now(). Step 2: from the date, query the totals of the two previous months
with sql_query. Step 3: calculate the growth from the rows. Step 4: answer.
"""
from __future__ import annotations

import json
import re
from datetime import date

from tests.fakes.openai_server import Script, default_responder


def month_before(d: date) -> date:
    return date(d.year - 1, 12, 1) if d.month == 1 else date(d.year, d.month - 1, 1)


def totals_sql(today: date) -> tuple[str, date, date]:
    last = month_before(today)
    prev = month_before(last)
    this = date(today.year, today.month, 1)
    sql = (
        "SELECT date_trunc('month', order_date)::date AS month, sum(amount) AS total\n"
        f"FROM orders WHERE order_date >= '{prev}' AND order_date < '{this}'\n"
        "GROUP BY 1 ORDER BY 1"
    )
    return sql, prev, last


def _last_tool_round(messages: list[dict]) -> tuple[list[str], list[str]]:
    """Names of the tools called in the last assistant turn, and their results."""
    names: list[str] = []
    results: list[str] = []
    for m in messages:
        if m.get("role") == "assistant" and m.get("tool_calls"):
            names = [tc["function"]["name"] for tc in m["tool_calls"]]
            results = []
        elif m.get("role") == "tool":
            results.append(m.get("content") or "")
    return names, results


def sales_analyst(body: dict) -> Script:
    if not body.get("tools"):
        return default_responder(body)
    messages = body["messages"]
    names, results = _last_tool_round(messages)
    if not names:
        return Script(tool_calls=[{"name": "now", "arguments": {}}])
    if names == ["now"]:
        today = date.fromisoformat(re.match(r"(\d{4}-\d{2}-\d{2})", results[0]).group(1))
        sql, _, _ = totals_sql(today)
        return Script(text="", tool_calls=[{"name": "sql_query", "arguments": {"sql": sql}}])
    if names == ["sql_query"]:
        lines = results[0].splitlines()
        rows = [json.loads(line) for line in lines[1:]]
        (_, before), (_, last) = rows[-2], rows[-1]
        return Script(tool_calls=[{"name": "calculate", "arguments": {"expression": f"({last} - {before}) / {before} * 100"}}])
    if names == ["calculate"]:
        sql_result = next(m["content"] for m in messages if m.get("role") == "tool" and m["content"].startswith('{"columns"'))
        rows = [json.loads(line) for line in sql_result.splitlines()[1:]]
        (m1, before), (m2, last) = rows[-2], rows[-1]
        growth = round(float(results[0]), 1)
        return Script(text=f"Total sales for {m2[:7]} were {last}, against {before} in {m1[:7]}: growth of {growth}%.")
    return Script(text="I am not sure what to do next.")
