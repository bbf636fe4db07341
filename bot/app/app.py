"""The composed bot: services built once, the features set up from them, the platforms'
adapters started and served until they finish or a signal stops them."""
from __future__ import annotations

import asyncio
import errno
import logging
import signal
from datetime import timedelta
from functools import partial
from collections.abc import Sequence
from contextlib import suppress
from typing import TypeVar

from bot.app import composition
from bot.core.answer_cache import CachedAnswers
from bot.core.answer_store import AnswerStore
from bot.core.answers import Answers
from bot.core.budgets import Budgets, workspace_budget_from
from bot.core.cache import Cache
from bot.core.costs import CostSettings
from bot.core.embeddings import build_embedder
from bot.core.db import Database
from bot.core.errors import ConfigError
from bot.core.dedupe import Dedupe
from bot.core.housekeeping import Housekeeping
from bot.core.feedback import FeedbackStore
from bot.core.feature import Feature, Platform
from bot.core.journal import Journal
from bot.core.peers import Peers
from bot.core.ledger import Ledger
from bot.core.load import Load
from bot.core.llm import LLM, build_client
from bot.core.metrics import METRICS
from bot.core.router import Router
from bot.core.semantic import SemanticCache
from bot.core.services import Services
from bot.core.settings import Settings
from bot.core.tenants import TenantData, Tenants, delete_usage, usage_rows

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Feature)


class App:
    """The composed bot (`bot.core.feature.Host` for the features and CLI subcommands)."""

    def __init__(self, *, settings: Settings, services: Services, platforms: Sequence[type[Platform]]) -> None:
        self.settings = settings
        self.services = services
        self.router = Router(services)
        services.ledger.on_unreachable = self.router.outage.noticed  # a failed usage write starts the recovery too
        self.platforms = tuple(platforms)
        self.http = None  # bot.core.http.HttpServer, when serving with one
        self.stopped_by: int | None = None  # the signal that ended `serve`, if one did
        self._features: dict[type, Feature] = {}
        self._started: list[Feature] = []
        self._owns_db = False
        self._owned_client = None
        self.housekeeping = Housekeeping(jobs={})  # set by `open`: purges of expired rows while serving

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
            load = Load(limit=settings.max_in_flight, notice_after=settings.queued_notice_seconds,
                        bulk_limit=settings.max_bulk_in_flight)
            if db.session.bulk_share is None:  # a database given from outside: bulk still gets only a share
                db.session.bulk_share = settings.bulk_share
            ledger = Ledger(db, load=load)
            cache = Cache(db, ttl_seconds=settings.cache_ttl_seconds)
            costs = settings.section(CostSettings)
            budgets = Budgets(db=db, settings=costs, ledger=ledger)
            llm = LLM(client=client, settings=settings, ledger=ledger, cache=cache, budgets=budgets)
            semantic = SemanticCache(
                db=db, embedder=build_embedder(settings, client), threshold=costs.semantic_threshold,
                ttl_seconds=costs.semantic_ttl_seconds if costs.semantic_cache else 0,
            )
            journal = Journal(db=db, lease=settings.journal_lease,
                              spool_dir=settings.data_dir / "held" if settings.data_dir else None)
            services = Services(settings=settings, db=db, ledger=ledger, cache=cache, llm=llm,
                                dedupe=Dedupe(db, journal=journal), journal=journal,
                                load=load, feedback=FeedbackStore(db, ledger=ledger),
                                answer_cache=CachedAnswers(llm=llm, semantic=semantic), budgets=budgets,
                                peers=Peers(db=db, owner=journal.owner, lease=settings.journal_lease))
            services.feedback.on_thumbs_down.append(services.answer_cache.evict)  # 👎 on a cached answer
            # Stop and Regenerate from whichever process a press reaches
            store = AnswerStore(db, retention=timedelta(days=settings.answer_retention_days))
            services.answers = Answers(store=store)
            services.tenants = Tenants(db, grace=timedelta(days=settings.tenant_grace_days))
            services.tenants.register("answer cache", TenantData(export=semantic.export_tenant,
                                                                 delete=semantic.delete_tenant))
            services.tenants.register("answers", TenantData(export=store.export_tenant, delete=store.delete_tenant))
            services.tenants.register("usage", TenantData(
                export=partial(usage_rows, db, ledger=ledger), delete=partial(delete_usage, db, ledger=ledger)))
            app = cls(settings=settings, services=services,
                      platforms=composition.platforms() if platforms is None else platforms)
            budgets.workspace_budget = workspace_budget_from(services)  # /aibot settings' monthly_budget_usd
            app._owns_db = owns_db
            app.housekeeping = Housekeeping(jobs={
                "expired cache entries": cache.purge_expired,
                "expired semantic cache entries": semantic.purge_expired,
                "old duplicate-delivery records": services.dedupe.purge,
            })
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
        if self.router.recovery is not None:
            await self.router.recovery.close()
        await self.router.drain()
        await self.router.outage.close()
        if self.http is not None:
            await self.http.stop()
        for feature in reversed(self.features):
            with suppress(Exception):
                await feature.close()
        if self._owned_client is not None:
            with suppress(Exception):
                await self._owned_client.close()
        if self.services.peers is not None:  # the other processes take this one's shares
            await self.services.peers.leave()
        await self.services.answers.close()  # the answers' rows written, the Stop listener closed
        await self.services.ledger.close()  # every usage row written before the database goes
        if self.services.journal is not None:
            await self.services.journal.close()  # answers delivered are marked so before it goes
        if self._owns_db:
            await self.services.db.close()
        METRICS.process_exited()  # multi-process mode: this process's live gauges go

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
                elif (missing := platform.incomplete(section)) is not None:
                    raise ConfigError(missing)
        if not found:
            fallback = next((p for p in self.platforms if p.fallback), None)
            if fallback is not None:
                found.append(fallback.create(None, self.settings))
        return found

    async def attach(self, adapter) -> None:
        """Start an adapter on this bot: events to the router, the declared commands for
        its command UI, and its channels for posts nobody asked for (digests)."""
        bind = getattr(adapter, "bind", None)  # an adapter that keeps state in the bot's storage
        if bind is not None:
            bind(self.services)
        # counted among the processes serving this platform (a workspace's limits are split
        # between the ones writing there) before its first write
        if self.services.peers is not None:
            await self.services.peers.serve(adapter.name, active=getattr(adapter, "active_tenants", None))
        recovery = self.router.recovery
        if recovery is not None:  # its answers journaled, from the first event on
            recovery.serve(adapter)
        await adapter.start(self.router.submit, commands=self.router.declared)
        self.services.channels.register(adapter.name, adapter.conversation)
        if recovery is not None:  # and a crashed process's cut-off answers taken over
            recovery.start()

    async def serve(self, adapters: list) -> None:
        """Run until every adapter is done (console: EOF) or SIGINT/SIGTERM, then finish
        the replies in flight and stop."""
        await self._start_http(adapters)
        stop, force = asyncio.Event(), asyncio.Event()
        loop = asyncio.get_running_loop()

        def on_signal(sig: signal.Signals) -> None:
            if stop.is_set():  # a second Ctrl-C: close the answers now
                force.set()
            self.stopped_by = self.stopped_by or sig
            stop.set()

        for sig in (signal.SIGINT, signal.SIGTERM):
            with suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, on_signal, sig)
        started = []
        try:
            for adapter in adapters:
                await self.attach(adapter)
                started.append(adapter)
            await self._start_features()
            self.housekeeping.start()
            await _until_done(started, stop)
            await self._finish_in_flight(force)
        finally:
            await self.housekeeping.stop()
            await self._stop_features()
            if self.router.recovery is not None:
                await self.router.recovery.close()
            for adapter in reversed(started):
                with suppress(Exception):
                    await adapter.stop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                with suppress(NotImplementedError, RuntimeError):
                    loop.remove_signal_handler(sig)

    async def _finish_in_flight(self, force: asyncio.Event) -> None:
        """Let the answers in flight finish, for AIBOT_SHUTDOWN_GRACE seconds after a
        signal (a second Ctrl-C cuts it short); then each is closed with a note."""
        if self.stopped_by is None:  # every adapter finished (console: EOF): wait for all
            await self.router.drain()
            return
        drained = asyncio.create_task(self.router.drain())
        forced = asyncio.create_task(force.wait())
        await asyncio.wait({drained, forced}, timeout=self.settings.shutdown_grace, return_when=asyncio.FIRST_COMPLETED)
        forced.cancel()
        if not drained.done():
            log.warning("closing %d answer(s) still in flight at shutdown", self.router.in_flight)
            await self.router.close_in_flight()
            drained.cancel()

    async def _start_http(self, adapters: list) -> None:
        """The HTTP server, when AIBOT_HTTP_PORT is set or an adapter needs it (Slack's HTTP
        mode: then on the adapter's port); every feature and adapter mounts its routes."""
        needs_http = [a for a in adapters if getattr(a, "needs_http", False)]
        port, variable = self.settings.http_port, "AIBOT_HTTP_PORT"
        if port is None and needs_http:
            port, variable = needs_http[0].http_port, getattr(needs_http[0], "http_port_variable", "AIBOT_HTTP_PORT")
        if port is None:
            return
        from bot.core.http import HttpServer  # aiohttp's server only when there is one to run

        self.http = HttpServer(self.services, host=self.settings.http_host, port=port,
                               reuse_port=self.settings.workers > 1)
        for feature in self.features:
            feature.mount(self.http.app)
        for adapter in needs_http:
            adapter.mount(self.http.app)
            front = getattr(adapter, "front_routes", None)  # paths answered on a thread of their own
            for path, handler in (front() if front is not None else {}).items():
                self.http.add_front(path, handler)
        try:
            await self.http.start()
        except OSError as exc:
            await self.http.stop()
            self.http = None
            reason = "already in use" if exc.errno == errno.EADDRINUSE else exc.strerror or type(exc).__name__
            raise ConfigError(
                f"The HTTP server cannot listen on {self.settings.http_host}:{port} ({reason}); "
                f"set {variable} to a free port, e.g. {variable}={_suggest(port)}"
            ) from None

    async def _start_features(self) -> None:
        for feature in self.features:
            if feature not in self._started:
                await feature.start()
                self._started.append(feature)

    async def _stop_features(self) -> None:
        while self._started:
            with suppress(Exception):
                await self._started.pop().stop()


def _suggest(port: int) -> int:
    return 8080 if port != 8080 else 8081


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
