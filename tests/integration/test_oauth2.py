"""OAuth2 for IMAP and the relay, against a local provider (tests/oauth2_provider.py), a
real Dovecot with its oauth2 passdb, and an SMTP sink that checks XOAUTH2 / OAUTHBEARER.

No mocks: tokens travel over HTTP, IMAP and SMTP; expiry and revocation are the
provider's. Every test scans the captured logs (and printed output) for the tokens and the
client secret it handed out.
"""

from __future__ import annotations

import base64
import logging
import os
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from mailgate.config import load as config_load
from mailgate.config.model import Config
from mailgate.db import engine as db
from mailgate.oauth2.client import TokenClient
from mailgate.oauth2.clients import imap_tokens, relay_tokens, token_store
from mailgate.oauth2.endpoint import OAuth2Error
from mailgate.oauth2.store import Tokens
from mailgate.outgoing.relay import Relay, is_done
from mailgate.outgoing.relay_auth import bearer
from mailgate.outgoing.relay_check import check_relay
from mailgate.pollers.imap.check import check_mailboxes
from mailgate.pollers.imap.run import make_pollers
from mailgate.spool import Spool
from tests import harness
from tests.integration.test_imap import message, spool_message_ids
from tests.oauth2_provider import CLIENT_SECRET, OAuthSmtpSink, ProviderServer, enable_oauth2
from tests.servers import Dovecot, free_port

USER = "support@example.test"


@pytest.fixture
def provider() -> Iterator[ProviderServer]:
    server = ProviderServer()
    yield server
    server.stop()


@pytest.fixture
def oauth_dovecot(dovecot_factory: Callable[..., Dovecot], provider: ProviderServer) -> Dovecot:
    d = dovecot_factory()
    enable_oauth2(d, f"{provider.url}/introspect")
    return d


@dataclass
class World:
    """What an IMAP test works with (DEBUG logs captured)."""

    tmp: Path
    provider: ProviderServer
    d: Dovecot
    engine: Engine
    spool: Spool
    caplog: pytest.LogCaptureFixture


@pytest.fixture
def world(
    tmp_path: Path,
    provider: ProviderServer,
    oauth_dovecot: Dovecot,
    caplog: pytest.LogCaptureFixture,
) -> Iterator[World]:
    caplog.set_level(logging.DEBUG)
    engine = db.connect("sqlite:///" + str(tmp_path / "db.sqlite"))
    yield World(tmp_path, provider, oauth_dovecot, engine, Spool(tmp_path / "spool"), caplog)
    engine.dispose()


def config(
    tmp_path: Path,
    provider: ProviderServer,
    d: Dovecot | None = None,
    relay_port: int | None = None,
    **oauth2: str | int,
) -> Config:
    """support@ watched over IMAP (when `d`) and/or the relay, both with an oauth2 table."""
    (tmp_path / "config").mkdir(exist_ok=True)
    (tmp_path / "config" / "client-secret").write_text(CLIENT_SECRET + "\n")
    table = provider.table(**oauth2)
    imap = (
        f'[imap]\nhost = "{d.host}"\nport = {d.port}\ntls = "none"\nuser = "{USER}"\n'
        f'move_to = "Archive"\ntimeout_seconds = 10\noauth2 = {table}\n'
        if d
        else ""
    )
    relay = f'username = "{USER}"\noauth2 = {table}\n' if relay_port else ""
    path = harness.write_config(
        tmp_path, relay_port=relay_port, queue_extra={"support": imap}, relay_extra=relay
    )
    return config_load.load(path)


def authorized(cfg: Config, provider: ProviderServer, key: str = "imap-support") -> str:
    """Store a refresh token as `mailgate oauth2 authorize` would have; return it."""
    seed = provider.provider.seed(USER)
    token_store(cfg).save(key, Tokens(refresh_token=seed))
    return seed


def assert_no_secret(provider: ProviderServer, *texts: str) -> None:
    text = "\n".join(texts)
    assert provider.provider.issued, "the test handed out no token"
    for token in [*provider.provider.issued, CLIENT_SECRET]:
        assert token not in text
        for mechanism in ("XOAUTH2", "OAUTHBEARER"):  # what goes over the wire, encoded
            assert base64.b64encode(bearer(mechanism, USER, token).encode()).decode() not in text


def support_poller(cfg: Config, spool: Spool, engine: Engine, **kwargs):  # noqa: ANN201
    import asyncio

    pollers = make_pollers(cfg, spool, engine, asyncio.Event(), **kwargs)
    return next(p for p in pollers if p.queue.name == "support")


def test_token_refused_mid_poll_is_refreshed_and_no_message_is_lost(world: World) -> None:
    w = world
    tmp_path, provider, engine, spool, caplog = w.tmp, w.provider, w.engine, w.spool, w.caplog
    d = w.d
    cfg = config(tmp_path, provider, d)
    seed = authorized(cfg, provider)
    p = support_poller(cfg, spool, engine, backoff_initial=0.05, backoff_max=0.5)
    d.append(USER, message(1))
    runner = threading.Thread(target=p.serve_forever, daemon=True)
    runner.start()
    try:
        harness.wait_until(lambda: p.taken == 1 and p.idling.is_set(), 20, "first message")
        # the provider ends every token early and the server drops us: the next login
        # is refused with the cached token, refreshed once, and the session resumes
        provider.provider.expire_access_tokens()
        d.restart()
        d.append(USER, message(2))
        d.append(USER, message(3))
        harness.wait_until(lambda: p.taken == 3, 30, "messages after the reconnect")
    finally:
        p.halt.set()
        runner.join(10)
    assert spool_message_ids(spool) == {f"<m-{n}@customer.example>": 1 for n in (1, 2, 3)}
    assert provider.provider.grants == ["refresh_token", "refresh_token"]
    stored = token_store(cfg).load("imap-support")
    assert stored.refresh_token not in ("", seed)  # rotated, and the rotation was kept
    assert "refreshing the token once" in caplog.text
    assert os.stat(token_store(cfg).path("imap-support")).st_mode & 0o777 == 0o600
    assert "method=XOAUTH2" in d.log()
    assert_no_secret(provider, caplog.text)


def test_access_token_is_refreshed_before_it_expires(
    tmp_path: Path, provider: ProviderServer
) -> None:
    cfg = config(tmp_path, provider, relay_port=free_port(), refresh_margin_seconds=60)
    seed = authorized(cfg, provider, "relay")
    tokens = relay_tokens(cfg)
    assert tokens is not None and tokens.settings.refresh_margin_seconds == 60
    now = [1_000_000.0]
    clocked = TokenClient(
        tokens.settings,
        tokens.base,
        tokens.store,
        "relay",
        authorize_hint="x",
        clock=lambda: now[0],
    )
    first = clocked.access_token()
    now[0] += 3000  # 3600 s tokens, 60 s margin: still good
    assert clocked.access_token() == first
    now[0] += 541  # 59 s left: refreshed before it runs out
    second = clocked.access_token()
    assert second != first and provider.provider.grants == ["refresh_token"] * 2
    assert seed not in provider.provider.refresh  # the provider killed the old one
    assert clocked.current().refresh_token in provider.provider.refresh  # we kept the new one
    assert "rt-" not in repr(clocked.current()) and "at-" not in repr(clocked.current())


def test_revoked_refresh_token_gives_one_clear_error_and_the_slow_retry(world: World) -> None:
    w = world
    tmp_path, provider, engine, spool, caplog = w.tmp, w.provider, w.engine, w.spool, w.caplog
    cfg = config(tmp_path, provider, w.d)
    authorized(cfg, provider)
    provider.provider.revoke_refresh_tokens()
    p = support_poller(cfg, spool, engine, auth_retry_seconds=300.0)
    assert p._one_connection() == 300.0  # the slow pace of every authentication error
    hint = "run `mailgate oauth2 authorize support`"
    assert "invalid_grant" in p.last_error and hint in p.last_error, p.last_error
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert [r.getMessage() for r in errors] == [
        f"queue support: {p.last_error}; retrying in 300.0s"
    ]
    checks = check_mailboxes(cfg)
    assert [c.ok for c in checks] == [False] and hint in checks[0].detail
    assert_no_secret(provider, caplog.text)


def test_client_credentials_and_oauthbearer(world: World) -> None:
    w = world
    tmp_path, provider, engine, spool, caplog = w.tmp, w.provider, w.engine, w.spool, w.caplog
    d = w.d
    secret = '{ file = "../client-secret" }'  # relative to the queue file
    cfg = config(
        tmp_path,
        provider,
        d,
        grant="client_credentials",
        client_secret=secret,
        mechanism="oauthbearer",
    )
    d.append(USER, message(1))
    assert support_poller(cfg, spool, engine).poll_once() == 1
    assert provider.provider.grants == ["client_credentials"]
    assert "method=OAUTHBEARER" in d.log()
    checks = check_mailboxes(cfg)
    assert checks[0].ok and "oauth2 token ok, expires at" in checks[0].detail, checks
    assert "client credentials" in checks[0].detail
    assert provider.provider.grants == ["client_credentials"]  # the cached token served
    assert_no_secret(provider, caplog.text, checks[0].detail)


def test_relay_logs_in_with_xoauth2_and_refreshes_once(
    tmp_path: Path, provider: ProviderServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    sink = OAuthSmtpSink(provider.provider)
    try:
        cfg = config(tmp_path, provider, relay_port=sink.port)
        authorized(cfg, provider, "relay")
        raw = message(1)
        relay = Relay(cfg)
        assert relay.send("support@example.test", ["c@customer.example"], raw).ok
        relay.close()
        provider.provider.expire_access_tokens()  # refused once, refreshed, sent
        relay = Relay(cfg)
        result = relay.send("support@example.test", ["c@customer.example"], raw)
        relay.close()
        assert result.ok, result
        assert [m.authenticated_as for m in sink.messages] == [USER, USER]
        assert sink.mechanisms == ["XOAUTH2", "XOAUTH2"]
        assert provider.provider.grants == ["refresh_token", "refresh_token"]
        ok, detail = check_relay(cfg) or (False, "")
        assert ok and f"logged in as {USER}" in detail and "oauth2 token ok" in detail
        provider.provider.revoke_refresh_tokens()
        provider.provider.expire_access_tokens()
        relay = Relay(cfg)
        result = relay.send("support@example.test", ["c@customer.example"], raw)
        # kept in the outbox and retried: no recipient is done (2xx) or refused for good (5xx)
        assert not result.ok and not any(is_done(a) for a in result.answers.values())
        assert "run `mailgate oauth2 authorize --relay`" in result.detail, result
        assert len(sink.messages) == 2
    finally:
        sink.stop()
    assert_no_secret(provider, caplog.text)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any) -> None:  # keep the 302: its Location is pasted
        return None


@pytest.mark.parametrize("paste", [False, True])
def test_authorize_command_stores_the_refresh_token(
    tmp_path: Path, provider: ProviderServer, oauth_dovecot: Dovecot, paste: bool
) -> None:
    """`mailgate oauth2 authorize support`: the URL printed, the browser (here urllib)
    signs in and lands on the loopback listener (or the admin pastes where it landed),
    the refresh token is stored."""
    redirect = f"http://127.0.0.1:{free_port()}/"
    cfg = config(tmp_path, provider, oauth_dovecot, redirect_uri=redirect)
    argv = ["-m", "mailgate.cli.main", "-c", str(cfg.path), "oauth2", "authorize", "support"]
    proc = subprocess.Popen(
        [sys.executable, *argv, *(["--paste"] if paste else [])],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stdin is not None
    printed = []
    for line in proc.stdout:
        printed.append(line)
        if line.startswith(("Waiting for the answer", "Then paste")):
            break
    url = next(line.strip() for line in printed if line.strip().startswith(provider.url))
    assert "code_challenge_method=S256" in url and "login_hint=support%40example.test" in url
    if paste:
        with pytest.raises(urllib.error.HTTPError) as redirected:
            urllib.request.build_opener(_NoRedirect).open(url, timeout=10)
        answer = redirected.value.headers["Location"]
        assert answer.startswith(redirect)
        out, err = proc.communicate(answer + "\n", timeout=20)
    else:
        with urllib.request.urlopen(url, timeout=10) as landed:  # 302 to the listener
            assert b"authorization received" in landed.read()
        out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert "refresh token stored in" in out
    stored = token_store(cfg).load("imap-support")
    assert stored.refresh_token in provider.provider.refresh
    assert provider.provider.grants == ["authorization_code"]
    tokens = imap_tokens(cfg, cfg.queue("support"))
    assert tokens is not None and tokens.access_token() == stored.access_token
    assert_no_secret(provider, "".join(printed), out, err)


def test_check_config_connect_says_token_state_and_what_to_do(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    from mailgate.cli.main import main

    w = world
    sink = OAuthSmtpSink(w.provider.provider)
    try:
        cfg = config(w.tmp, w.provider, w.d, relay_port=sink.port)
        authorized(cfg, w.provider)
        authorized(cfg, w.provider, "relay")
        assert main(["-c", str(cfg.path), "check-config", "--connect"]) == 0
        good = capsys.readouterr().out
        w.provider.provider.revoke_refresh_tokens()
        w.provider.provider.expire_access_tokens()
        assert main(["-c", str(cfg.path), "check-config", "--connect"]) == 1
        bad = capsys.readouterr().out
    finally:
        sink.stop()
    print(good, bad)
    imap = f"imap support {USER}@{w.d.host}:{w.d.port}/INBOX:"
    assert f"{imap} ok" in good and "oauth2 token ok, expires at 20" in good
    assert f"relay ok 127.0.0.1:{sink.port}: logged in as {USER}; oauth2 token ok" in good
    assert f"{imap} FAILED" in bad and "run `mailgate oauth2 authorize support`" in bad
    assert "relay FAILED" in bad and "run `mailgate oauth2 authorize --relay`" in bad
    assert_no_secret(w.provider, good, bad, w.caplog.text)


def test_no_refresh_token_yet_says_what_to_run(tmp_path: Path, provider: ProviderServer) -> None:
    cfg = config(tmp_path, provider, relay_port=free_port())
    tokens = relay_tokens(cfg)
    assert tokens is not None
    with pytest.raises(
        OAuth2Error, match=r"no refresh token yet: run `mailgate oauth2 authorize --relay`"
    ):
        tokens.access_token()
    provider.provider.fail_next(503)
    authorized(cfg, provider, "relay")
    with pytest.raises(OAuth2Error, match="refused: temporarily_unavailable: told to fail"):
        tokens.access_token()
    assert tokens.access_token()  # the refresh token survived the failed attempt


def test_a_fresh_token_refused_too_is_an_auth_error_after_one_refresh(world: World) -> None:
    """The app's tokens open another mailbox: refused, refreshed once, refused: backoff."""
    w = world
    secret = '{ file = "../client-secret" }'
    cfg = config(w.tmp, w.provider, w.d, grant="client_credentials", client_secret=secret)
    w.provider.provider.app_user = "billing@example.test"
    p = support_poller(cfg, w.spool, w.engine, auth_retry_seconds=300.0)
    assert p._one_connection() == 300.0
    assert p.last_error == (
        f"imap XOAUTH2 login to {USER}@{w.d.host}:{w.d.port} failed with a fresh token: "
        "[AUTHENTICATIONFAILED] Authentication failed. "
        "(does the account grant this app IMAP access?)"
    )
    assert w.provider.provider.grants == ["client_credentials"] * 2  # one refresh, no loop
    assert_no_secret(w.provider, w.caplog.text)
