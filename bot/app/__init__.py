"""Composition root: builds the services once, registers the patterns, starts adapters.

The only module that imports adapters. Pattern modules are listed explicitly; the order
of answerers is the router's "cheapest pattern that fits" order (see README).
"""
from __future__ import annotations

import asyncio
import logging
import signal
from contextlib import suppress

from bot.core.cache import Cache
from bot.core.config import Settings
from bot.core.db import Database
from bot.core.dedupe import Dedupe
from bot.core.ledger import Ledger
from bot.core.ledger import register as ledger_commands
from bot.core.llm import LLM, build_client
from bot.core.router import Router
from bot.core.services import Services
from patterns import agent, chat, rag, summarize
from patterns.batch import digest

log = logging.getLogger(__name__)

# Registration order = answerer order for mentions/DMs: specialised patterns first, each
# deciding cheaply whether it fits; plain streamed chat last, as the fallback.
PATTERNS = (summarize, digest, agent, rag, chat)


class App:
    def __init__(self, *, settings: Settings, services: Services, router: Router) -> None:
        self.settings = settings
        self.services = services
        self.router = router
        self.http = None
        self._owned_client = None
        self.background: list = []  # digest scheduler, batch worker (issue 7)

    @classmethod
    async def open(cls, settings: Settings, *, db: Database | None = None, llm_client=None, migrate: bool = True) -> "App":
        """Connect storage (embedded or DATABASE_URL), migrate, build services, register patterns."""
        owns_db = db is None
        db = db or await Database.open(settings)
        try:
            if migrate:
                await db.upgrade()
            client = llm_client if llm_client is not None else build_client(settings)
            ledger = Ledger(db)
            cache = Cache(db, ttl_seconds=settings.cache_ttl_seconds)
            llm = LLM(client=client, settings=settings, ledger=ledger, cache=cache)
            services = Services(settings=settings, db=db, ledger=ledger, cache=cache, llm=llm, dedupe=Dedupe(db))
        except BaseException:
            if owns_db:
                await db.close()
            raise
        router = Router(services)
        ledger_commands(router, services)
        for module in PATTERNS:
            module.register(router, services)
        app = cls(settings=settings, services=services, router=router)
        app._owns_db = owns_db
        app._owned_client = client if llm_client is None else None
        return app

    async def close(self) -> None:
        await self._stop_background()
        await self.router.drain()
        if self.http is not None:
            await self.http.stop()
        if self._owned_client is not None:
            with suppress(Exception):
                await self._owned_client.close()
        if getattr(self, "_owns_db", False):
            await self.services.db.close()

    async def __aenter__(self) -> "App":
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    # --- adapters -------------------------------------------------------------------

    def adapters(self, *, console_only: bool = False) -> list:
        """The adapters to run: each platform with a token set, else the console."""
        found: list = []
        if not console_only:
            if self.settings.slack_bot_token is not None:
                from adapters.slack import SlackAdapter

                found.append(SlackAdapter(settings=self.settings))
            if self.settings.discord_bot_token is not None:
                from adapters.discord import DiscordAdapter

                found.append(
                    DiscordAdapter(
                        token=self.settings.discord_bot_token.get_secret_value(),
                        api_url=self.settings.discord_api_url,
                        shard_count=self.settings.discord_shard_count,
                        max_file_bytes=self.settings.discord_max_file_bytes,
                        sync_commands=self.settings.discord_sync_commands,
                    )
                )
        if not found:
            from adapters.console import ConsoleAdapter

            found.append(ConsoleAdapter(bot_name=self.settings.bot_name))
        return found

    async def serve(self, adapters: list) -> None:
        """Run until every adapter is done (console: EOF) or SIGINT/SIGTERM, then finish
        the replies in flight and stop."""
        # Slack's HTTP mode needs the HTTP server even when AIBOT_HTTP_PORT is unset
        # (it then listens on SLACK_HTTP_PORT); adapters mount their routes before it starts.
        needs_http = [a for a in adapters if getattr(a, "needs_http", False)]
        if self.settings.http_port is not None or needs_http:
            from bot.core.http import HttpServer

            port = self.settings.http_port if self.settings.http_port is not None else self.settings.slack_http_port
            self.http = HttpServer(self.services, host=self.settings.http_host, port=port)
            self._mount_batch_api(self.http.app)
            for adapter in needs_http:
                adapter.mount(self.http.app)
            await self.http.start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop.set)
        started = []
        try:
            for adapter in adapters:
                await adapter.start(self.router.submit)
                started.append(adapter)
                self.services.channels.register(adapter.name, adapter.conversation)
            await self._start_background()
            waiters = [asyncio.create_task(a.wait_closed()) for a in started]
            stopper = asyncio.create_task(stop.wait())
            await asyncio.wait([*waiters, stopper], return_when=asyncio.FIRST_COMPLETED)
            if not stop.is_set():
                # one adapter finished (console EOF): the others keep going unless it was the only one
                pending = [w for w in waiters if not w.done()]
                if pending:
                    await asyncio.wait([*pending, stopper], return_when=asyncio.FIRST_COMPLETED)
            stopper.cancel()
            await self.router.drain()
        finally:
            await self._stop_background()
            for adapter in reversed(started):
                with suppress(Exception):
                    await adapter.stop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                with suppress(NotImplementedError, RuntimeError):
                    loop.remove_signal_handler(sig)

    # --- batch pattern: digest scheduler and bulk-job worker (issue 7) ----------------

    def _batch_worker(self):
        if not hasattr(self, "_worker"):
            from patterns.batch.worker import BatchWorker

            self._worker = BatchWorker(services=self.services)
        return self._worker

    def _mount_batch_api(self, http_app) -> None:
        from patterns.batch.api import mount

        mount(http_app, self.services, wake=self._batch_worker().wake)

    async def _start_background(self) -> None:
        if self.background:
            return
        worker = self._batch_worker()
        worker.start()
        self.background.append(worker)
        if self.settings.scheduler_enabled:
            from patterns.batch.scheduler import DigestScheduler

            scheduler = DigestScheduler(services=self.services, router=self.router)
            await scheduler.start()
            self.background.append(scheduler)

    async def _stop_background(self) -> None:
        while self.background:
            with suppress(Exception):
                await self.background.pop().stop()
