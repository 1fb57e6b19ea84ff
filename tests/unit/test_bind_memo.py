"""The bind processors of store/fast.py remember what they converted, by the object itself.

A batch's flush binds every message's `now` again, table by table, after other datetimes:
a processor remembers many values, not only the last. Only the same object is served from
memory (an equal datetime in another zone, a changed list are converted themselves), None
gets what the processor made of it once, and a value it refuses is refused every time.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from mailgate.store.remembered import REMEMBERED, remembering

T0 = datetime(2026, 12, 2, 4, 30, 0, 123456, tzinfo=UTC)


class Counting:
    """A bind processor that says how often it ran, and for what."""

    def __init__(self, none: Any = None, refuses_none: bool = False) -> None:
        self.calls: list[Any] = []
        self.none = none
        self.refuses_none = refuses_none

    def __call__(self, value: Any) -> Any:
        self.calls.append(value)
        if value is None:
            if self.refuses_none:
                raise ValueError("no NULL here")
            return self.none
        return repr(value)


def test_a_datetime_is_converted_once_while_others_go_between():
    process = Counting()
    remembered = remembering(process)
    process.calls.clear()  # what it made of None, asked when it was made
    nows = [T0 + timedelta(seconds=i) for i in range(64)]  # a batch's messages
    first = [remembered(now) for now in nows]
    again = [remembered(now) for now in nows]  # the flush, table after table
    assert first == again == [repr(now) for now in nows]
    assert process.calls == nows


def test_an_equal_datetime_that_is_another_object_is_converted_itself():
    process = Counting()
    remembered = remembering(process)
    process.calls.clear()
    elsewhere = T0.astimezone(timezone(timedelta(hours=-5)))
    assert elsewhere == T0
    assert remembered(T0) == repr(T0)
    assert remembered(elsewhere) == repr(elsewhere)
    assert process.calls == [T0, elsewhere]


def test_past_its_size_every_value_is_still_converted_right():
    process = Counting()
    remembered = remembering(process)
    values = [T0 + timedelta(microseconds=i) for i in range(REMEMBERED * 2 + 7)]
    assert [remembered(v) for v in values] == [repr(v) for v in values]
    assert [remembered(v) for v in values[-5:]] == [repr(v) for v in values[-5:]]


def test_none_gets_what_the_processor_made_of_it_once():
    as_json = Counting(none="null")
    remembered = remembering(as_json)
    assert [remembered(None) for _ in range(3)] == ["null"] * 3
    assert as_json.calls == [None]


def test_a_processor_refusing_none_refuses_it_every_time():
    remembered = remembering(Counting(refuses_none=True))
    for _ in range(2):
        with pytest.raises(ValueError, match="no NULL"):
            remembered(None)


def test_a_list_is_converted_on_every_call_and_an_empty_one_once():
    process = Counting()
    remembered = remembering(process)
    process.calls.clear()
    to = ["a@example.test"]
    assert remembered(to) == "['a@example.test']"
    to.append("b@example.test")
    assert remembered(to) == "['a@example.test', 'b@example.test']"
    assert remembered([]) == remembered([]) == "[]"
    assert process.calls == [to, to, []]
