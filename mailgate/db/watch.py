"""Whether the database answers: a probe for `mailgate stats`, and the daemon's watch that
reports component "database" into mailgate/health.py.

A daemon that loses its database keeps taking mail into its spool (the listener answers
250 after the spool fsync and needs no database); the worker gives its batch back and
retries with backoff, and everything waiting is processed when the database returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError

from mailgate.health import Health
from mailgate.runtime import Backoff

log = logging.getLogger(__name__)
COMPONENT = "database"


def error_line(e: BaseException) -> str:
    """The first line of a database error, without SQLAlchemy's wrapping."""
    orig = getattr(e, "orig", None) or e
    return (str(orig).strip().splitlines() or [type(e).__name__])[0]


def probe(engine: Engine) -> str | None:
    """None if the database answers a query now, else why not (one line)."""
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except SQLAlchemyError as e:
        return error_line(e)
    return None


async def watch(
    engine: Engine, health: Health, stop: asyncio.Event, *, every: float = 10.0
) -> None:
    """Probe every `every` seconds (sooner, with backoff, while it fails) until `stop`."""
    backoff = Backoff(1.0, every)
    was_ok = True
    while not stop.is_set():
        reason = await asyncio.to_thread(probe, engine)
        if reason is None:
            health.succeeded(COMPONENT)
            if not was_ok:
                log.info("database reachable again: catching up from the spool")
            was_ok, delay = True, every
            backoff.reset()
        else:
            health.failed(COMPONENT, reason)
            if was_ok:
                log.error("database unreachable (%s): mail stays in the spool, retrying", reason)
            was_ok, delay = False, backoff.next()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), delay)
