"""The batch pattern's settings section: digests (AIBOT_SCHEDULER, AIBOT_DIGEST_*) and
bulk jobs (AIBOT_BATCH_*)."""
from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import SecretStr

from bot.core.settings import Section, env


class BatchSettings(Section):
    title: ClassVar[str] = "Batch: daily digests and bulk jobs"

    scheduler: bool = env(
        "AIBOT_SCHEDULER", True,
        description="run the digest scheduler in this process (`false` on replicas that should never post digests)",
    )
    digest_tick: float = env(
        "AIBOT_DIGEST_TICK", 30.0, gt=0, description="seconds between scheduler checks (a digest posts at most this late)"
    )
    digest_grace: int = env(
        "AIBOT_DIGEST_GRACE", 3_600, ge=0,
        description="seconds after the scheduled time a digest is still posted (after downtime); later ones are "
        "skipped and logged",
    )
    digest_quiet: Literal["note", "skip"] = env(
        "AIBOT_DIGEST_QUIET", "note", description="a channel without messages gets a one-line note (`note`) or nothing (`skip`)"
    )
    digest_max_messages: int = env("AIBOT_DIGEST_MAX_MESSAGES", 20_000, ge=1, description="most messages one digest reads")
    token: SecretStr | None = env(
        "AIBOT_BATCH_TOKEN", None, description="also opens the batch HTTP API (`/api/batch`), its older token; prefer `AIBOT_API_TOKEN`"
    )
    concurrency: int = env("AIBOT_BATCH_CONCURRENCY", 4, ge=1, le=8, description="model calls in flight for bulk jobs (1-8)")
    rpm: int = env("AIBOT_BATCH_RPM", 0, ge=0, description="requests per minute for bulk jobs (0: no limit)")
    tpm: int = env("AIBOT_BATCH_TPM", 0, ge=0, description="tokens per minute for bulk jobs (0: no limit)")
    max_attempts: int = env(
        "AIBOT_BATCH_MAX_ATTEMPTS", 6, ge=1, le=50,
        description="tries per item on 429/5xx/timeouts before it is marked failed",
    )
    max_items: int = env("AIBOT_BATCH_MAX_ITEMS", 10_000, ge=1, description="most items per job")
    poll: float = env("AIBOT_BATCH_POLL", 2.0, gt=0, description="seconds between the worker's looks for new jobs")
    provider_poll: float = env(
        "AIBOT_BATCH_PROVIDER_POLL", 60.0, gt=0, description="seconds between checks of open OpenAI Batch API batches"
    )
