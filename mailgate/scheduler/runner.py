"""APScheduler inside the daemon: every sweep once a minute, and at once on start.

The sweeps are pure functions of the clock and the database (see sweeps/), so there is
nothing to remember between runs: a daemon that was down for days catches up on its first
run. Of several daemons on one database only the holder of the sweep lock (lock.py) runs
them, another one from its next tick on when the holder dies. Each sweep runs in its own
transaction, in a worker thread, never two runs at a time in one process.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable
from datetime import UTC, datetime

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy import Connection, Engine

from mailgate.config.model import Config
from mailgate.runtime import Clock, utcnow
from mailgate.scheduler.lock import SweepLock
from mailgate.scheduler.sweeps import sql
from mailgate.scheduler.sweeps.close import sweep_close
from mailgate.scheduler.sweeps.digests import sweep_digests
from mailgate.scheduler.sweeps.priority import sweep_priority
from mailgate.scheduler.sweeps.reminders import sweep_reminders
from mailgate.scheduler.sweeps.shift_notes import sweep_shift_notes
from mailgate.scheduler.sweeps.sla import sweep_sla
from mailgate.scheduler.sweeps.track import sweep_track
from mailgate.store.leases import node_name

log = logging.getLogger(__name__)

Sweep = Callable[[Connection, Config, datetime], int]
ConfigSource = Config | Callable[[], Config]
INTERVAL_SECONDS = 60.0

# the order matters: bookkeeping first, then what reads it
SWEEPS: tuple[tuple[str, Sweep], ...] = (
    ("track", sweep_track),
    ("priority", sweep_priority),
    ("sla", sweep_sla),
    ("reminders", sweep_reminders),
    ("shift_notes", sweep_shift_notes),
    ("close", sweep_close),
    ("digests", sweep_digests),
)
# sweeps that act on at most BATCH tickets per statement: run again while they were full
CAPPED = frozenset({"sla", "reminders", "shift_notes", "close"})
MAX_ROUNDS = 10_000


def run_all_sweeps(
    engine: Engine,
    config: Config,
    now: datetime,
    *,
    strict: bool = True,
    full_sync: bool | None = None,
) -> dict[str, int]:
    """Run every sweep once at `now` (aware UTC), each in its own transaction.

    Returns what each changed. strict: a failing sweep raises; otherwise it is logged,
    counted as -1, and the others still run (the daemon's mode). full_sync: re-read every
    open ticket, not only the changed ones; by default in the first minute of each hour.
    """
    if now.tzinfo is None:
        raise ValueError("run_all_sweeps needs an aware datetime")
    full = now.minute == 0 if full_sync is None else full_sync
    track: Sweep = functools.partial(sweep_track, full=full)
    counts: dict[str, int] = {}
    for name, sweep in SWEEPS:
        try:
            counts[name] = _run_sweep(
                engine, config, now, name, track if name == "track" else sweep
            )
        except Exception:
            if strict:
                raise
            log.exception("sweep %s failed; its changes were rolled back", name)
            counts[name] = -1
    return counts


def _run_sweep(engine: Engine, config: Config, now: datetime, name: str, sweep: Sweep) -> int:
    """One transaction, or several short ones while a capped sweep finds full batches."""
    total = 0
    for _ in range(MAX_ROUNDS):
        with engine.begin() as conn:
            changed = sweep(conn, config, now)
        total += changed
        if name not in CAPPED or changed < sql.BATCH:
            break
    return total


async def run_scheduler(
    config: ConfigSource,
    engine: Engine,
    stop: asyncio.Event,
    clock: Clock = utcnow,
    *,
    interval_seconds: float = INTERVAL_SECONDS,
    lock: SweepLock | None = None,
) -> None:
    """Run the sweeps every `interval_seconds` until `stop` is set.

    `config` is a Config or a callable returning the current one (so a SIGHUP reload is
    seen at the next run; a reload with a broken [sla] never gets here: config.load
    refuses it and the daemon keeps the last good config).
    """
    running = asyncio.Lock()
    first = True
    if lock is None:
        cfg0 = config() if callable(config) else config
        holder = node_name(cfg0.database.node, cfg0.spool_dir)
        lock = SweepLock(engine, holder, lease_seconds=3 * interval_seconds, clock=clock)

    async def tick() -> None:
        nonlocal first
        async with running:
            if not await asyncio.to_thread(lock.acquire):
                return  # another daemon runs the sweeps
            cfg = config() if callable(config) else config
            now = clock()
            # the first run re-reads every open ticket; then changed ones (hourly: all)
            run = functools.partial(run_all_sweeps, strict=False, full_sync=first or None)
            counts = await asyncio.to_thread(run, engine, cfg, now)
            first = False
            changed = {k: v for k, v in counts.items() if v}
            if changed:
                log.info("sweeps at %s: %s", now.isoformat(timespec="seconds"), changed)

    scheduler = AsyncIOScheduler(timezone=UTC, event_loop=asyncio.get_running_loop())
    scheduler.add_job(
        tick,
        "interval",
        seconds=interval_seconds,
        id="sweeps",
        next_run_time=datetime.now(UTC),  # catch up at once after downtime
        max_instances=1,
        coalesce=True,
        misfire_grace_time=None,
    )
    scheduler.start()
    log.info("scheduler running: sweeps every %.0f s", interval_seconds)
    try:
        await stop.wait()
    finally:
        scheduler.shutdown(wait=False)
        async with running:  # a sweep in progress finishes its transaction first
            await asyncio.to_thread(lock.release)
        log.info("scheduler stopped")
