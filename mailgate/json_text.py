"""The text of the database's JSON columns: orjson, with the standard library behind it.

Every article stores four JSON values (its To and Cc, the classifier's verdict, the
parser's defects) and every ticket, outbox row and audit event more; SQLAlchemy's JSON
type runs them through `json.dumps` one by one, about 5,000 instructions each, most of
it the encoder's Python set-up. orjson (a compiled, widely used library) writes the same
values in a tenth of that: in the drain of the generated corpus the worker's process ran
2.5% fewer instructions a message (docs/performance.md, "Tenth pass").

What is written is standard JSON, compact and in UTF-8 (the standard library's was
spaced and \\u-escaped); both read back as the same values, so rows written before and
after mix freely. A value orjson refuses (an integer beyond 64 bits, for one) goes to
`json.dumps`, which writes or refuses it as before; text orjson cannot read (the standard
library's `NaN`, for one) is read by `json.loads`. A float that is not finite is written
as `null`, which standard JSON has for it (`json.dumps` wrote `NaN`, which PostgreSQL's
json type refuses).
"""

from __future__ import annotations

import json
from typing import Any

import orjson

_OPTIONS = orjson.OPT_NON_STR_KEYS  # int and bool keys become strings, as json.dumps does


def dumps(value: Any) -> str:
    try:
        return orjson.dumps(value, option=_OPTIONS).decode()
    except TypeError:  # orjson.JSONEncodeError is one
        return json.dumps(value)


def loads(text: str | bytes) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:  # NaN, Infinity: what json.dumps may have written
        return json.loads(text)
