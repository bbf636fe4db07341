"""Typed settings, read once from the environment / `.env` and passed down.

Every variable is listed in the README's configuration table. Field names are what the
code uses; the alias is the environment variable a user sets.
"""
from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def _env(name: str, *more: str):
    return AliasChoices(name, *more)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        populate_by_name=True,
        case_sensitive=False,
    )

    # --- identity -------------------------------------------------------------------
    bot_name: str = Field("aibot", validation_alias=_env("AIBOT_BOT_NAME"))
    data_dir: Path = Field(Path(".aibot"), validation_alias=_env("AIBOT_DATA_DIR"))
    log_level: str = Field("WARNING", validation_alias=_env("AIBOT_LOG_LEVEL"))

    # --- LLM ------------------------------------------------------------------------
    openai_api_key: SecretStr | None = Field(None, validation_alias=_env("OPENAI_API_KEY"))
    openai_base_url: str | None = Field(None, validation_alias=_env("OPENAI_BASE_URL"))
    chat_model: str = Field("gpt-4o-mini", validation_alias=_env("AIBOT_CHAT_MODEL"))
    fast_model: str = Field("gpt-4o-mini", validation_alias=_env("AIBOT_FAST_MODEL"))
    llm_timeout: float = Field(60.0, gt=0, validation_alias=_env("AIBOT_LLM_TIMEOUT"))
    llm_max_retries: int = Field(3, ge=0, le=10, validation_alias=_env("AIBOT_LLM_MAX_RETRIES"))
    context_tokens: int = Field(
        12_000, ge=500, validation_alias=_env("AIBOT_CONTEXT_TOKENS")
    )  # prompt budget per call: long inputs are split / trimmed to fit it
    answer_max_tokens: int = Field(1_024, ge=16, validation_alias=_env("AIBOT_ANSWER_MAX_TOKENS"))
    prices: str | None = Field(None, validation_alias=_env("AIBOT_PRICES"))
    cache_ttl_seconds: int = Field(7 * 24 * 3600, ge=0, validation_alias=_env("AIBOT_CACHE_TTL"))

    # --- input limits ---------------------------------------------------------------
    max_message_chars: int = Field(
        100_000, ge=100, validation_alias=_env("AIBOT_MAX_MESSAGE_CHARS")
    )
    max_summarize_chars: int = Field(
        2_000_000, ge=1_000, validation_alias=_env("AIBOT_MAX_SUMMARIZE_CHARS")
    )
    history_limit: int = Field(200, ge=1, validation_alias=_env("AIBOT_HISTORY_LIMIT"))

    # --- storage --------------------------------------------------------------------
    database_url: str | None = Field(None, validation_alias=_env("DATABASE_URL"))

    # --- HTTP (health, metrics; Slack HTTP mode and the batch API mount here) --------
    http_host: str = Field("127.0.0.1", validation_alias=_env("AIBOT_HTTP_HOST"))
    http_port: int | None = Field(None, ge=0, le=65535, validation_alias=_env("AIBOT_HTTP_PORT"))

    # --- platforms ------------------------------------------------------------------
    slack_bot_token: SecretStr | None = Field(None, validation_alias=_env("SLACK_BOT_TOKEN"))
    slack_app_token: SecretStr | None = Field(None, validation_alias=_env("SLACK_APP_TOKEN"))
    slack_signing_secret: SecretStr | None = Field(
        None, validation_alias=_env("SLACK_SIGNING_SECRET")
    )
    slack_api_url: str | None = Field(None, validation_alias=_env("SLACK_API_URL"))
    # --- Slack adapter (issue 3) -----------------------------------------------------
    slack_http_path: str = Field("/slack/events", validation_alias=_env("SLACK_HTTP_PATH"))
    slack_http_port: int = Field(3000, ge=0, le=65535, validation_alias=_env("SLACK_HTTP_PORT"))
    slack_max_file_mb: float = Field(20.0, gt=0, validation_alias=_env("SLACK_MAX_FILE_MB"))
    slack_update_interval: float = Field(1.0, ge=0, validation_alias=_env("SLACK_UPDATE_INTERVAL"))
    slack_max_retries: int = Field(3, ge=0, le=10, validation_alias=_env("SLACK_MAX_RETRIES"))
    discord_bot_token: SecretStr | None = Field(None, validation_alias=_env("DISCORD_BOT_TOKEN"))
    discord_api_url: str | None = Field(None, validation_alias=_env("DISCORD_API_URL"))

    # --- Discord (issue 4) --------------------------------------------------------------
    discord_shard_count: int | None = Field(
        None, ge=1, validation_alias=_env("DISCORD_SHARD_COUNT")
    )  # unset: discord.py asks /gateway/bot for the recommended count
    discord_max_file_bytes: int = Field(
        25 * 1024 * 1024, ge=1, validation_alias=_env("DISCORD_MAX_FILE_BYTES")
    )  # attachments larger than this are refused before download
    discord_sync_commands: bool = Field(True, validation_alias=_env("DISCORD_SYNC_COMMANDS"))
    # --- agent pattern (patterns/agent) ---------------------------------------------
    agent_sql_url: str | None = Field(None, validation_alias=_env("AGENT_SQL_URL"))
    agent_sql_tables: str = Field("orders,products,regions", validation_alias=_env("AGENT_SQL_TABLES"))
    agent_sql_timeout: float = Field(5.0, gt=0, le=300, validation_alias=_env("AGENT_SQL_TIMEOUT"))
    agent_sql_max_rows: int = Field(200, ge=1, le=10_000, validation_alias=_env("AGENT_SQL_MAX_ROWS"))
    agent_max_steps: int = Field(8, ge=1, le=50, validation_alias=_env("AGENT_MAX_STEPS"))
    agent_tool_timeout: float = Field(20.0, gt=0, validation_alias=_env("AGENT_TOOL_TIMEOUT"))
    agent_max_seconds: float = Field(120.0, gt=0, validation_alias=_env("AGENT_MAX_SECONDS"))
    agent_max_tokens: int = Field(60_000, ge=1_000, validation_alias=_env("AGENT_MAX_TOKENS"))
    agent_max_cost_usd: float = Field(0.25, ge=0, validation_alias=_env("AGENT_MAX_COST_USD"))
    agent_auto_route: bool = Field(True, validation_alias=_env("AGENT_AUTO_ROUTE"))

    # --- batch pattern: scheduled digests and bulk jobs (issue 7) ----------------------
    scheduler_enabled: bool = Field(True, validation_alias=_env("AIBOT_SCHEDULER"))
    digest_grace: int = Field(3_600, ge=0, validation_alias=_env("AIBOT_DIGEST_GRACE"))  # seconds
    digest_quiet: Literal["note", "skip"] = Field("note", validation_alias=_env("AIBOT_DIGEST_QUIET"))
    digest_max_messages: int = Field(20_000, ge=1, validation_alias=_env("AIBOT_DIGEST_MAX_MESSAGES"))
    digest_tick: float = Field(30.0, gt=0, validation_alias=_env("AIBOT_DIGEST_TICK"))  # seconds
    batch_token: SecretStr | None = Field(None, validation_alias=_env("AIBOT_BATCH_TOKEN"))
    batch_concurrency: int = Field(4, ge=1, le=8, validation_alias=_env("AIBOT_BATCH_CONCURRENCY"))
    batch_rpm: int = Field(0, ge=0, validation_alias=_env("AIBOT_BATCH_RPM"))  # 0: no limit
    batch_tpm: int = Field(0, ge=0, validation_alias=_env("AIBOT_BATCH_TPM"))  # 0: no limit
    batch_max_attempts: int = Field(6, ge=1, le=50, validation_alias=_env("AIBOT_BATCH_MAX_ATTEMPTS"))
    batch_max_items: int = Field(10_000, ge=1, validation_alias=_env("AIBOT_BATCH_MAX_ITEMS"))
    batch_poll: float = Field(2.0, gt=0, validation_alias=_env("AIBOT_BATCH_POLL"))  # seconds
    batch_provider_poll: float = Field(60.0, gt=0, validation_alias=_env("AIBOT_BATCH_PROVIDER_POLL"))  # seconds
    # --- knowledge base (RAG) ---------------------------------------------------------
    embedding_provider: str = Field(
        "local", pattern="^(local|openai)$", validation_alias=_env("AIBOT_EMBEDDING_PROVIDER")
    )  # local: sentence-transformers offline; openai: the OpenAI-compatible /embeddings endpoint
    embedding_model: str | None = Field(None, validation_alias=_env("AIBOT_EMBEDDING_MODEL"))
    embedding_dimensions: int | None = Field(
        None, ge=1, le=2000, validation_alias=_env("AIBOT_EMBEDDING_DIMENSIONS")
    )  # openai only: ask the endpoint for shorter vectors (text-embedding-3-*)
    kb_max_file_bytes: int = Field(20 * 1024 * 1024, ge=1, validation_alias=_env("AIBOT_KB_MAX_FILE_BYTES"))
    kb_max_pages: int = Field(2_000, ge=1, validation_alias=_env("AIBOT_KB_MAX_PAGES"))
    kb_max_chars: int = Field(5_000_000, ge=100, validation_alias=_env("AIBOT_KB_MAX_CHARS"))
    kb_chunk_tokens: int = Field(200, ge=20, le=2_000, validation_alias=_env("AIBOT_KB_CHUNK_TOKENS"))
    kb_chunk_overlap: int = Field(30, ge=0, le=500, validation_alias=_env("AIBOT_KB_CHUNK_OVERLAP"))
    kb_top_k: int = Field(5, ge=1, le=50, validation_alias=_env("AIBOT_KB_TOP_K"))
    kb_min_score: float = Field(
        0.30, ge=-1, le=1, validation_alias=_env("AIBOT_KB_MIN_SCORE")
    )  # cosine similarity below which a passage does not count as an answer source
    kb_strong_score: float = Field(
        0.50, ge=-1, le=1, validation_alias=_env("AIBOT_KB_STRONG_SCORE")
    )  # a mention goes to RAG (not plain chat) when the best passage scores at least this
    kb_hybrid: bool = Field(True, validation_alias=_env("AIBOT_KB_HYBRID"))  # dense candidates re-ranked with full-text (RRF)
    kb_ef_search: int = Field(100, ge=10, le=1_000, validation_alias=_env("AIBOT_KB_EF_SEARCH"))

    @field_validator(
        "openai_api_key",
        "openai_base_url",
        "database_url",
        "prices",
        "slack_bot_token",
        "slack_app_token",
        "slack_signing_secret",
        "slack_api_url",
        "discord_bot_token",
        "discord_api_url",
        "agent_sql_url",
        "embedding_model",
        "embedding_dimensions",
        mode="before",
    )
    @classmethod
    def _blank_is_unset(cls, value):
        # `FOO=` in a .env file means "not set", not "set to the empty string".
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @field_validator("http_port", "discord_shard_count", mode="before")
    @classmethod
    def _blank_port(cls, value):
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @property
    def llm_configured(self) -> bool:
        return self.openai_api_key is not None or self.openai_base_url is not None

    @property
    def platforms(self) -> list[str]:
        """Platforms with a token set; the console is used when this is empty."""
        found = []
        if self.slack_bot_token is not None:
            found.append("slack")
        if self.discord_bot_token is not None:
            found.append("discord")
        return found


LLM_SETUP_HINT = (
    "No language model is configured. Set OPENAI_API_KEY (e.g. OPENAI_API_KEY=sk-...) "
    "or point OPENAI_BASE_URL at an OpenAI-compatible server, e.g. "
    "OPENAI_BASE_URL=http://localhost:11434/v1 AIBOT_CHAT_MODEL=llama3.1 for a local Ollama "
    "(or http://localhost:8000/v1 for vLLM)."
)
