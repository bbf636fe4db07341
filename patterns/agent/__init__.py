"""Agent pattern: multi-step requests answered with tools (knowledge base, calculator,
read-only SQL, channel history, the date), with visible steps and hard limits.

Entry points: `/agent <task>`, and mentions/DMs that `needs_tools` judges to need data
and computation (a cheap text test, no model call: simple requests never get here).
"""
from __future__ import annotations

import logging

from bot.core.messages import Incoming, Reply
from patterns.agent.loop import PATTERN, AgentLimits, Outcome, run_agent
from patterns.agent.route import needs_tools
from patterns.agent.sample import readonly_url
from patterns.agent.sql import SqlRunner
from patterns.agent.toolbox import ALL, Run

log = logging.getLogger(__name__)

__all__ = ["PATTERN", "AgentLimits", "Outcome", "Run", "run_agent", "needs_tools", "register", "sql_runner"]


def sql_runner(settings, db_url: str | None) -> SqlRunner | None:
    """The SQL tool's runner: AGENT_SQL_URL, else the sample database's read-only role on
    the bot's own server (what `aibot agent load-sample` creates)."""
    url = settings.agent_sql_url or (readonly_url(db_url) if db_url else None)
    if url is None:
        return None
    tables = tuple(t.strip() for t in settings.agent_sql_tables.split(",") if t.strip())
    return SqlRunner(url=url, tables=tables, timeout=settings.agent_sql_timeout, max_rows=settings.agent_sql_max_rows)


def register(router, services) -> None:
    settings = services.settings
    runner = sql_runner(settings, getattr(services.db, "url", None))
    limits = AgentLimits.from_settings(settings)

    async def work(ctx, msg: Incoming, task: str):
        run = Run(services=services, conv=ctx.conv, msg=msg, sql=runner)
        return run_agent(run, task, limits=limits, tools=ALL)

    @router.command("agent", help="a multi-step task with tools: knowledge base, calculator, read-only SQL, channel history",
                    usage="/agent <task>")
    async def agent_command(ctx, msg: Incoming):
        if not ctx.args:
            return Reply("Tell me the task, e.g. `/agent total sales for last month and growth vs the month before`.",
                         ephemeral=True)
        if not services.llm.configured:
            from bot.core.config import LLM_SETUP_HINT

            return Reply(LLM_SETUP_HINT, ephemeral=True)
        return await work(ctx, msg, ctx.args)

    if settings.agent_auto_route:

        async def fits(ctx, msg: Incoming) -> bool:
            return services.llm.configured and needs_tools(msg.text)

        @router.answerer("agent", fits=fits)
        async def agent_answer(ctx, msg: Incoming):
            return await work(ctx, msg, msg.text.strip())
