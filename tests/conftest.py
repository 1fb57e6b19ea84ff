"""Real-server fixtures (Dovecot, PostgreSQL, GnuPG, SMTP sink) built on tests/servers.py."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.pgp_keys import homes, keyrings  # noqa: F401 - fixtures: GnuPG homes, keyring cache
from tests.servers import Dovecot, GnuPGHome, Postgres, SmtpSink, require


@pytest.fixture(scope="session")
def dovecot() -> Iterator[Dovecot]:
    """Session-wide Dovecot with IMAP and IMAPS; never stop/restart/kill it (dovecot_factory)."""
    require("dovecot")
    require("openssl")
    server = Dovecot(ssl=True)
    yield server
    server.stop()


@pytest.fixture
def dovecot_factory() -> Iterator[Callable[..., Dovecot]]:
    """Make private Dovecot(**kwargs) instances (for restart/kill tests); stopped afterwards."""
    require("dovecot")
    made: list[Dovecot] = []

    def make(**kwargs: Any) -> Dovecot:
        if kwargs.get("ssl"):
            require("openssl")
        server = Dovecot(**kwargs)
        made.append(server)
        return server

    yield make
    for server in made:
        server.stop()


@pytest.fixture
def imap_user(dovecot: Dovecot) -> str:
    """A fresh mailbox user (password dovecot.password) on the session Dovecot."""
    return dovecot.add_user(f"u{uuid.uuid4().hex[:12]}@example.test")


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    """Session-wide PostgreSQL cluster; use create_database() or pg_url for isolation."""
    require("postgres")
    server = Postgres()
    yield server
    server.stop()


@pytest.fixture
def pg_url(postgres: Postgres) -> Iterator[str]:
    """SQLAlchemy URL of a fresh, empty database, dropped after the test."""
    name = f"t_{uuid.uuid4().hex[:16]}"
    url = postgres.create_database(name)
    yield url
    postgres.drop_database(name)


@pytest.fixture
def pg_databases(postgres: Postgres) -> Iterator[Callable[[str], str]]:
    """A function giving the URL of a fresh, empty database for each name it is given
    (tests comparing two sides: one database each), all dropped after the test."""
    made: list[str] = []

    def fresh(name: str) -> str:
        made.append(f"{name}_{uuid.uuid4().hex[:12]}".lower())
        return postgres.create_database(made[-1])

    yield fresh
    for name in made:
        postgres.drop_database(name)


@pytest.fixture
def smtp_sink() -> Iterator[SmtpSink]:
    """A fresh in-process SMTP sink on 127.0.0.1 for each test."""
    sink = SmtpSink()
    yield sink
    sink.stop()


@pytest.fixture
def gnupg_home() -> Iterator[GnuPGHome]:
    """A fresh empty GNUPGHOME for each test; its gpg-agent is killed afterwards."""
    require("gpg")
    home = GnuPGHome()
    yield home
    home.stop()
