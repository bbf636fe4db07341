"""Agent pattern: multi-step requests answered with tools (knowledge base, calculator,
read-only SQL, channel history, the date), with visible steps and hard limits.

Entry points: `/agent <task>`, and mentions/DMs that `needs_tools` judges to need data
and computation (a cheap text test, no model call: simple requests never get here).
`aibot agent load-sample|runs` on the command line (`patterns.agent.cli`).
"""
from __future__ import annotations

import logging

from bot.core.commands import answerer, command
from bot.core.errors import ConfigError
from bot.core.feature import Feature
from bot.core.messages import Incoming, Reply
from bot.core.settings import LLM_SETUP_HINT
from patterns.agent.loop import PATTERN, AgentLimits, Outcome, run_agent
from patterns.agent.route import needs_tools, wants_web
from patterns.agent.sample import readonly_url
from patterns.agent.settings import AgentSettings
from patterns.agent.sql import SqlRunner
from patterns.agent.toolbox import ALL, WEB, Run
from patterns.agent.websearch import WebSearch

log = logging.getLogger(__name__)

__all__ = ["PATTERN", "Agent", "AgentLimits", "AgentSettings", "Outcome", "Run", "run_agent", "needs_tools",
           "sql_runner"]


def sql_runner(settings: AgentSettings, db_url: str | None) -> SqlRunner | None:
    """The SQL tool's runner: AGENT_SQL_URL, else the sample database's read-only role on
    the bot's own server (what `aibot agent load-sample` creates)."""
    url = settings.sql_url or (readonly_url(db_url) if db_url else None)
    if url is None:
        return None
    tables = tuple(t.strip() for t in settings.sql_tables.split(",") if t.strip())
    return SqlRunner(url=url, tables=tables, timeout=settings.sql_timeout, max_rows=settings.sql_max_rows)


def web_search(settings: AgentSettings) -> WebSearch | None:
    """The web_search tool's provider when AGENT_WEB_SEARCH is on (off by default)."""
    if not settings.web_search:
        return None
    if not settings.search_url:
        raise ConfigError("AGENT_WEB_SEARCH=true needs a search server: set AGENT_SEARCH_URL to a SearxNG "
                          "instance with JSON output enabled, e.g. AGENT_SEARCH_URL=http://localhost:8888")
    key = settings.search_key.get_secret_value() if settings.search_key else None
    return WebSearch(url=settings.search_url, key=key, timeout=settings.search_timeout,
                     language=settings.search_language)


class Agent(Feature):
    name = "agent"
    settings_model = AgentSettings
    settings: AgentSettings

    def __init__(self, host) -> None:
        super().__init__(host)
        self.sql = sql_runner(self.settings, getattr(self.services.db, "url", None))
        self.search = web_search(self.settings)
        self.tools = ALL + WEB if self.search is not None else ALL

    def run(self, ctx, msg: Incoming, task: str, *, web: bool = True):
        """The agent working on `task`: status lines, then the answer (streamed). `web`:
        the workspace allows web search (its `web_search` setting)."""
        limits = AgentLimits.from_settings(self.settings, answer_tokens=self.host.settings.answer_max_tokens)
        search = self.search if web else None
        run = Run(services=self.services, conv=ctx.conv, msg=msg, sql=self.sql, search=search)
        return run_agent(run, task, limits=limits, tools=self.tools if search is not None else ALL)

    @command("agent", description="A multi-step task with tools: knowledge base, calculator, read-only SQL, "
             "channel history", usage="/agent <task>",
             missing="Tell me the task, e.g. `/agent total sales for last month and growth vs the month before`.")
    async def agent_command(self, ctx, msg: Incoming, task: str):
        """task: what to do"""
        if not self.services.llm.configured:
            return Reply(LLM_SETUP_HINT, ephemeral=True)
        prefs = await self.services.prefs.for_message(msg)
        return self.run(ctx, msg, task, web=prefs.web_search)

    @answerer
    async def figures(self, ctx, msg: Incoming):
        """Mentions that ask for figures from data and work on them, or for current
        information from the web when web search is on (AGENT_AUTO_ROUTE)."""
        if not (self.settings.auto_route and self.services.llm.configured):
            return None
        if not (needs_tools(msg.text) or (self.search is not None and wants_web(msg.text))):
            return None
        prefs = await self.services.prefs.for_message(msg)
        if not prefs.auto_route:  # the workspace turned it off
            return None
        if not needs_tools(msg.text) and not prefs.web_search:  # only the web would help, and it is off here
            return None
        return self.run(ctx, msg, msg.text.strip(), web=prefs.web_search)

    @classmethod
    def add_cli(cls, cli) -> None:
        from patterns.agent import cli as commands

        commands.add(cli)


FEATURE = Agent
