"""The listener's fast read of a MAIL FROM / RCPT TO path returns what aiosmtpd returns."""

from __future__ import annotations

import random

import pytest
from aiosmtpd.smtp import SMTP

from mailgate.pollers.smtp import FastPaths
from mailgate.pollers.smtp_path import simple_path


def _aiosmtpd(arg: str, limit: int = 0) -> tuple[str | None, str | None]:
    server = SMTP.__new__(SMTP)  # only _getaddr is used: no handler, no event loop
    server.local_part_limit = limit
    return server._getaddr(arg)


SIMPLE = [
    "<a@b.c>",
    "<a@b.c> SIZE=12 BODY=8BITMIME",
    "<a@b.c>SIZE=1",
    "<John.Doe@Example.COM>",
    "<a+tag@b-c.d>",
    "<a.@b.c>".replace(".@", "@"),
    "<bounces+12.abcdef012345@helpdesk.example.test>",
    "<o'brien@example.ie>  SMTPUTF8",
    "<a@b>",
    "<a@b.c>\tSIZE=5 ",
    "<{x}|~=?^`#$%&*/@b.c>",
]
# read by aiosmtpd: quoted, empty, literal, source route, comment, non-ASCII, odd dots
OTHER = [
    "<>",
    "a@b.c",
    '<"q x"@b.c>',
    "<a@[1.2.3.4]>",
    "<@x.y:a@b.c>",
    "<a(c)@b.c>",
    "<a@b.c> (comment) SIZE=1",
    "<Ü@b.c>",
    "<a@bü.c>",
    "<a.@b.c>",
    "<.a@b.c>",
    "<a..b@c.d>",
    "<a@b..c>",
    "<a@b.c.>",
    "< a@b.c>",
    "<a@b.c >",
    "<a@b.c",
    "<a@b.c>\r\nSIZE=1",
    "",
]


@pytest.mark.parametrize("arg", SIMPLE)
def test_a_simple_path_reads_as_aiosmtpd_reads_it(arg):
    assert simple_path(arg) is not None
    assert simple_path(arg) == _aiosmtpd(arg)


@pytest.mark.parametrize("arg", OTHER)
def test_anything_else_is_left_to_aiosmtpd(arg):
    assert simple_path(arg) is None


def test_the_local_part_limit_refuses_as_aiosmtpd_does():
    arg = "<" + "x" * 65 + "@b.c>"
    assert simple_path(arg, 64) == _aiosmtpd(arg, 64) == (None, None)
    assert simple_path(arg, 0) == _aiosmtpd(arg, 0)


def test_random_paths_read_the_same_both_ways():
    rng = random.Random(16)
    alphabet = 'aZ09.-+_@<>"()[] \t!#=~Ü:,;'
    checked = 0
    for _ in range(20000):
        arg = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 14)))
        if rng.random() < 0.5:  # near the common form, so the fast path is taken often
            local = "".join(rng.choice("aZ09.-+_'=") for _ in range(rng.randint(1, 8)))
            rest = rng.choice(["", " SIZE=9", "X", "  ", " (c)", "\t B=1"])
            arg = f"<{local}@{rng.choice(['ex.am-ple', 'b', 'b.', '-b.c'])}>{rest}"
        try:
            expected = _aiosmtpd(arg)
        except Exception:  # noqa: BLE001 - aiosmtpd's own parser errors: left to it
            assert simple_path(arg) is None
            continue
        fast = simple_path(arg)
        if fast is not None:
            assert fast == expected, arg
            checked += 1
    assert checked > 1000  # the comparison ran over many fast-path inputs


def test_the_listener_uses_the_fast_read_and_falls_back():
    class Probe(FastPaths, SMTP):
        pass

    server = Probe.__new__(Probe)
    server.local_part_limit = 0
    assert server._getaddr("<a@b.c> SIZE=1") == ("a@b.c", "SIZE=1")
    assert server._getaddr('<"q x"@b.c>') == _aiosmtpd('<"q x"@b.c>')
    assert server._getaddr("<>") == _aiosmtpd("<>")
