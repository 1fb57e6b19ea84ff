"""`mailgate oauth2 authorize QUEUE | --relay`: the authorization code flow, done once.

Prints the address to open, takes the answer back (a listener on the loopback
redirect_uri, or `--paste` the address the browser ended on) and stores the refresh token
the daemon uses from then on. Tokens are never printed.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime

from mailgate.cli.startup import load_config
from mailgate.config.model import Config
from mailgate.oauth2 import authorize
from mailgate.oauth2.client import TokenClient
from mailgate.oauth2.clients import imap_tokens, relay_tokens
from mailgate.oauth2.endpoint import OAuth2Error


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", required=True)
    sp = sub.add_parser("authorize", help="get and store a refresh token (opens no browser)")
    sp.add_argument("queue", nargs="?", help="the queue whose [imap.oauth2] to authorize")
    sp.add_argument("--relay", action="store_true", help="authorize [relay.oauth2] instead")
    sp.add_argument("--paste", action="store_true", help="paste the address the browser ended on")
    sp.add_argument("--timeout", type=float, default=600.0, help="seconds to wait (listener)")


def _client(cfg: Config, args: argparse.Namespace) -> tuple[TokenClient | None, str, str]:
    """The token client, what it is for, and the login hint."""
    if args.relay:
        return relay_tokens(cfg), "[relay]", cfg.relay.username
    if not args.queue:
        raise OAuth2Error("name a queue, or give --relay")
    queue = next((q for q in cfg.queues if q.name == args.queue), None)
    if queue is None:
        raise OAuth2Error(f"no queue named {args.queue!r}")
    hint = queue.imap.login_user if queue.imap else ""
    return imap_tokens(cfg, queue), f"queue {queue.name} [imap]", hint


def _listen(tokens: TokenClient) -> authorize.RedirectListener:
    try:
        return authorize.RedirectListener(tokens.settings)
    except OSError as e:
        raise OAuth2Error(
            f"cannot listen on {tokens.settings.redirect_uri}: {e.strerror}; use --paste"
        ) from None


def main(args: argparse.Namespace) -> int:
    cfg = load_config(args.config)
    try:
        tokens, what, hint = _client(cfg, args)
        if tokens is None:
            raise OAuth2Error(f"{what} has no oauth2 table")
        if tokens.settings.grant == "client_credentials":
            raise OAuth2Error(f"{what} uses client credentials: nothing to authorize")
        request = authorize.start(tokens.settings, hint)
        listener = None if args.paste else _listen(tokens)
        print(f"Open this address in a browser and sign in as {hint or 'the mailbox'}:\n")
        print(f"  {request.url}\n", flush=True)
        if listener is None:
            print("Then paste the address the browser ended on:", flush=True)
            answer = sys.stdin.readline()
        else:
            print(f"Waiting for the answer on {tokens.settings.redirect_uri} ...", flush=True)
            answer = listener.wait(args.timeout)
        kept = authorize.finish(tokens, request, authorize.code_from(answer, request))
    except OAuth2Error as e:
        print(f"mailgate oauth2: {e}", file=sys.stderr)
        return 1
    until = datetime.fromtimestamp(kept.expires_at, UTC).isoformat(timespec="seconds")
    print(f"{what}: refresh token stored in {tokens.store.path(tokens.key)} (mode 0600)")
    print(f"  first access token valid until {until}; the daemon refreshes from now on")
    return 0
