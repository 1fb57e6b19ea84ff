"""mailgate/heap.py: what start-up made is left out of the collector's walks until thawed."""

from __future__ import annotations

import gc
import weakref

from mailgate import heap


class _Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the cycle collector frees it


def _tracked(obj: object) -> bool:
    return any(o is obj for o in gc.get_objects())


def test_frozen_objects_are_not_walked_until_thawed():
    alive = _Node()
    heap.freeze_startup()
    try:
        assert gc.get_freeze_count() > 0
        assert not _tracked(alive)  # in no generation the collector walks
        later = _Node()
        assert _tracked(later)  # made after start-up: collected as before
    finally:
        heap.thaw()
    assert gc.get_freeze_count() == 0
    assert _tracked(alive)


def test_a_cycle_made_after_start_up_is_still_collected():
    heap.freeze_startup()
    try:
        cycle = weakref.ref(_Node())
        # by the collector's own passes (an explicit gc.collect() would free it even with
        # the collector switched off): the young generation's threshold is soon passed
        for _ in range(100 * max(gc.get_threshold()[0], 1)):
            if cycle() is None:
                break
            _Node()
        assert cycle() is None
    finally:
        heap.thaw()


def test_the_young_generation_is_collected_less_often_until_thawed():
    before = gc.get_threshold()
    heap.freeze_startup()
    try:
        young, older, oldest = gc.get_threshold()
        assert young == max(before[0], heap.YOUNG_THRESHOLD)
        assert (older, oldest) == before[1:]  # the older generations keep their ratios
        heap.freeze_startup()  # a second start in one process (tests): still one restore
    finally:
        heap.thaw()
    assert gc.get_threshold() == before


def test_a_threshold_of_zero_stays_zero():
    before = gc.get_threshold()
    gc.set_threshold(0, before[1], before[2])
    try:
        heap.freeze_startup()
        assert gc.get_threshold()[0] == 0
    finally:
        heap.thaw()
        gc.set_threshold(*before)
