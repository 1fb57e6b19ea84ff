"""`mailgate keys`: a queue's PGP keys (create or import the queue key, export its public key,
import customers' and agents' public keys, list). Each command works on the GnuPG home of a
queue's `[pgp]` table (docs/pgp.md); only `gnupg_home` needs to be set to start, so the
queue key can be made before its fingerprint is written into `key`.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import sys
from pathlib import Path

from mailgate.cli.output import add_json_flag, print_json
from mailgate.cli.startup import config_error_exit
from mailgate.config import load as config_load
from mailgate.config.errors import ConfigError
from mailgate.config.model import Config, Queue
from mailgate.config.pgp import PgpSettings
from mailgate.pgp import keys as keymgmt

EX_OK, EX_FAIL = 0, 1


class KeysCliError(Exception):
    """A problem to print as `mailgate keys: ...` with exit status 1."""


_NO_HOME = re.compile(r": pgp\.gnupg_home: (/.+) is not a directory$")


def _load(path: str, *, make_homes: bool = False) -> Config:
    """The configuration; `make_homes`: create missing [pgp] GnuPG homes (mode 700) first,
    so `keys create` / `keys import` can start from an empty directory."""
    try:
        return config_load.load(path)
    except ConfigError as e:
        missing = [m.group(1) for m in map(_NO_HOME.search, e.problems) if m]
        if make_homes and missing and len(missing) == len(e.problems):
            for home in missing:
                keymgmt.ensure_home(home)
                print(f"created GnuPG home {home} (mode 700)", file=sys.stderr)
            return _load(path)
        config_error_exit(e)


def _queue(cfg: Config, name: str) -> Queue:
    q = cfg.queue(name)
    if q is None:
        names = ", ".join(x.name for x in cfg.queues)
        raise KeysCliError(f"no queue {name!r} (queues: {names})")
    return q


def _pgp(queue: Queue) -> PgpSettings:
    if queue.pgp is None:
        raise KeysCliError(
            f"{queue.source}: pgp.gnupg_home: not set; add a [pgp] table with gnupg_home "
            '(e.g. gnupg_home = "../gnupg/support") first'
        )
    return queue.pgp


def _settings(queue: Queue) -> PgpSettings:
    """The queue's `[pgp]`, which must name the queue key."""
    settings = _pgp(queue)
    if not settings.key:
        raise KeysCliError(f"{queue.source}: pgp.key: not set (see `mailgate keys list`)")
    return settings


def _state(k: keymgmt.KeyInfo) -> str:
    if k.revoked:
        return "revoked"
    if k.expired:
        return "expired"
    return "ok" if k.usable else f"unusable ({k.validity})"


def _describe(k: keymgmt.KeyInfo) -> str:
    what = "secret+public" if k.secret else "public"
    caps = ("encrypt " if k.can_encrypt else "") + ("sign" if k.can_sign else "")
    return f"{k.fingerprint}  {what}  {k.algo}  {_state(k)}  [{caps.strip() or '-'}]  " + (
        ", ".join(k.emails) or ", ".join(k.uids) or "(no user id)"
    )


# --------------------------------------------------------------------------- commands


def cmd_create(cfg: Config, args: argparse.Namespace) -> int:
    queue = _queue(cfg, args.queue)
    home = _pgp(queue).home
    email = (args.email or queue.address).lower()
    name = args.name or queue.from_name or f"{queue.name} helpdesk"
    if home.is_dir() and not args.force:
        taken = [k for k in keymgmt.list_keys(home) if k.secret and email in k.emails]
        if taken:
            raise KeysCliError(
                f"{home} already holds secret key {taken[0].fingerprint} for {email} "
                "(--force makes another one)"
            )
    passphrase = _pgp(queue).passphrase()
    if passphrase is None:
        print(
            "note: no passphrase configured (pgp.passphrase_file / _env / _command): "
            "the secret key is stored unprotected; keep the GnuPG home mode 700",
            file=sys.stderr,
        )
    fpr = keymgmt.create_queue_key(home, name, email, passphrase, args.algo, args.expire)
    print(f"created {args.algo} key {fpr} for {name} <{email}> in {home}")
    print(f'put it into {queue.source} under [pgp]:\n  key = "{fpr}"')
    return EX_OK


def _show_only(home: Path, data: bytes) -> tuple[list[keymgmt.KeyInfo], bool]:
    """What a key file holds, without importing it: (keys, holds secret key material)."""
    proc = keymgmt.run_gpg(
        home,
        ["--with-colons", "--fixed-list-mode", "--import-options", "show-only", "--import"],
        data,
    )
    listing = proc.stdout.decode("utf-8", "replace")
    secret = any(line.startswith(("sec:", "ssb:")) for line in listing.splitlines())
    return keymgmt.parse_colon_listing(listing), secret


def cmd_import(cfg: Config, args: argparse.Namespace) -> int:
    queue = _queue(cfg, args.queue)
    home = keymgmt.ensure_home(_pgp(queue).home)
    if args.file == "-":
        data = sys.stdin.buffer.read()
    else:
        try:
            data = Path(args.file).read_bytes()
        except OSError as e:
            raise KeysCliError(f"cannot read {args.file}: {e.strerror}") from e
    found, secret = _show_only(home, data)
    if not found:
        raise KeysCliError(f"{args.file}: no OpenPGP key found")
    if secret and not args.queue_key:
        raise KeysCliError(
            f"{args.file} holds SECRET key material: only the queue's own key belongs here "
            "(use --queue-key for it); for a customer or an agent import their PUBLIC key"
        )
    if args.queue_key and not secret:
        raise KeysCliError(f"{args.file}: --queue-key given but the file has no secret key")
    if args.expect_email:
        want = args.expect_email.lower()
        wrong = [k.fingerprint for k in found if want not in k.emails]
        if wrong:
            raise KeysCliError(
                f"{args.file}: key {', '.join(wrong)} has no user id {want}; not imported"
            )
    fprs = keymgmt.import_key(home, data)
    listed = {k.fingerprint: k for k in keymgmt.list_keys(home)}
    for fpr in fprs:
        k = listed.get(fpr)
        print(f"imported {_describe(k) if k else fpr}")
        if k is not None and not (k.usable and k.can_encrypt):
            print(f"  warning: {fpr} cannot be used to encrypt ({_state(k)})", file=sys.stderr)
    if args.queue_key:
        print(f'queue key: put into {queue.source} under [pgp]:\n  key = "{fprs[0]}"')
    else:
        print(
            "mail to these addresses is now encrypted (customers), and #secret can be sent "
            "to an agent whose pgp_fingerprint is one of them"
        )
    return EX_OK


def cmd_export(cfg: Config, args: argparse.Namespace) -> int:
    queue = _queue(cfg, args.queue)
    if args.fingerprint:
        home, fpr = _pgp(queue).home, args.fingerprint.replace(" ", "").upper()
    else:
        settings = _settings(queue)
        home, fpr = settings.home, settings.key
    armored = keymgmt.export_public(home, fpr)
    if args.output and args.output != "-":
        Path(args.output).write_text(armored)
        print(f"wrote the public key {fpr} to {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(armored)
    return EX_OK


def cmd_list(cfg: Config, args: argparse.Namespace) -> int:
    queue = _queue(cfg, args.queue)
    home = _pgp(queue).home
    queue_key = _pgp(queue).key
    agents = {a.pgp_fingerprint.replace(" ", "").upper(): a.name for a in cfg.agents}
    found = keymgmt.list_keys(home)
    if args.json:
        roles = {queue_key: "queue key"} | {f: f"agent {n}" for f, n in agents.items()}
        print_json({**dataclasses.asdict(k), "role": roles.get(k.fingerprint, "")} for k in found)
        return EX_OK
    print(f"{home}: {len(found)} key(s)")
    for k in found:
        role = ""
        if k.fingerprint == queue_key:
            role = "  <- queue key"
        elif k.fingerprint in agents:
            role = f"  <- agent {agents[k.fingerprint]}"
        print(_describe(k) + role)
    if queue_key and queue_key not in {k.fingerprint for k in found}:
        print(f"warning: the configured queue key {queue_key} is not in this home", file=sys.stderr)
        return EX_FAIL
    return EX_OK


COMMANDS = {"create": cmd_create, "import": cmd_import, "export": cmd_export, "list": cmd_list}


def main(args: argparse.Namespace) -> int:
    cfg = _load(args.config, make_homes=args.keys_action in ("create", "import"))
    try:
        return COMMANDS[args.keys_action](cfg, args)
    except (KeysCliError, keymgmt.KeyManagementError) as e:
        print(f"mailgate keys {args.keys_action}: {e}", file=sys.stderr)
        return EX_FAIL


def add_arguments(k: argparse.ArgumentParser) -> None:
    ks = k.add_subparsers(dest="keys_action", required=True)

    c = ks.add_parser("create", help="generate the queue's key pair in its GnuPG home")
    c.add_argument("queue", help="queue name")
    c.add_argument("--name", help="user id name (default: the queue's from_name)")
    c.add_argument("--email", help="user id address (default: the queue's first address)")
    c.add_argument(
        "--algo", choices=sorted(keymgmt.ALGOS), default="ecc", help="key type (default: ecc)"
    )
    c.add_argument("--expire", default="0", help="0 (never), N[dwmy] or YYYY-MM-DD")
    c.add_argument("--force", action="store_true", help="even if a key for the address exists")

    i = ks.add_parser("import", help="import a customer's or agent's public key (or --queue-key)")
    i.add_argument("queue", help="queue whose GnuPG home takes the key")
    i.add_argument("file", help="armored or binary key file, '-' for stdin")
    i.add_argument(
        "--queue-key", action="store_true", help="the file is the queue's own SECRET key"
    )
    i.add_argument("--expect-email", help="refuse unless every key has a user id with this address")

    e = ks.add_parser("export", help="print the queue's public key (to publish for customers)")
    e.add_argument("queue", help="queue name")
    e.add_argument("-o", "--output", help="write to this file instead of stdout")
    e.add_argument("--fingerprint", help="another key of the home instead of the queue key")

    li = ks.add_parser("list", help="keys in the queue's GnuPG home")
    li.add_argument("queue", help="queue name")
    add_json_flag(li)
