"""The agent's settings section (AGENT_*)."""
from __future__ import annotations

from typing import ClassVar

from pydantic import SecretStr

from bot.core.settings import Section, env


class AgentSettings(Section):
    title: ClassVar[str] = "Agent"

    sql_url: str | None = env(
        "AGENT_SQL_URL", None,
        description="PostgreSQL URL the agent's `sql_query` tool uses; give it a **read-only role**. Unset: "
        "`aibot_agent_ro@…/aibot_sales` on the bot's own server (created by `aibot agent load-sample`)",
    )
    sql_tables: str = env(
        "AGENT_SQL_TABLES", "orders,products,regions",
        description="comma-separated allow-list of tables `sql_query` may read (in schema `public`); "
        "their columns are described to the model",
    )
    sql_timeout: float = env("AGENT_SQL_TIMEOUT", 5.0, gt=0, le=300, description="seconds: `statement_timeout` of each agent query")
    sql_max_rows: int = env(
        "AGENT_SQL_MAX_ROWS", 200, ge=1, le=10_000, description='rows returned per query; more are cut off with `"truncated": true`'
    )
    max_steps: int = env(
        "AGENT_MAX_STEPS", 8, ge=1, le=50,
        description="tool rounds (model calls that ask for tools) per agent task; then one last call without tools answers",
    )
    tool_timeout: float = env("AGENT_TOOL_TIMEOUT", 20.0, gt=0, description="seconds per tool call")
    max_seconds: float = env("AGENT_MAX_SECONDS", 120.0, gt=0, description="wall time of a whole agent task, in seconds")
    max_tokens: int = env(
        "AGENT_MAX_TOKENS", 60_000, ge=1_000, description="prompt + completion tokens of all model calls of one task"
    )
    max_cost_usd: float = env(
        "AGENT_MAX_COST_USD", 0.25, ge=0,
        description="cost of all model calls of one task (price table; 0 turns the check off)",
    )
    auto_route: bool = env(
        "AGENT_AUTO_ROUTE", True,
        description="let mentions that ask for figures + work on them go to the agent (`/agent` always works)",
    )
    web_search: bool = env(
        "AGENT_WEB_SEARCH", False,
        description="give the agent a `web_search` tool (needs `AGENT_SEARCH_URL`); results are cited and treated "
        "as untrusted data",
    )
    search_url: str | None = env(
        "AGENT_SEARCH_URL", None,
        description="base URL of a SearxNG instance (or any server with its JSON API: `/search?q=…&format=json`), "
        "e.g. `http://searxng:8080`; enable `json` in its `search.formats`",
    )
    search_key: SecretStr | None = env(
        "AGENT_SEARCH_KEY", None, description="sent as `Authorization: Bearer …` to the search server, if set",
    )
    search_timeout: float = env("AGENT_SEARCH_TIMEOUT", 10.0, gt=0, le=60, description="seconds per web search")
    search_language: str | None = env(
        "AGENT_SEARCH_LANGUAGE", None, description="language code passed to the search server (unset: its default)",
    )
