"""The composed bot: services built once, the features set up from them, the platforms'
adapters started and served until they finish or a signal stops them."""
from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Sequence
from contextlib import suppress
from typing import TypeVar

from bot.app import composition
from bot.core.answers import CachedAnswers
from bot.core.budgets import Budgets
from bot.core.cache import Cache
from bot.core.costs import CostSettings
from bot.core.embeddings import build_embedder
from bot.core.db import Database
from bot.core.dedupe import Dedupe
from bot.core.feature import Feature, Platform
from bot.core.ledger import Ledger
from bot.core.llm import LLM, build_client
from bot.core.router import Router
from bot.core.semantic import SemanticCache
from bot.core.services import Services
from bot.core.settings import Settings

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Feature)


class App:
    """The composed bot (`bot.core.feature.Host` for the features and CLI subcommands)."""

    def __init__(self, *, settings: Settings, services: Services, platforms: Sequence[type[Platform]]) -> None:
        self.settings = settings
        self.services = services
        self.router = Router(services)
        self.platforms = tuple(platforms)
        self.http = None  # bot.core.http.HttpServer, when serving with one
        self._features: dict[type, Feature] = {}
        self._started: list[Feature] = []
        self._owns_db = False
        self._owned_client = None

    @classmethod
    async def open(
        cls,
        settings: Settings,
        *,
        db: Database | None = None,
        llm_client=None,
        migrate: bool = True,
        features: Sequence[type[Feature]] | None = None,
        platforms: Sequence[type[Platform]] | None = None,
    ) -> "App":
        """Connect storage (embedded or DATABASE_URL), migrate, build the services, set up
        the features (default: the composition root's lists)."""
        owns_db = db is None
        db = db or await Database.open(settings)
        try:
            if migrate:
                await db.upgrade()
            client = llm_client if llm_client is not None else build_client(settings)
            ledger = Ledger(db)
            cache = Cache(db, ttl_seconds=settings.cache_ttl_seconds)
            costs = settings.section(CostSettings)
            budgets = Budgets(db=db, settings=costs)
            llm = LLM(client=client, settings=settings, ledger=ledger, cache=cache, budgets=budgets)
            semantic = SemanticCache(
                db=db, embedder=build_embedder(settings, client), threshold=costs.semantic_threshold,
                ttl_seconds=costs.semantic_ttl_seconds if costs.semantic_cache else 0,
            )
            services = Services(settings=settings, db=db, ledger=ledger, cache=cache, llm=llm, dedupe=Dedupe(db),
                                answers=CachedAnswers(llm=llm, semantic=semantic), budgets=budgets)
            app = cls(settings=settings, services=services,
                      platforms=composition.platforms() if platforms is None else platforms)
            app._owns_db = owns_db
            app._owned_client = client if llm_client is None else None
            for feature in composition.features() if features is None else features:
                app._add(feature)
        except BaseException:
            if owns_db:
                await db.close()
            raise
        return app

    def _add(self, cls: type[Feature]) -> None:
        feature = cls(self)
        self._features[cls] = feature
        self.router.include(feature)

    def feature(self, cls: type[F]) -> F:
        """The running instance of a feature class."""
        return self._features[cls]  # type: ignore[return-value]

    @property
    def features(self) -> list[Feature]:
        return list(self._features.values())

    async def close(self) -> None:
        await self._stop_features()
        await self.router.drain()
        if self.http is not None:
            await self.http.stop()
        for feature in reversed(self.features):
            with suppress(Exception):
                await feature.close()
        if self._owned_client is not None:
            with suppress(Exception):
                await self._owned_client.close()
        if self._owns_db:
            await self.services.db.close()

    async def __aenter__(self) -> "App":
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    # --- platforms ------------------------------------------------------------------

    def adapters(self, *, console_only: bool = False) -> list:
        """The adapters to run: each configured platform, else the fallback (console)."""
        found = []
        if not console_only:
            for platform in self.platforms:
                if platform.fallback:
                    continue
                section = self.settings.section(platform.settings_model) if platform.settings_model else None
                if platform.configured(section):
                    found.append(platform.create(section, self.settings))
        if not found:
            fallback = next((p for p in self.platforms if p.fallback), None)
            if fallback is not None:
                found.append(fallback.create(None, self.settings))
        return found

    async def attach(self, adapter) -> None:
        """Start an adapter on this bot: events to the router, the declared commands for
        its command UI, and its channels for posts nobody asked for (digests)."""
        await adapter.start(self.router.submit, commands=self.router.declared)
        self.services.channels.register(adapter.name, adapter.conversation)

    async def serve(self, adapters: list) -> None:
        """Run until every adapter is done (console: EOF) or SIGINT/SIGTERM, then finish
        the replies in flight and stop."""
        await self._start_http(adapters)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop.set)
        started = []
        try:
            for adapter in adapters:
                await self.attach(adapter)
                started.append(adapter)
            await self._start_features()
            await _until_done(started, stop)
            await self.router.drain()
        finally:
            await self._stop_features()
            for adapter in reversed(started):
                with suppress(Exception):
                    await adapter.stop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                with suppress(NotImplementedError, RuntimeError):
                    loop.remove_signal_handler(sig)

    async def _start_http(self, adapters: list) -> None:
        """The HTTP server, when AIBOT_HTTP_PORT is set or an adapter needs it (Slack's HTTP
        mode: then on the adapter's port); every feature and adapter mounts its routes."""
        needs_http = [a for a in adapters if getattr(a, "needs_http", False)]
        port = self.settings.http_port
        if port is None and needs_http:
            port = needs_http[0].http_port
        if port is None:
            return
        from bot.core.http import HttpServer  # aiohttp's server only when there is one to run

        self.http = HttpServer(self.services, host=self.settings.http_host, port=port)
        for feature in self.features:
            feature.mount(self.http.app)
        for adapter in needs_http:
            adapter.mount(self.http.app)
        await self.http.start()

    async def _start_features(self) -> None:
        for feature in self.features:
            if feature not in self._started:
                await feature.start()
                self._started.append(feature)

    async def _stop_features(self) -> None:
        while self._started:
            with suppress(Exception):
                await self._started.pop().stop()


async def _until_done(adapters: list, stop: asyncio.Event) -> None:
    """Until a stop signal, or every adapter has finished (console: at EOF)."""
    waiters = [asyncio.create_task(a.wait_closed()) for a in adapters]
    stopper = asyncio.create_task(stop.wait())
    try:
        pending = set(waiters)
        while pending and not stop.is_set():
            _, pending = await asyncio.wait([*pending, stopper], return_when=asyncio.FIRST_COMPLETED)
            pending.discard(stopper)
    finally:
        stopper.cancel()  # the waiters end when their adapters stop
