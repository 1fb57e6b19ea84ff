"""Composition root: wires config, database, spool, listener, worker, sender and pollers.

It owns what has a lifecycle (the Keyrings cache, whose gpg-agents it stops); only
`mailgate process` (cli/process.py) wires the same parts itself, for one pass. A first
SIGTERM/SIGINT stops
accepting, lets in-flight work finish within the shutdown timeout and exits; a second
one exits at once (the spool keeps everything that was acknowledged). SIGHUP, or an edit
of a config file (reload.py), reloads the configuration and keeps the last good one if the
new one is invalid; the IMAP pollers follow the new one (pollers/imap/run.PollerSet).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar

from sqlalchemy import Engine

from mailgate import heap
from mailgate.config import hmac_secret
from mailgate.config import load as config_mod
from mailgate.config.errors import ConfigError
from mailgate.config.model import Config
from mailgate.db import watch as db_watch
from mailgate.health import Health
from mailgate.outgoing.sender import Sender
from mailgate.outgoing.template_checks import template_problems
from mailgate.pgp.keyring import Keyrings
from mailgate.pipeline.pool import started
from mailgate.pipeline.steps import Pipeline
from mailgate.pipeline.worker import Worker
from mailgate.pollers.smtp import IntakeHandler, start_listener
from mailgate.runtime import Clock, utcnow
from mailgate.spool import Spool
from mailgate.startup import StartupError, open_stores
from mailgate.store import queue_lifecycle

if TYPE_CHECKING:
    from mailgate.observe.server import StatusServer
    from mailgate.pollers.imap.run import PollerSet

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass
class Daemon:
    config: Config
    clock: Clock = utcnow
    engine: Engine | None = None
    spool: Spool | None = None
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    listen_port: int | None = None
    keyrings: Keyrings = field(default_factory=Keyrings)  # closed when serve() ends
    health: Health = field(default_factory=Health)  # what each running part last reported
    http_port: int | None = None  # the [http] status port, when enabled
    sweep_seconds: float = 60.0  # how often the scheduler's sweeps run (tests shorten it)
    _handler: IntakeHandler | None = None
    _worker: Worker | None = None
    _sender: Sender | None = None
    _pollers: PollerSet | None = None
    _rejected: tuple[str, ...] = ()  # the problems of the last rejected reload
    _loop: asyncio.AbstractEventLoop | None = None  # the loop serve() runs on
    _follow: concurrent.futures.Future[None] | None = None  # pollers following the reload

    def reload(self, *, repeat_log: bool = True) -> bool:
        """Re-read the configuration; on any error keep running with the last good one.

        `repeat_log=False` (the file watcher): the same problems as the last rejected
        reload are not logged again, so one bad edit is one set of lines.
        """
        try:
            new = config_mod.load(self.config.path)
            problems = template_problems(new)  # what would shunt mail under the new config
            if self.engine is not None:  # a queue removed under open tickets
                with self.engine.connect() as conn:
                    problems += queue_lifecycle.config_problems(conn, new)
            if problems:
                raise ConfigError(problems)
            hmac_secret.ensure(new)  # read (or make) it now: a broken one keeps the old config
        except ConfigError as e:
            problems = tuple(e.problems)
            if repeat_log or problems != self._rejected:
                for problem in problems:
                    log.error("config reload rejected, keeping the running config: %s", problem)
            self._rejected = problems
            return False
        self._rejected = ()
        self.config = new
        for part in (self._handler, self._sender):
            if part is not None:
                part.config = new
        if self._worker is not None:
            self._worker.config = new
            self._worker.pipeline = self._pipeline(new, self._worker.pipeline)
        if self._pollers is not None and self._loop is not None:  # also from another thread
            self._follow = asyncio.run_coroutine_threadsafe(self._pollers.update(new), self._loop)
            self._follow.add_done_callback(_log_follow_error)
        log.info("config reloaded from %s: %d queue(s)", new.path, len(new.queues))
        for warning in new.warnings:
            log.warning("%s", warning)
        return True

    def _pipeline(self, cfg: Config, running: object = None) -> Pipeline:
        """The worker's pipeline, its parse processes started now (not in its first batch);
        a reload keeps the running ones if their number did not change."""
        pipeline = Pipeline(cfg, self.clock, keyrings=self.keyrings)
        pipeline.pool = started(cfg.worker.parse_processes, getattr(running, "pool", None))
        return pipeline

    def _install_signals(self, loop: asyncio.AbstractEventLoop) -> None:
        def on_term() -> None:
            if self.stop.is_set():
                log.warning("second signal: exiting now; the spool keeps acknowledged mail")
                raise SystemExit(1)
            log.info("stopping: no new connections, finishing in-flight work")
            self.stop.set()

        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, on_term)
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signal.SIGHUP, self.reload)

    async def serve(self, install_signals: bool = True) -> None:
        cfg = self.config
        loop = self._loop = asyncio.get_running_loop()
        if install_signals:
            self._install_signals(loop)
        self.engine, self.spool = await asyncio.to_thread(open_stores, cfg)
        work_wake, send_wake = asyncio.Event(), asyncio.Event()
        self._worker = Worker(cfg, self.engine, self.spool, self._pipeline(cfg))
        self._sender = Sender(cfg, self.engine, self.clock, keyrings=self.keyrings)
        self._worker.health = self._sender.health = self.health

        def spooled() -> None:
            work_wake.set()

        server = None  # bound before any task starts: a busy port is one clean line
        if cfg.listener.enabled:
            where = f"listener {cfg.listener.host}:{cfg.listener.port}"
            try:
                server, self._handler = await start_listener(cfg, self.spool, spooled)
            except OSError as e:
                raise StartupError(where, e) from e
            self.listen_port = server.sockets[0].getsockname()[1]
            log.info(
                "listening for %s on %s:%d",
                cfg.listener.mode.upper(),
                cfg.listener.host,
                self.listen_port,
            )
        status = self._start_status_server()
        tasks = [
            asyncio.create_task(
                self._worker.run(self.stop, work_wake, on_batch=send_wake.set), name="worker"
            ),
            asyncio.create_task(self._sender.run(self.stop, send_wake), name="sender"),
            asyncio.create_task(db_watch.watch(self.engine, self.health, self.stop), name="db"),
        ]
        tasks += self._optional_tasks(spooled)
        for t in tasks:
            t.add_done_callback(self._task_ended)
        log.info(
            "mailgate running: %d queue(s), database %s, spool %s, outgoing %s",
            len(cfg.queues),
            self.engine.url.render_as_string(hide_password=True),
            cfg.spool_dir,
            f"relay {cfg.relay.host}:{cfg.relay.port}"
            if cfg.relay.host
            else f"maildir {cfg.outbox_maildir}",
        )
        for warning in cfg.warnings:  # once running: a failed start stays one line
            log.warning("%s", warning)
        # each task to its first await before "ready": the config watcher has taken its
        # snapshot, so an edit right after start is a change (a parse process importing on
        # the other core made the race visible in test_reload)
        await asyncio.sleep(0)
        heap.freeze_startup()  # what start-up made: out of every full collection's walk
        try:
            self.ready.set()
            await self.stop.wait()
            if server is not None:
                server.close()
            try:
                await asyncio.wait_for(
                    self._drain(server, tasks), cfg.worker.shutdown_timeout_seconds
                )
            except TimeoutError:
                log.warning("shutdown timeout: leaving unfinished work in the spool/outbox")
                for t in tasks:
                    t.cancel()
            if status is not None:
                status.stop()
            self.spool.unlock()
            self.engine.dispose()
            self.keyrings.close()  # the gpg-agents the queues' keyrings started
        finally:  # never left frozen: the stop path may raise or be cancelled
            heap.thaw()
        log.info("mailgate stopped")

    def _start_status_server(self) -> StatusServer | None:
        """The [http] port: /metrics and /healthz (observe/), bound before any task starts."""
        http = self.config.http
        if not http.enabled:
            return None
        from mailgate.observe.metrics import DaemonCollector, registry_for
        from mailgate.observe.server import StatusServer

        assert self.engine is not None and self.spool is not None and self._worker is not None
        collector = DaemonCollector(
            self.engine,
            self.spool,
            self.health,
            self._worker.intake,
            lambda: self._pollers.connections() if self._pollers is not None else {},
        )
        try:
            server = StatusServer(http.host, http.port, registry_for(collector), self.health)
        except OSError as e:
            raise StartupError(f"http {http.host}:{http.port}", e) from e
        self.http_port = server.port
        log.info("metrics and health on http://%s:%d/metrics, /healthz", http.host, server.port)
        return server.start()

    def _task_ended(self, task: asyncio.Task[None]) -> None:
        if task.cancelled() or self.stop.is_set():
            return
        exc = task.exception()
        log.error(
            "%s stopped unexpectedly: %r; stopping the daemon", task.get_name(), exc, exc_info=exc
        )
        # a half-working daemon hides failures: stop, and let the supervisor restart us
        self.stop.set()

    def _optional_tasks(self, spooled: Callable[[], None]) -> list[asyncio.Task[None]]:
        from mailgate.scheduler.runner import run_scheduler

        assert self.engine is not None
        tasks: list[asyncio.Task[None]] = [
            asyncio.create_task(
                run_scheduler(
                    lambda: self.config,
                    self.engine,
                    self.stop,
                    self.clock,
                    interval_seconds=self.sweep_seconds,
                ),
                name="scheduler",
            )
        ]
        from mailgate.pollers.imap.run import PollerSet

        assert self.spool is not None
        self._pollers = PollerSet(
            self.spool, self.engine, self.stop, on_spooled=spooled, health=self.health
        )
        tasks.append(asyncio.create_task(self._pollers.run(self.config), name="imap"))
        if self.config.main.watch_config:
            from mailgate import reload as watcher

            tasks.append(
                asyncio.create_task(
                    watcher.watch(lambda: self.config, self._watched_reload, self.stop),
                    name="config-watch",
                )
            )
        return tasks

    def _watched_reload(self) -> None:
        self.reload(repeat_log=False)

    async def _drain(
        self, server: asyncio.AbstractServer | None, tasks: list[asyncio.Task[None]]
    ) -> None:
        # sessions in DATA finish their spool write and answer before we go
        while self._handler is not None and self._handler.in_flight:
            await asyncio.sleep(0.05)
        await asyncio.gather(*tasks, return_exceptions=True)
        if server is not None:
            await server.wait_closed()


def _log_follow_error(done: concurrent.futures.Future[None]) -> None:
    if not done.cancelled() and done.exception() is not None:
        log.error("imap: following the reloaded config failed: %r", done.exception())


def run(config: Config) -> None:
    asyncio.run(Daemon(config).serve())
