"""Real throw-away servers for tests: Dovecot IMAP, PostgreSQL, GnuPG home, SMTP/LMTP sink."""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import email
import email.policy
import errno
import glob
import os
import re
import shutil
import signal
import socket
import ssl as ssl_module
import subprocess
import tempfile
import threading
import weakref
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.lmtp import LMTP
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword
from imapclient import IMAPClient

from tests.harness import wait_until

HOST = "127.0.0.1"
TEST_USER = "mgtest"
DEFAULT_USERS = (
    "support@example.test",
    "billing@example.test",
    "sales@example.test",
    "agent@example.test",
)
DEFAULT_PASSWORD = "secret"
INSTALL_HINT = "sudo bash scripts/install-system-deps.sh"

__all__ = [
    "DEFAULT_PASSWORD",
    "DEFAULT_USERS",
    "HOST",
    "CapturedMessage",
    "Dovecot",
    "GnuPGHome",
    "MissingComponent",
    "Postgres",
    "SmtpSink",
    "free_port",
    "missing_reason",
    "pid_alive",
    "require",
]


class MissingComponent(RuntimeError):
    """A system component (binary or package) needed by a test server is not installed."""


# ---------------------------------------------------------------------------------------------
# process helpers


def free_port() -> int:
    """Return a currently free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def _can_bind(port: int) -> bool:
    """Tell whether a listener could bind 127.0.0.1:port now (SO_REUSEADDR, like asyncio)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((HOST, port))
        except OSError:
            return False
        return True


def _is_root() -> bool:
    return os.geteuid() == 0


def _proc_stat(pid: int) -> tuple[str, int, int] | None:
    """Return (state, ppid, pgrp) of a process, or None if it does not exist."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            raw = f.read()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    fields = raw[raw.rindex(")") + 2 :].split()
    return fields[0], int(fields[1]), int(fields[2])


def pid_alive(pid: int) -> bool:
    """Tell whether a process exists and is not a zombie (state Z counts as gone)."""
    st = _proc_stat(pid)
    return st is not None and st[0] not in ("Z", "X")


def _all_pids() -> Iterator[int]:
    for name in os.listdir("/proc"):
        if name.isdigit():
            yield int(name)


def _group_pids(pgid: int) -> list[int]:
    """Live (non-zombie) processes in a process group."""
    out = []
    for pid in _all_pids():
        st = _proc_stat(pid)
        if st and st[2] == pgid and st[0] not in ("Z", "X"):
            out.append(pid)
    return out


def _pids_mentioning(text: str) -> list[int]:
    """Live processes whose command line contains text."""
    needle = text.encode()
    out = []
    for pid in _all_pids():
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmdline = f.read()
        except OSError:
            continue
        if needle in cmdline and pid_alive(pid):
            out.append(pid)
    return out


def _wait_gone(pids: Iterable[int], timeout: float) -> bool:
    """Wait until none of pids is alive; return False on timeout."""
    pending = tuple(pids)
    try:
        wait_until(lambda: not any(pid_alive(p) for p in pending), timeout, interval=0.01)
    except TimeoutError:
        return False
    return True


def _signal(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def _kill_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _ensure_system_user(name: str) -> None:
    """Create a system user (as root) unless it exists."""
    if subprocess.run(["id", "-u", name], capture_output=True).returncode == 0:
        return
    subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
        check=True,
        capture_output=True,
    )


def _as_user(user: str | None, argv: Sequence[str]) -> list[str]:
    return ["runuser", "-u", user, "--", *argv] if user else list(argv)


def _mkdtemp(kind: str) -> str:
    return tempfile.mkdtemp(prefix=f"mg-{kind}.", dir="/tmp")


def _chown_tree(path: str, user: str) -> None:
    subprocess.run(["chown", "-R", f"{user}:", path], check=True)


def _tail(path: str, limit: int = 4000) -> str:
    try:
        with open(path, errors="replace") as f:
            return f.read()[-limit:]
    except OSError:
        return ""


# strong references: a server a test forgot to stop is still stopped at interpreter exit
_LIVE: set[Any] = set()


@atexit.register
def _stop_leftovers() -> None:
    for server in list(_LIVE):
        with contextlib.suppress(Exception):
            server.stop()


# ---------------------------------------------------------------------------------------------
# component lookup and require()


def _dovecot_binary() -> str | None:
    path = shutil.which("dovecot") or "/usr/sbin/dovecot"
    if not os.access(path, os.X_OK) or not os.access("/usr/lib/dovecot/imap", os.X_OK):
        return None
    return path


def _pg_bindir() -> str | None:
    found = shutil.which("initdb")
    if found:
        bindir = os.path.dirname(os.path.realpath(found))
        if os.access(os.path.join(bindir, "postgres"), os.X_OK):
            return bindir
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"),
        key=lambda p: int(re.sub(r"\D", "", p.split("/")[-2]) or 0),
    )
    for bindir in reversed(candidates):
        if os.access(os.path.join(bindir, "initdb"), os.X_OK):
            return bindir
    return None


def _have_module(name: str) -> bool:
    try:
        __import__(name)
    except ImportError:
        return False
    return True


_COMPONENTS: dict[str, tuple[str, Any]] = {
    "dovecot": ("apt-get install -y dovecot-imapd", lambda: _dovecot_binary() is not None),
    "postgres": (
        "apt-get install -y postgresql-15 && pip install 'psycopg[binary]'",
        lambda: _pg_bindir() is not None and _have_module("psycopg"),
    ),
    "gpg": (
        "apt-get install -y gnupg",
        lambda: shutil.which("gpg") is not None and shutil.which("gpgconf") is not None,
    ),
    "openssl": ("apt-get install -y openssl", lambda: shutil.which("openssl") is not None),
    "systemd-analyze": (
        "apt-get install -y systemd",
        lambda: shutil.which("systemd-analyze") is not None,
    ),
    # Postfix's master must start as root (tests/postfix_server.py)
    "postfix": (
        "bash scripts/install-system-deps.sh (preseeds and installs postfix), as root",
        lambda: os.access("/usr/sbin/postfix", os.X_OK) and _is_root(),
    ),
    "chromium": ("apt-get install -y chromium", lambda: shutil.which("chromium") is not None),
}


def missing_reason(component: str) -> str | None:
    """Return why component is unavailable (with the install command), or None if usable."""
    try:
        install, check = _COMPONENTS[component]
    except KeyError:
        raise ValueError(f"unknown component {component!r}; one of {sorted(_COMPONENTS)}") from None
    if check():
        return None
    return f"{component} is not installed; install it with: {install}  (or: {INSTALL_HINT})"


def require(component: str) -> None:
    """Skip the current test if component is missing; fail instead when env CI is set."""
    reason = missing_reason(component)
    if reason is None:
        return
    try:
        import pytest
    except ImportError:
        raise MissingComponent(reason) from None
    if os.environ.get("CI"):
        pytest.fail(f"CI is set and {reason}", pytrace=False)
    pytest.skip(reason)


def _check(component: str) -> None:
    reason = missing_reason(component)
    if reason is not None:
        raise MissingComponent(reason)


# ---------------------------------------------------------------------------------------------
# Dovecot


_MAILBOX_USER = re.compile(r"^[A-Za-z0-9._+-]+@[A-Za-z0-9.-]+$")
_DOVECOT_CONF = """\
# generated by tests/servers.py - standalone, does not include /etc/dovecot
base_dir = {d}/run
state_dir = {d}/state
instance_name = mg-dovecot-{port}
log_path = {d}/log/dovecot.log
info_log_path = {d}/log/dovecot.log
debug_log_path = {d}/log/dovecot.log
protocols = imap
listen = {host}

default_login_user = {user}
default_internal_user = {user}
default_internal_group = {group}
first_valid_uid = 1
first_valid_gid = 1

disable_plaintext_auth = no
auth_failure_delay = 0
auth_mechanisms = plain login
auth_cache_size = 0
# one passwd-file per user: dovecot re-reads a changed passwd-file at most once a second,
# but a new file (new user) is read at once
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {d}/users/%u
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {d}/users/%u
}}

mail_location = maildir:~/Maildir
mailbox_idle_check_interval = 1 secs
mail_fsync = never
namespace inbox {{
  inbox = yes
  separator = /
  mailbox Archive {{
    auto = create
    special_use = \\Archive
  }}
  mailbox Spam {{
    auto = create
    special_use = \\Junk
  }}
}}
protocol imap {{
  mail_max_userip_connections = 200
}}

{ssl_block}

service imap-login {{
  inet_listener imap {{
    address = {host}
    port = {port}
  }}
  {imaps_listener}
  chroot =
}}
service anvil {{
  chroot =
  # no auth penalty: otherwise failed logins from 127.0.0.1 get delayed 2, 4, 8, 15 s
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
"""


class Dovecot:
    """A private rootless Dovecot 2.3 IMAP(S) server on 127.0.0.1 with passwd-file users."""

    host: str = HOST

    def __init__(
        self,
        users: Iterable[str] = DEFAULT_USERS,
        password: str = DEFAULT_PASSWORD,
        *,
        ssl: bool = False,
        start: bool = True,
    ) -> None:
        """Prepare the server (and start it unless start=False)."""
        _check("dovecot")
        if ssl:
            _check("openssl")
        self.users: list[str] = list(users)
        self.password = password
        self.ssl = ssl
        self.port = 0
        self.imaps_port: int | None = None
        self.cafile: str | None = None
        self.dir = ""
        self.pid: int | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._runas = TEST_USER if _is_root() else None
        self._passwords: dict[str, str] = {u: password for u in self.users}
        if start:
            self.start()

    # paths
    @property
    def conf_path(self) -> str:
        """Path of the generated dovecot.conf."""
        return os.path.join(self.dir, "dovecot.conf")

    @property
    def log_path(self) -> str:
        """Path of Dovecot's log file."""
        return os.path.join(self.dir, "log", "dovecot.log")

    def log(self) -> str:
        """Return the tail of Dovecot's log."""
        return _tail(self.log_path)

    def __repr__(self) -> str:
        return f"<Dovecot {self.host}:{self.port} imaps={self.imaps_port} dir={self.dir}>"

    # lifecycle
    def start(self) -> None:
        """Create the directory and config on first call, then start the master."""
        if self.running:
            return
        if self.dir and os.path.isdir(self.dir):
            self._launch()
            _LIVE.add(self)
            return
        for attempt in range(3):  # a picked free port may be taken before dovecot binds it
            self._prepare()
            _LIVE.add(self)
            try:
                self._launch()
                return
            except RuntimeError as exc:
                self.stop()
                if "in use" not in str(exc) or attempt == 2:
                    raise

    def _prepare(self) -> None:
        if self._runas:
            _ensure_system_user(self._runas)
        user = self._runas or _current_user()
        group = _primary_group(user)
        d = _mkdtemp("dovecot")
        os.chmod(d, 0o755)
        for sub in ("run", "state", "mail", "log", "users"):
            os.mkdir(os.path.join(d, sub))
        self.dir = d
        self._user, self._group = user, group
        self.port = free_port()
        ssl_block, imaps_listener = "ssl = no", ""
        if self.ssl:
            self.imaps_port = free_port()
            self.cafile = os.path.join(d, "cert.pem")
            _self_signed_cert(self.cafile, os.path.join(d, "key.pem"))
            ssl_block = (
                f"ssl = yes\nssl_cert = <{d}/cert.pem\nssl_key = <{d}/key.pem\n"
                "ssl_min_protocol = TLSv1.2"
            )
            imaps_listener = (
                f"inet_listener imaps {{\n    address = {self.host}\n"
                f"    port = {self.imaps_port}\n    ssl = yes\n  }}"
            )
        with open(self.conf_path, "w") as f:
            f.write(
                _DOVECOT_CONF.format(
                    d=d,
                    host=self.host,
                    port=self.port,
                    user=user,
                    group=group,
                    ssl_block=ssl_block,
                    imaps_listener=imaps_listener,
                )
            )
        for u in self.users:
            self._write_user(u, self._passwords[u])
        if self._runas:
            _chown_tree(d, self._runas)

    def _write_user(self, user: str, password: str) -> None:
        if not _MAILBOX_USER.match(user):
            raise ValueError(f"unsupported user name {user!r} (want local@domain)")
        if any(c in password for c in ":\n"):
            raise ValueError("password must not contain ':' or newlines")
        uid, gid = _uid_gid(self._user)
        path = os.path.join(self.dir, "users", user)
        with open(path, "w") as f:
            f.write(f"{user}:{{PLAIN}}{password}:{uid}:{gid}::{self.dir}/mail/{user}::\n")
        os.chmod(path, 0o644)

    def _launch(self) -> None:
        binary = _dovecot_binary()
        assert binary is not None
        # a SIGKILLed master may linger as a zombie; dovecot would take it for a live instance
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(self.dir, "run", "master.pid"))
        out = open(os.path.join(self.dir, "log", "stdout.log"), "ab")  # noqa: SIM115
        with out:
            self._proc = subprocess.Popen(
                _as_user(self._runas, [binary, "-F", "-c", self.conf_path]),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        proc = self._proc
        with contextlib.suppress(TimeoutError):  # exited or too slow: said below
            wait_until(
                lambda: proc.poll() is not None or _imap_greets(self.host, self.port),
                15,
                interval=0.02,
            )
        if proc.poll() is not None or not _imap_greets(self.host, self.port):
            self._halt(graceful=False)
            raise RuntimeError(
                f"dovecot did not come up on port {self.port}:\n"
                f"{_tail(os.path.join(self.dir, 'log', 'stdout.log'))}\n{self.log()}"
            )
        self.pid = self._master_pid()

    def _master_pid(self) -> int | None:
        try:
            with open(os.path.join(self.dir, "run", "master.pid")) as f:
                return int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    @property
    def running(self) -> bool:
        """Tell whether the master process is alive."""
        return self._proc is not None and self._proc.poll() is None

    def _halt(self, *, graceful: bool) -> None:
        """Stop all processes of this instance, keeping the directory."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        pgid = proc.pid
        members = _group_pids(pgid)
        master = self._master_pid() or self.pid
        if master and pid_alive(master):
            _signal(master, signal.SIGTERM if graceful else signal.SIGKILL)
            _wait_gone([master], 10)
        _kill_group(pgid, signal.SIGKILL)
        _wait_gone(members + _group_pids(pgid), 10)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=10)
        self.pid = None

    def stop(self) -> None:
        """Stop the server and delete its directory (mail included)."""
        self._halt(graceful=False)
        if self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)
        _LIVE.discard(self)

    def restart(self, *, graceful: bool = True) -> None:
        """Stop and start again on the same port(s) with the same maildirs."""
        if not self.dir or not os.path.isdir(self.dir):
            raise RuntimeError("restart() after stop(): the data is gone")
        self._halt(graceful=graceful)
        self._launch()
        _LIVE.add(self)

    def kill(self) -> None:
        """SIGKILL the master and its children (simulated crash); data stays for restart()."""
        self._halt(graceful=False)

    def __enter__(self) -> Dovecot:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # users and mail
    def add_user(self, user: str, password: str | None = None) -> str:
        """Add a mailbox user at runtime (usable at once); return the name."""
        password = self.password if password is None else password
        if user in self._passwords:
            raise ValueError(f"user {user} exists already")
        self._write_user(user, password)
        self.users.append(user)
        self._passwords[user] = password
        return user

    def login(
        self, user: str, password: str | None = None, *, ssl: bool = False, timeout: float = 10
    ) -> IMAPClient:
        """Return a logged-in IMAPClient (plain IMAP, or IMAPS verified against cafile)."""
        if password is None:
            password = self._passwords.get(user, self.password)
        if ssl:
            if self.imaps_port is None or self.cafile is None:
                raise RuntimeError("this Dovecot was started without ssl=True")
            ctx = ssl_module.create_default_context(cafile=self.cafile)
            client = IMAPClient(
                self.host, port=self.imaps_port, ssl=True, ssl_context=ctx, timeout=timeout
            )
        else:
            client = IMAPClient(self.host, port=self.port, ssl=False, timeout=timeout)
        try:
            client.login(user, password)
        except Exception:
            with contextlib.suppress(Exception):
                client.shutdown()
            raise
        return client

    def append(
        self,
        user: str,
        raw: bytes,
        folder: str = "INBOX",
        flags: Sequence[str | bytes] = (),
    ) -> int | None:
        """APPEND a raw message to user's folder; return its UID (from APPENDUID) if known."""
        client = self.login(user)
        try:
            resp = client.append(folder, raw, flags=list(flags))
        finally:
            with contextlib.suppress(Exception):
                client.logout()
        match = re.search(rb"APPENDUID \d+ (\d+)", resp or b"")
        return int(match.group(1)) if match else None

    def clear(self, user: str) -> None:
        """Delete every message in every folder of user."""
        client = self.login(user)
        try:
            for _flags, _sep, name in client.list_folders():
                client.select_folder(name)
                uids = client.search(["ALL"])
                if uids:
                    client.delete_messages(uids)
                    client.expunge()
        finally:
            with contextlib.suppress(Exception):
                client.logout()


def _current_user() -> str:
    import pwd

    return pwd.getpwuid(os.geteuid()).pw_name


def _primary_group(user: str) -> str:
    import grp
    import pwd

    return grp.getgrgid(pwd.getpwnam(user).pw_gid).gr_name


def _uid_gid(user: str) -> tuple[int, int]:
    import pwd

    pw = pwd.getpwnam(user)
    return pw.pw_uid, pw.pw_gid


def _self_signed_cert(cert: str, key: str) -> None:
    """Write a self-signed P-256 cert for localhost/127.0.0.1 (usable as its own CA file)."""
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "ec",
            "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-days", "2", "-subj", "/CN=localhost",
            "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
            "-keyout", key, "-out", cert,
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip


def _imap_greets(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1) as s:
            return s.recv(200).startswith(b"* OK")
    except OSError:
        return False


# ---------------------------------------------------------------------------------------------
# PostgreSQL


_DBNAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


class Postgres:
    """A private PostgreSQL cluster (initdb per instance, trust auth, fsync off) on 127.0.0.1."""

    host: str = HOST
    user: str = "postgres"

    def __init__(
        self, dbname: str = "mailgate", *, start: bool = True, durable: bool = False
    ) -> None:
        """Prepare the cluster (and start it unless start=False).

        durable: fsync, synchronous_commit and full_page_writes on, as in production (the
        benchmarks); the tests run without them.
        """
        _check("postgres")
        self.dbname = dbname
        self.durable = durable
        self.port = 0
        self.dir = ""
        self.pid: int | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._runas: str | None = None
        if _is_root():
            self._runas = "postgres"
            if subprocess.run(["id", "-u", "postgres"], capture_output=True).returncode != 0:
                self._runas = TEST_USER
                _ensure_system_user(TEST_USER)
        if start:
            self.start()

    @property
    def datadir(self) -> str:
        """The cluster's data directory."""
        return os.path.join(self.dir, "data")

    @property
    def sockdir(self) -> str:
        """Directory of the unix socket."""
        return os.path.join(self.dir, "sock")

    @property
    def log_path(self) -> str:
        """The server log."""
        return os.path.join(self.dir, "postgres.log")

    @property
    def url(self) -> str:
        """SQLAlchemy URL of the default database."""
        return self.url_for(self.dbname)

    @property
    def dsn(self) -> str:
        """libpq DSN of the default database."""
        return f"host={self.host} port={self.port} user={self.user} dbname={self.dbname}"

    def url_for(self, name: str) -> str:
        """SQLAlchemy URL (postgresql+psycopg) of database name."""
        return f"postgresql+psycopg://{self.user}@{self.host}:{self.port}/{name}"

    def __repr__(self) -> str:
        return f"<Postgres {self.host}:{self.port} dir={self.dir}>"

    def start(self) -> None:
        """Run initdb, start the postmaster and create the default database."""
        if self._proc is not None:
            return
        bindir = _pg_bindir()
        assert bindir is not None
        d = _mkdtemp("pg")
        self.dir = d
        _LIVE.add(self)
        os.chmod(d, 0o755)
        os.mkdir(self.sockdir)
        if self._runas:
            _chown_tree(d, self._runas)
        initdb = subprocess.run(
            _as_user(
                self._runas,
                [
                    os.path.join(bindir, "initdb"), "-D", self.datadir, "-U", self.user,
                    "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync",
                    "--no-instructions",
                ],
            ),
            capture_output=True,
            text=True,
        )  # fmt: skip
        if initdb.returncode != 0:
            self.stop()
            raise RuntimeError(f"initdb failed:\n{initdb.stdout}\n{initdb.stderr}")
        for attempt in range(3):  # a picked free port may be taken before postgres binds it
            try:
                self._launch(bindir, free_port())
                break
            except RuntimeError as exc:
                if "in use" not in str(exc) or attempt == 2:
                    self.stop()
                    raise
        self.create_database(self.dbname)

    def _launch(self, bindir: str, port: int) -> None:
        stale = self._pidfile_pid()
        if stale and not pid_alive(stale):  # a zombie postmaster would block the restart
            os.unlink(os.path.join(self.datadir, "postmaster.pid"))
        self.port = port
        options = {
            "listen_addresses": self.host,
            "port": str(port),
            "unix_socket_directories": self.sockdir,
            "fsync": "on" if self.durable else "off",
            "synchronous_commit": "on" if self.durable else "off",
            "full_page_writes": "on" if self.durable else "off",
            "max_connections": "100",
            "shared_buffers": "32MB",
        }
        argv = [os.path.join(bindir, "postgres"), "-D", self.datadir]
        for k, v in options.items():
            argv += ["-c", f"{k}={v}"]
        log = open(self.log_path, "ab")  # noqa: SIM115
        with log:
            if self._runas:
                os.chown(self.log_path, *_uid_gid(self._runas))
            proc = subprocess.Popen(
                _as_user(self._runas, argv),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._proc = proc
        with contextlib.suppress(TimeoutError):  # exited or too slow: said below
            wait_until(lambda: proc.poll() is not None or self._ready(), 30, interval=0.02)
        if proc.poll() is not None or not self._ready():
            self._halt()
            raise RuntimeError(f"postgres did not start:\n{_tail(self.log_path)}")

    def _ready(self) -> bool:
        try:
            with open(os.path.join(self.datadir, "postmaster.pid")) as f:
                lines = f.read().splitlines()
        except OSError:
            return False
        if len(lines) >= 8 and lines[7].strip() == "ready":
            self.pid = int(lines[0])
            return True
        return False

    def _admin(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(
            host=self.host, port=self.port, user=self.user, dbname="postgres", autocommit=True
        ) as conn:
            conn.execute(sql)  # type: ignore[arg-type]

    def create_database(self, name: str, template: str | None = None) -> str:
        """CREATE DATABASE name (optionally from template); return its SQLAlchemy URL."""
        for n in (name, template):
            if n is not None and not _DBNAME.match(n):
                raise ValueError(f"invalid database name {n!r}")
        sql = f'CREATE DATABASE "{name}"'
        if template:
            sql += f' TEMPLATE "{template}"'
        self._admin(sql)
        return self.url_for(name)

    def drop_database(self, name: str) -> None:
        """DROP DATABASE name, disconnecting its sessions."""
        if not _DBNAME.match(name):
            raise ValueError(f"invalid database name {name!r}")
        self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def _pidfile_pid(self) -> int | None:
        try:
            with open(os.path.join(self.datadir, "postmaster.pid")) as f:
                return int(f.readline())
        except (OSError, ValueError):
            return None

    def _halt(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            pgid = proc.pid
            members = _group_pids(pgid)
            postmaster = self.pid or self._pidfile_pid()
            if postmaster:
                _signal(postmaster, signal.SIGQUIT)
                _wait_gone([postmaster], 10)
            _kill_group(pgid, signal.SIGKILL)
            _wait_gone(members, 10)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=10)
        self.pid = None

    def pause(self) -> None:
        """Stop the postmaster (immediate shutdown: clients see their connections cut) and
        keep the cluster; `resume()` starts it again on the same port."""
        self._halt()

    def resume(self) -> None:
        bindir = _pg_bindir()
        assert bindir is not None and self.dir
        self._launch(bindir, self.port)

    def stop(self) -> None:
        """Stop the postmaster (immediate shutdown) and delete the cluster directory."""
        self._halt()
        if self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)
        _LIVE.discard(self)

    def __enter__(self) -> Postgres:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


# ---------------------------------------------------------------------------------------------
# GnuPG


class GnuPGHome:
    """A fresh, short GNUPGHOME with allow-loopback-pinentry; no keys until import_keys()."""

    def __init__(self) -> None:
        """Create the home directory."""
        _check("gpg")
        self.path = _mkdtemp("gpg")
        os.chmod(self.path, 0o700)
        with open(os.path.join(self.path, "gpg-agent.conf"), "w") as f:
            f.write("allow-loopback-pinentry\n")
        _LIVE.add(self)

    @property
    def env(self) -> dict[str, str]:
        """os.environ plus GNUPGHOME pointing here."""
        return {**os.environ, "GNUPGHOME": self.path}

    def __str__(self) -> str:
        return self.path

    def __repr__(self) -> str:
        return f"<GnuPGHome {self.path}>"

    def gpg(
        self, *args: str, input: bytes | str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[bytes]:
        """Run gpg --batch --homedir HOME with args; return the completed process."""
        data = input.encode() if isinstance(input, str) else input
        res = subprocess.run(
            ["gpg", "--homedir", self.path, "--batch", "--no-tty", *args],
            input=data,
            capture_output=True,
        )
        if check and res.returncode != 0:
            err = res.stderr.decode(errors="replace")
            raise RuntimeError(f"gpg {' '.join(args)} failed ({res.returncode}): {err}")
        return res

    def import_keys(self, armored: str | bytes, *, trust: bool = True) -> list[str]:
        """Import armored public/secret keys; return primary fingerprints (ultimate trust)."""
        res = self.gpg("--status-fd", "1", "--import", input=armored)
        fprs: list[str] = []
        for line in res.stdout.decode(errors="replace").splitlines():
            parts = line.split()
            if len(parts) >= 4 and parts[:2] == ["[GNUPG:]", "IMPORT_OK"] and parts[3] not in fprs:
                fprs.append(parts[3])
        if not fprs:
            raise RuntimeError(f"no key imported: {res.stderr.decode(errors='replace')}")
        if trust:
            self.gpg("--import-ownertrust", input="".join(f"{f}:6:\n" for f in fprs))
        return fprs

    def fingerprints(self, *, secret: bool = False) -> list[str]:
        """Primary key fingerprints in the keyring (secret keys only if secret=True)."""
        listing = "--list-secret-keys" if secret else "--list-keys"
        res = self.gpg("--with-colons", listing, check=False)
        out: list[str] = []
        want_fpr = False
        for line in res.stdout.decode(errors="replace").splitlines():
            kind = line.split(":", 1)[0]
            if kind in ("pub", "sec"):
                want_fpr = True
            elif kind == "fpr" and want_fpr:
                out.append(line.split(":")[9])
                want_fpr = False
            elif kind in ("sub", "ssb"):
                want_fpr = False
        return out

    def stop(self) -> None:
        """Kill gpg-agent and friends for this home, then delete it."""
        if not self.path or not os.path.isdir(self.path):
            _LIVE.discard(self)
            return
        subprocess.run(
            ["gpgconf", "--homedir", self.path, "--kill", "all"], capture_output=True, check=False
        )
        leftovers = _pids_mentioning(self.path)
        if not _wait_gone(leftovers, 5):
            for pid in leftovers:
                _signal(pid, signal.SIGKILL)
            _wait_gone(leftovers, 5)
        shutil.rmtree(self.path, ignore_errors=True)
        _LIVE.discard(self)

    def __enter__(self) -> GnuPGHome:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


# ---------------------------------------------------------------------------------------------
# SMTP / LMTP sink


_STAGES = ("mail", "rcpt", "data")
_DEFAULT_TEXT = {
    421: "4.3.2 Service not available, closing transmission channel",
    450: "4.2.1 Mailbox temporarily unavailable",
    451: "4.3.0 Local error in processing",
    452: "4.5.3 Too many recipients",
    550: "5.1.1 Mailbox unavailable",
    552: "5.3.4 Message too big",
    553: "5.1.3 Mailbox name not allowed",
    554: "5.7.1 Transaction failed",
}


@dataclass(frozen=True)
class CapturedMessage:
    """One message accepted by the sink."""

    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    peer: Any = None
    mail_options: list[str] = field(default_factory=list)
    smtp_utf8: bool = False
    authenticated_as: str | None = None

    @property
    def message(self) -> EmailMessage:
        """The data parsed with email.policy.default."""
        msg = email.message_from_bytes(self.data, policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        return msg


@dataclass(frozen=True)
class _Fault:
    stage: str
    code: int
    text: str
    rcpt: str | None = None

    @property
    def reply(self) -> str:
        return f"{self.code} {self.text}"


class _Refuser(asyncio.Protocol):
    """Connection handler while the sink is 'down': greet with 421 and hang up."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.WriteTransport)
        transport.write(b"421 4.3.2 Service not available (sink is down)\r\n")
        transport.close()


class _SinkController(Controller):
    def __init__(self, sink: SmtpSink, **kwargs: Any) -> None:
        super().__init__(sink, hostname=sink.host, port=sink.port, **kwargs)
        self.sink = sink

    def factory(self) -> Any:
        sink = self.sink
        with sink._lock:
            sink.connections += 1
            down = sink._down
        if down:
            return _Refuser()
        cls = LMTP if sink.lmtp else SMTP
        server = cls(self.handler, **self.SMTP_kwargs)
        sink._sessions.add(server)
        return server


class SmtpSink:
    """In-process aiosmtpd SMTP/LMTP server on 127.0.0.1 that keeps every message it accepts.

    Fault injection: queue (stage, code[, text]) entries with ``fail()`` or ``errors=``;
    each MAIL FROM (i.e. each transaction) consumes one entry, which then fires at its
    stage: "mail" (MAIL FROM reply), "rcpt" (every RCPT of the transaction, or only the
    given rcpt), "data" (final reply after the data; in LMTP one such line per recipient).
    A 421 reply also closes the connection.
    """

    host: str = HOST

    def __init__(
        self,
        *,
        lmtp: bool = False,
        port: int = 0,
        errors: Iterable[tuple[Any, ...]] = (),
        auth: tuple[str, str] | None = None,
        auth_required: bool = False,
        hostname: str = "sink.example.test",
        start: bool = True,
        smtputf8: bool = True,
    ) -> None:
        """Configure (and start unless start=False) the sink; port 0 picks a free port."""
        self.lmtp = lmtp
        self._auto_port = port == 0
        self.port = port or free_port()
        self.auth = auth
        self.auth_required = auth_required
        self.hostname = hostname
        self.smtputf8 = smtputf8
        self.connections = 0
        self.fired: list[tuple[str, int]] = []
        self._messages: list[CapturedMessage] = []
        self._faults: deque[_Fault] = deque()
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._down = False
        self._refusing = False
        self._sessions: weakref.WeakSet[SMTP] = weakref.WeakSet()
        self._controller: _SinkController | None = None
        for entry in errors:
            self.fail(*entry)
        if start:
            self.start()

    def __repr__(self) -> str:
        kind = "LMTP" if self.lmtp else "SMTP"
        return f"<SmtpSink {kind} {self.host}:{self.port} messages={len(self._messages)}>"

    # lifecycle
    def start(self) -> None:
        """Start listening (no-op if already running)."""
        if self._controller is not None:
            return
        kwargs: dict[str, Any] = {
            "server_hostname": self.hostname,
            "enable_SMTPUTF8": self.smtputf8,
            "ready_timeout": 10,
        }
        if self.auth:
            # plaintext AUTH on loopback; auth_required=True makes aiosmtpd warn about that
            kwargs.update(
                authenticator=self._authenticate,
                auth_require_tls=False,
                auth_required=self.auth_required,
            )
        # aiosmtpd reports a failed bind only after ready_timeout, so check first; a picked
        # free port may have been taken meanwhile (a port the caller chose is kept)
        for _ in range(3):
            if _can_bind(self.port) or not self._auto_port:
                break
            self.port = free_port()
        if not _can_bind(self.port):
            raise OSError(errno.EADDRINUSE, f"port {self.port} on {self.host} is in use")
        ctl = _SinkController(self, **kwargs)
        ctl.start()
        self._controller = ctl
        self._auto_port = False  # set_down(False) after refuse=True must reuse this port
        with self._lock:
            self.connections = 0  # forget aiosmtpd's own start-up probe
        _LIVE.add(self)

    def stop(self) -> None:
        """Close every client connection and stop listening (start() may follow)."""
        with self._lock:
            self._down = False
        self._refusing = False
        self._stop_controller()
        _LIVE.discard(self)

    def _stop_controller(self) -> None:
        ctl, self._controller = self._controller, None
        if ctl is None:
            return
        done = threading.Event()

        def close_all() -> None:
            for server in list(self._sessions):
                if server.transport is not None:
                    server.transport.close()
            done.set()

        ctl.loop.call_soon_threadsafe(close_all)
        done.wait(5)
        ctl.stop()

    def __enter__(self) -> SmtpSink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def set_down(self, down: bool = True, *, refuse: bool = False) -> None:
        """Simulate an outage: answer 421 to everything, or (refuse=True) close the port."""
        with self._lock:
            self._down = down
        if down and refuse:
            self._refusing = True
            self._stop_controller()
        elif not down and self._refusing:
            self._refusing = False
            self.start()

    @property
    def down(self) -> bool:
        """Whether set_down(True) is in effect."""
        return self._down or self._refusing

    # faults
    def fail(
        self, stage: str, code: int, text: str | None = None, *, rcpt: str | None = None
    ) -> None:
        """Queue one fault for a future transaction (see the class docstring)."""
        if stage not in _STAGES:
            raise ValueError(f"stage must be one of {_STAGES}, not {stage!r}")
        if not 400 <= code <= 599:
            raise ValueError(f"code must be 4xx or 5xx, not {code}")
        if text is None:
            text = _DEFAULT_TEXT.get(code, f"{code // 100}.0.0 Error")
        with self._lock:
            self._faults.append(_Fault(stage, code, f"{text} (injected)", rcpt))

    @property
    def pending_faults(self) -> list[tuple[str, int]]:
        """Faults not yet consumed, as (stage, code)."""
        with self._lock:
            return [(f.stage, f.code) for f in self._faults]

    # messages
    @property
    def messages(self) -> list[CapturedMessage]:
        """Snapshot of the captured messages, oldest first."""
        with self._lock:
            return list(self._messages)

    def clear(self) -> None:
        """Forget captured messages, queued faults and counters."""
        with self._lock:
            self._messages.clear()
            self._faults.clear()
            self.fired.clear()
            self.connections = 0

    def wait_for(self, n: int = 1, timeout: float = 5.0) -> list[CapturedMessage]:
        """Block until at least n messages were captured; return them (TimeoutError if not)."""
        with self._cond:
            if not self._cond.wait_for(lambda: len(self._messages) >= n, timeout):
                raise TimeoutError(
                    f"sink got {len(self._messages)} message(s) within {timeout}s, wanted {n}"
                )
            return list(self._messages)

    # aiosmtpd handler hooks (run in the controller's thread)
    def _fault_reply(
        self, server: SMTP, envelope: Any, stage: str, rcpt: str | None = None
    ) -> str | None:
        with self._lock:
            if self._down:
                fault: _Fault | None = _Fault(stage, 421, _DEFAULT_TEXT[421] + " (sink is down)")
            else:
                fault = getattr(envelope, "mg_fault", None)
                if fault is None or fault.stage != stage:
                    return None
                if stage == "rcpt" and fault.rcpt is not None and fault.rcpt != rcpt:
                    return None
                self.fired.append((fault.stage, fault.code))
        assert fault is not None
        if fault.code == 421:
            transport = server.transport
            if transport is not None:
                server.loop.call_soon(transport.close)
        return fault.reply

    async def handle_MAIL(
        self, server: SMTP, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        with self._lock:
            envelope.mg_fault = self._faults.popleft() if self._faults and not self._down else None
        reply = self._fault_reply(server, envelope, "mail")
        if reply:
            return reply
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 2.1.0 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        reply = self._fault_reply(server, envelope, "rcpt", address)
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(options)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Any, envelope: Any) -> str:
        n_rcpts = len(envelope.rcpt_tos)
        reply = self._fault_reply(server, envelope, "data")
        if reply:
            return "\r\n".join([reply] * n_rcpts) if self.lmtp else reply
        auth = getattr(session, "auth_data", None)
        record = CapturedMessage(
            mail_from=envelope.mail_from,
            rcpt_tos=list(envelope.rcpt_tos),
            data=envelope.original_content,
            peer=session.peer,
            mail_options=list(envelope.mail_options),
            smtp_utf8=bool(envelope.smtp_utf8),
            authenticated_as=auth.login.decode() if isinstance(auth, LoginPassword) else None,
        )
        with self._cond:
            self._messages.append(record)
            self._cond.notify_all()
        if self.lmtp:
            # RFC 2033: one reply per recipient; aiosmtpd sends the joined lines as-is
            return "\r\n".join(["250 2.0.0 delivered"] * n_rcpts)
        return "250 2.0.0 OK: queued"

    def _authenticate(
        self, server: SMTP, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        assert self.auth is not None
        user, password = self.auth
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login == user.encode()
            and auth_data.password == password.encode()
        )
        # handled=False: let aiosmtpd send 235/535 (the default handled=True answers nothing)
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)
