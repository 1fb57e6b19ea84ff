"""Time, waiting and retrying: the clock the daemon runs on, the helpers its loops wait
with, threads for blocking work, the one backoff every retry uses, and chunking for
bounded statements."""

from __future__ import annotations

import asyncio
import contextlib
import random
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TypeVar

T = TypeVar("T")

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


async def in_own_thread(fn: Callable[[], None], *, name: str, halt: threading.Event) -> None:
    """Run fn in a thread of its own (not the shared pool: an IMAP poller blocks for hours)
    and return once that thread has ended. Cancelled: set `halt`, still wait for the end."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()

    def settle(exc: BaseException | None) -> None:
        if done.done():
            return
        if exc is None:
            done.set_result(None)
        else:
            done.set_exception(exc)

    def target() -> None:
        exc: BaseException | None = None
        try:
            fn()
        except BaseException as e:
            exc = e
        with contextlib.suppress(RuntimeError):  # the loop is gone: nobody is waiting
            loop.call_soon_threadsafe(settle, exc)

    thread = threading.Thread(target=target, name=name, daemon=True)
    thread.start()
    try:
        await asyncio.shield(done)
    except asyncio.CancelledError:
        halt.set()
        await done
        raise
    finally:
        # fn has returned; the thread is only unwinding: its end is part of ours
        await asyncio.to_thread(thread.join)


def backoff_delay(attempt: int, initial: float, cap: float, rng: random.Random) -> float:
    """Capped exponential backoff with jitter: the n-th retry (0-based) waits a random time
    in [base/2, base], base = min(cap, initial * 2**n)."""
    base = min(cap, initial * 2 ** max(0, attempt))
    return base / 2 + rng.random() * base / 2


@dataclass
class Backoff:
    """`backoff_delay` with its attempt counter, for loops that retry until it works."""

    initial: float = 1.0
    maximum: float = 300.0
    rng: random.Random = field(default_factory=random.Random)
    attempt: int = 0

    def next(self) -> float:
        delay = backoff_delay(self.attempt, self.initial, self.maximum, self.rng)
        self.attempt += 1
        return delay

    def reset(self) -> None:
        self.attempt = 0


def chunks(items: Sequence[T], n: int) -> Iterator[list[T]]:
    """`items` in lists of at most `n` (bounded IN lists, bounded IMAP commands)."""
    for i in range(0, len(items), n):
        yield list(items[i : i + n])
