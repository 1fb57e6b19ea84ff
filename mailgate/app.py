"""Composition root: wires config, database, spool, listener, worker, sender and pollers.

It owns what has a lifecycle (the Keyrings cache, whose gpg-agents it stops); only
`mailgate process` (cli/process.py) wires the same parts itself, for one pass. A first
SIGTERM/SIGINT stops
accepting, lets in-flight work finish within the shutdown timeout and exits; a second
one exits at once (the spool keeps everything that was acknowledged). SIGHUP reloads
the configuration and keeps the last good one if the new one is invalid.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from sqlalchemy import Engine

from mailgate.config import hmac_secret
from mailgate.config import load as config_mod
from mailgate.config.errors import ConfigError
from mailgate.config.model import Config
from mailgate.db import watch as db_watch
from mailgate.health import Health
from mailgate.outgoing.sender import Sender
from mailgate.pgp.keyring import Keyrings
from mailgate.pipeline.steps import Pipeline
from mailgate.pipeline.worker import Worker
from mailgate.pollers.smtp import IntakeHandler, start_listener
from mailgate.runtime import Clock, utcnow
from mailgate.spool import Spool
from mailgate.startup import StartupError, open_stores

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
    health: Health = field(default_factory=Health)  # what each part last reported
    _handler: IntakeHandler | None = None
    _worker: Worker | None = None
    _sender: Sender | None = None

    def reload(self) -> bool:
        """Re-read the configuration; on any error keep running with the last good one."""
        try:
            new = config_mod.load(self.config.path)
            hmac_secret.ensure(new)  # read (or make) it now: a broken one keeps the old config
        except ConfigError as e:
            for problem in e.problems:
                log.error("config reload rejected, keeping the running config: %s", problem)
            return False
        self.config = new
        for part in (self._handler, self._sender):
            if part is not None:
                part.config = new
        if self._worker is not None:
            self._worker.config = new
            self._worker.pipeline = Pipeline(new, self.clock, keyrings=self.keyrings)
        log.info("config reloaded from %s: %d queue(s)", new.path, len(new.queues))
        return True

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
        loop = asyncio.get_running_loop()
        if install_signals:
            self._install_signals(loop)
        self.engine, self.spool = await asyncio.to_thread(open_stores, cfg)
        work_wake, send_wake = asyncio.Event(), asyncio.Event()
        self._worker = Worker(
            cfg, self.engine, self.spool, Pipeline(cfg, self.clock, keyrings=self.keyrings)
        )
        self._worker.health = self.health
        self._sender = Sender(cfg, self.engine, self.clock, keyrings=self.keyrings)

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
        self.ready.set()
        await self.stop.wait()
        if server is not None:
            server.close()
        try:
            await asyncio.wait_for(self._drain(server, tasks), cfg.worker.shutdown_timeout_seconds)
        except TimeoutError:
            log.warning("shutdown timeout: leaving unfinished work in the spool/outbox")
            for t in tasks:
                t.cancel()
        self.spool.unlock()
        self.engine.dispose()
        self.keyrings.close()  # the gpg-agents the queues' keyrings started
        log.info("mailgate stopped")

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
                run_scheduler(lambda: self.config, self.engine, self.stop, self.clock),
                name="scheduler",
            )
        ]
        if any(q.imap for q in self.config.queues):
            from mailgate.pollers.imap.run import run_pollers

            assert self.spool is not None and self.engine is not None
            tasks.append(
                asyncio.create_task(
                    run_pollers(
                        self.config, self.spool, self.engine, self.stop, on_spooled=spooled
                    ),
                    name="imap",
                )
            )
        return tasks

    async def _drain(
        self, server: asyncio.AbstractServer | None, tasks: list[asyncio.Task[None]]
    ) -> None:
        # sessions in DATA finish their spool write and answer before we go
        while self._handler is not None and self._handler.in_flight:
            await asyncio.sleep(0.05)
        await asyncio.gather(*tasks, return_exceptions=True)
        if server is not None:
            await server.wait_closed()


def run(config: Config) -> None:
    asyncio.run(Daemon(config).serve())
