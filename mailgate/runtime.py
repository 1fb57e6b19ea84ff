"""Time and waiting: the clock the daemon runs on and the helpers its loops wait with."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)


async def wait_for_wake(wake: asyncio.Event, stop: asyncio.Event, timeout: float) -> None:
    """Until `wake` or `stop` is set, or `timeout` seconds passed."""
    waiter = asyncio.ensure_future(wake.wait())
    stopper = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({waiter, stopper}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()
        stopper.cancel()
