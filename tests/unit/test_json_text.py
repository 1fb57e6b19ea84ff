"""mailgate/json_text.py: the JSON columns' text by orjson, the standard library's read and written
where orjson cannot."""

from __future__ import annotations

import json
import math

import sqlalchemy as sa

from mailgate import json_text
from mailgate.db.engine import make_engine


def test_values_round_trip_as_the_standard_library_reads_them():
    value = {"to": ["a@example.com", "Zoë <z@example.com>"], "score": 2.5, "ok": True, "n": None}
    text = json_text.dumps(value)
    assert json.loads(text) == value
    assert json_text.loads(text) == value
    assert "Zoë" in text  # UTF-8, not \\u-escaped


def test_keys_that_are_not_strings_become_strings_as_json_dumps_makes_them():
    assert json.loads(json_text.dumps({1: "a", False: "b", 2.5: "c"})) == json.loads(
        json.dumps({1: "a", False: "b", 2.5: "c"})
    )


def test_what_orjson_refuses_is_written_by_the_standard_library():
    big = {"n": 2**70}
    assert json_text.dumps(big) == json.dumps(big)
    assert json_text.loads(json_text.dumps(big)) == big


def test_text_the_standard_library_wrote_is_read():
    assert json_text.loads('{"a": [1, 2], "z\\u00eb": "x"}') == {"a": [1, 2], "zë": "x"}
    assert math.isnan(json_text.loads(json.dumps(float("nan"))))
    assert json_text.loads(b'["bytes"]') == ["bytes"]


def test_an_engines_json_columns_write_and_read_by_it(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'j.db'}")
    meta = sa.MetaData()
    t = sa.Table("t", meta, sa.Column("id", sa.Integer, primary_key=True), sa.Column("v", sa.JSON))
    meta.create_all(engine)
    with engine.begin() as conn:
        conn.execute(t.insert(), [{"id": 1, "v": {"cc": ["b@example.com"]}}])
        conn.exec_driver_sql("""INSERT INTO t VALUES (2, '{"cc": ["old@example.com"]}')""")
    with engine.connect() as conn:
        stored = conn.exec_driver_sql("SELECT v FROM t WHERE id = 1").scalar_one()
        read = dict(conn.execute(sa.select(t.c.id, t.c.v)).all())
    assert stored == '{"cc":["b@example.com"]}'  # orjson's compact text
    assert read == {1: {"cc": ["b@example.com"]}, 2: {"cc": ["old@example.com"]}}
    engine.dispose()


def test_a_float_that_is_not_finite_is_written_as_null():
    assert json.loads(json_text.dumps({"score": float("nan"), "hi": float("inf")})) == {
        "score": None,
        "hi": None,
    }
