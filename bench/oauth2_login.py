"""What OAuth2 costs a login, against a throw-away Dovecot (oauth2 passdb) and the local
test provider (tests/oauth2_provider.py):

    .venv/bin/python bench/oauth2_login.py [--rounds 200]

Prints, as medians over --rounds:
- access_token() with a cached token (flock + read of the 0600 file);
- a refresh: POST to the token endpoint + the rotated token written (fsync file + dir);
- IMAP connect + login + logout: password, XOAUTH2 with a cached token, XOAUTH2 with a
  refresh before each login.

No assertions: numbers to compare runs, recorded in docs/performance.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.scratch import scratch_dir  # noqa: E402
from mailgate.config.imap import ImapSettings  # noqa: E402
from mailgate.oauth2.client import TokenClient  # noqa: E402
from mailgate.oauth2.store import Tokens, TokenStore  # noqa: E402
from mailgate.pollers.imap.connection import connect, logout  # noqa: E402
from tests.oauth2_provider import CLIENT_ID, ProviderServer, enable_oauth2  # noqa: E402
from tests.servers import Dovecot  # noqa: E402

USER = "support@example.test"


def median_ms(fn: Callable[[], object], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=200)
    n = ap.parse_args().rounds
    provider = ProviderServer()
    tmp = scratch_dir("mg-oauth2-bench-")
    (tmp / "password").write_text("secret\n")
    with Dovecot() as d:
        enable_oauth2(d, f"{provider.url}/introspect")
        common = {"host": d.host, "port": d.port, "tls": "none", "user": USER, "base": tmp}
        table = {
            "token_endpoint": f"{provider.url}/token",
            "authorize_endpoint": f"{provider.url}/authorize",
            "client_id": CLIENT_ID,
            "scope": "mail",
        }
        oauth = ImapSettings(**common, oauth2=table)
        plain = ImapSettings(**common, password_file="password")
        assert oauth.oauth2 is not None
        store = TokenStore(tmp / "oauth2")
        store.save("imap-support", Tokens(refresh_token=provider.provider.seed(USER)))
        tokens = TokenClient(oauth.oauth2, tmp, store, "imap-support", authorize_hint="-")
        tokens.access_token()
        figures = {
            "access_token(), cached": median_ms(tokens.access_token, n),
            "refresh (token endpoint + durable write)": median_ms(
                lambda: tokens.access_token(force=True), n
            ),
            "IMAP login, password": median_ms(lambda: logout(connect(plain)), n),
            "IMAP login, XOAUTH2 cached token": median_ms(
                lambda: logout(connect(oauth, tokens)), n
            ),
            "IMAP login, XOAUTH2 after a refresh": median_ms(
                lambda: (tokens.access_token(force=True), logout(connect(oauth, tokens))), n
            ),
        }
    provider.stop()
    print(f"load average {os.getloadavg()[0]:.2f}, {n} rounds, medians:")
    for name, ms in figures.items():
        print(f"  {name:45s} {ms:8.3f} ms")


if __name__ == "__main__":
    main()
