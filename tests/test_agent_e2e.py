"""End to end on the console: `aibot agent load-sample`, then `aibot run` with piped
stdin asks for last month's sales and growth; the numbers printed are the ones a direct
SQL query on the sample data gives, and nothing in the database changed."""
from __future__ import annotations

import json

import pytest

from patterns.agent.sample import checksum
from tests.test_agent_loop import TASK, analyst, expected_totals, numbers  # noqa: F401 (fixture)
from tests.test_console_e2e import aibot


@pytest.mark.slow
async def test_console_sales_question_gets_the_numbers_sql_gives(env, analyst, sales_db):
    env = {k: v for k, v in env.items() if not k.startswith("AGENT_")}  # the default: the sample DB
    load = aibot("agent", "load-sample", env=env)
    assert load.returncode == 0, load.stderr.decode()[-2000:]
    assert "read-only role aibot_agent_ro" in load.stdout.decode()
    before_sum = await checksum(sales_db)

    stdin = f"@aibot {TASK}\n/agent {TASK}\n@aibot thanks!\n".encode()
    out = aibot("run", env=env, stdin=stdin, timeout=90)
    assert out.returncode == 0, out.stderr.decode()[-2000:]
    text = out.stdout.decode()
    assert "Traceback" not in out.stderr.decode()
    answers = [line for line in text.splitlines() if line.startswith("Total sales for")]
    assert len(answers) == 2  # the mention went to the agent, and so did /agent
    before, last = await expected_totals(sales_db)
    growth = round((last - before) / before * 100, 1)
    for answer in answers:
        found = numbers(answer)
        assert last in found and before in found and growth in found
    assert text.count("▸ running SQL:") == 2 and "```sql" in text
    assert "aibot: Fake answer about: tester: thanks!" in text  # a simple mention stays with chat
    assert await checksum(sales_db) == before_sum

    stats = json.loads(aibot("stats", "--json", env=env).stdout)
    agent = next(r for r in stats if r["pattern"] == "agent")
    assert agent["requests"] == 8 and agent["errors"] == 0  # 4 model calls per run

    runs = json.loads(aibot("agent", "runs", "--json", env=env).stdout)
    assert [r["steps"] for r in runs] == [4, 4] and all(r["limit"] is None and r["tokens"] > 0 for r in runs)
    table = aibot("agent", "runs", env=env).stdout.decode()
    assert "steps" in table and "stopped by" in table


def test_load_sample_without_the_rights_says_what_is_needed(env, sales_db):
    from patterns.agent.sample import readonly_url

    out = aibot("agent", "load-sample", env={**env, "DATABASE_URL": readonly_url(sales_db)})
    assert out.returncode == 2
    err = out.stderr.decode()
    assert "could not create the sample database" in err and "CREATEDB and CREATEROLE" in err
    assert "Traceback" not in err


def test_load_sample_with_a_password_says_how_to_set_the_url_without_printing_it(env, sales_db):
    env = {k: v for k, v in env.items() if not k.startswith("AGENT_")}
    out = aibot("agent", "load-sample", "--password", "Zq9-not-shown-Zq9", env=env)
    assert out.returncode == 0, out.stderr.decode()[-2000:]
    text = out.stdout.decode() + out.stderr.decode()
    assert "AGENT_SQL_URL=postgresql+asyncpg://aibot_agent_ro:***@" in text and "Zq9-not-shown-Zq9" not in text
