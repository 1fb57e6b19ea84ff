"""What start-up made, kept out of the cycle collector's full collections.

A started daemon holds about 98,000 objects it made once and keeps for its life: modules,
the config, the table metadata, compiled statements and templates. Every full
(generation 2) collection walks all of them again: 37–45 ms each, seven of them in a
drain of 20,000 messages (docs/performance.md, "The collector and what start-up made").
`gc.freeze` moves every object tracked so far to a generation the collector does not
walk (a list splice: it costs nothing however large the heap); objects made afterwards
are collected as before. Reference counting still frees a frozen object that is dropped;
only one caught in a reference cycle waits for `thaw` (at shutdown; in the daemon's life
that is at most start-up's own leftovers and a config replaced by a reload).
"""

from __future__ import annotations

import gc


def freeze_startup() -> None:
    """Once started: what is alive now is left out of every later collection's walk."""
    gc.freeze()


def thaw() -> None:
    """Back under the collector (the daemon stopped; in tests, inside a longer process)."""
    gc.unfreeze()
