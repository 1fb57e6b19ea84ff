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

Once started, the young generation is also collected less often: after 10,000 new
container objects instead of CPython's 700. A batch of mail makes and drops objects by
the hundred thousand, nearly all freed by reference counting, and each young pass walks
the survivors of the last for nothing; the older generations keep their ratios (10 young
passes to an older one), so a reference cycle made afterwards is still collected, later.
In the drain that took the collector from 32,000 to 9,000 instructions a message
(docs/performance.md, "Tenth pass"). `thaw` puts the thresholds back.
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 10_000  # new container objects between young passes (CPython: 700)
_replaced: tuple[int, int, int] | None = None  # the thresholds freeze_startup replaced


def freeze_startup() -> None:
    """Once started: what is alive now is left out of every later collection's walk, and
    the young generation is collected every YOUNG_THRESHOLD new objects."""
    global _replaced
    gc.freeze()
    young, older, oldest = gc.get_threshold()
    if _replaced is None:  # a second start in one process (tests) keeps the first's
        _replaced = (young, older, oldest)
    if young:  # 0: the collector is off (gc.disable() leaves it); it stays off
        gc.set_threshold(max(young, YOUNG_THRESHOLD), older, oldest)


def thaw() -> None:
    """Back under the collector (the daemon stopped; in tests, inside a longer process),
    with the thresholds it had before `freeze_startup`."""
    global _replaced
    gc.unfreeze()
    if _replaced is not None:
        gc.set_threshold(*_replaced)
        _replaced = None
