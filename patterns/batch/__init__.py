"""Batch pattern: work that is not real time.

- Daily digests (`/digest on|off|now|status`, `patterns.batch.digest`): schedules in
  PostgreSQL (`schedules`, `times`), posted by the leader's scheduler (`scheduler`).
- Bulk summarize jobs with a job id (`jobs`): processed by the worker (`worker`) or sent
  through the OpenAI Batch API (`provider`); submitted with `aibot batch submit` or the
  HTTP API `/api/batch` (`api`).
- `aibot batch ...` and `aibot digest ...` on the command line (`patterns.batch.cli`).
"""
from __future__ import annotations

from contextlib import suppress
from datetime import datetime
from typing import Literal

from bot.core.commands import command
from bot.core.feature import Feature
from bot.core.messages import Incoming
from bot.core.roles import require_admin
from bot.core.tenants import TenantData
from bot.core.metrics import METRICS
from patterns.batch import times
from patterns.batch.digest import DigestReply, Digests
from patterns.batch.scheduler import RUN_COMMAND, DigestScheduler
from patterns.batch.settings import BatchSettings
from patterns.batch.worker import BatchWorker


class Batch(Feature):
    name = "batch"
    settings_model = BatchSettings
    settings: BatchSettings

    def __init__(self, host) -> None:
        super().__init__(host)
        self.digests = Digests(services=self.services, settings=self.settings)
        self.worker = BatchWorker(services=self.services, settings=self.settings)
        self.scheduler: DigestScheduler | None = None
        if self.services.tenants is not None:  # a tenant's schedules go with its export / deletion
            store = self.digests.store
            self.services.tenants.register("digest_schedules", TenantData(export=store.export_tenant,
                                                                          delete=store.delete_tenant))

    @command("digest", description="The daily digest of this channel", usage=times.USAGE)
    async def digest(self, ctx, msg: Incoming, action: Literal["on", "off", "now", "status"] = "status",
                     time: str = ""):
        """action: turn it on or off, post one now, or show its status
        time: on: the time of day, e.g. 09:00 (then a time zone and `weekdays`, both optional)"""
        if action in ("on", "off"):  # a schedule posts for the whole channel: admins decide
            require_admin(msg, "turn a channel's daily digest on or off")
        if action == "on" and not time.strip():  # the workspace's default time and zone, if it chose them
            prefs = await self.services.prefs.for_message(msg)
            time = " ".join(t for t in (prefs.digest_time, prefs.digest_tz) if t)
        return await self.digests.command(ctx, msg, action, time)

    @command(RUN_COMMAND, description="A scheduled digest (internal)", hidden=True)
    async def digest_run(self, ctx, msg: Incoming, until: str, since: str = "", tz: str = "UTC") -> DigestReply:
        """until: the end of the window (ISO 8601)
        since: its start (ISO 8601; empty: the channel's beginning)
        tz: the schedule's time zone"""
        start = datetime.fromisoformat(since) if since else None
        return await self.digests.compose(ctx, since=start, until=datetime.fromisoformat(until), tz=tz)

    def mount(self, http) -> None:
        from patterns.batch.api import mount

        mount(http, self.services, self.settings, wake=self.worker.wake)

    async def start(self) -> None:
        METRICS.on_scrape(self.queue_depth)
        self.worker.start()
        if self.settings.scheduler:
            self.scheduler = DigestScheduler(services=self.services, router=self.host.router, settings=self.settings)
            await self.scheduler.start()

    async def queue_depth(self) -> None:
        """Bulk items not done yet, for the `batch` queue gauge (a count on an index)."""
        METRICS.queue_depth.labels("batch").set(await self.worker.jobs.pending_items())

    async def stop(self) -> None:
        METRICS.forget(self.queue_depth)
        if self.scheduler is not None:
            with suppress(Exception):
                await self.scheduler.stop()
            self.scheduler = None
        await self.worker.stop()

    @classmethod
    def add_cli(cls, cli) -> None:
        from patterns.batch import cli as commands

        commands.add(cli)


FEATURE = Batch
