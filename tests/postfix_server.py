"""A throw-away Postfix on loopback for the MTA tests (docs/postfix.md, contrib/postfix/).

Ported from shared/reference/servers/postfix.sh: a private main.cf and master.cf (smtpd on
127.0.0.1:PORT, no chroot), fast retry timers, the log in a file (there is no syslog).
Root only: Postfix's master starts as root and drops to the `postfix` user. The caller
adds the lines under test (`main_extra`, `master_extra`): the contrib files themselves.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from tests.harness import wait_until
from tests.servers import HOST, free_port

_MAIN_CF = """\
compatibility_level = 3.6
queue_directory = {d}/queue
data_directory = {d}/data
mail_owner = postfix
setgid_group = postdrop
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
myhostname = mx.example.net
mydomain = example.net
myorigin = example.net
mydestination =
local_recipient_maps =
mynetworks = 127.0.0.0/8
relayhost = [127.0.0.1]:9
smtp_tls_security_level = none
smtpd_tls_security_level = none
alias_maps =
alias_database =
maillog_file = {d}/maillog
maillog_file_prefixes = {d}
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
syslog_name = mg-postfix
queue_run_delay = 2s
minimal_backoff_time = 2s
maximal_backoff_time = 4s
"""


def _master_cf(port: int) -> str:
    """Debian's master.cf with smtpd on our port and no service chrooted."""
    out = []
    for line in Path("/etc/postfix/master.cf").read_text().splitlines():
        if re.match(r"^smtp\s+inet\s", line):
            line = f"{HOST}:{port} inet n - n - - smtpd"
        fields = line.split()
        if re.match(r"^[a-zA-Z0-9]", line) and len(fields) > 7 and fields[4] in ("y", "-"):
            fields[4] = "n"
            line = " ".join(fields)
        out.append(line)
    return "\n".join(out) + "\n"


class Postfix:
    """Postfix with `main_extra` appended to main.cf and `master_extra` to master.cf."""

    def __init__(self, directory: Path, main_extra: str = "", master_extra: str = ""):
        self.dir = directory
        self.port = free_port()
        self.etc = directory / "etc"
        for sub in ("etc", "queue", "data"):
            (directory / sub).mkdir(parents=True, exist_ok=True)
        os.chmod(directory, 0o755)
        subprocess.run(["chown", "postfix", str(directory / "data")], check=True)
        (directory / "maillog").touch()
        (self.etc / "main.cf").write_text(_MAIN_CF.format(d=directory) + main_extra)
        (self.etc / "master.cf").write_text(_master_cf(self.port) + master_extra)

    def start(self) -> Postfix:
        run = subprocess.run(["postfix", "-c", str(self.etc), "start"], capture_output=True)
        if run.returncode != 0:
            raise RuntimeError(f"postfix did not start: {run.stderr!r}\n{self.log}")
        wait_until(self._answers, 15, "postfix's smtpd")
        return self

    def _answers(self) -> bool:
        import socket

        try:
            with socket.create_connection((HOST, self.port), timeout=1) as s:
                return s.recv(200).startswith(b"220")
        except OSError:
            return False

    def stop(self) -> None:
        subprocess.run(["postfix", "-c", str(self.etc), "stop"], capture_output=True)

    @property
    def log(self) -> str:
        return (self.dir / "maillog").read_text(errors="replace")

    def statuses(self) -> dict[str, int]:
        """How many delivery attempts the log shows per status (sent, deferred, bounced)."""
        found: dict[str, int] = {}
        for status in re.findall(r" status=(\w+)", self.log):
            found[status] = found.get(status, 0) + 1
        return found

    def queue_empty(self) -> bool:
        out = subprocess.run(
            ["postqueue", "-c", str(self.etc), "-p"], capture_output=True, text=True
        ).stdout
        return "Mail queue is empty" in out

    def flush(self) -> None:
        """Ask Postfix to retry every deferred message now."""
        subprocess.run(["postqueue", "-c", str(self.etc), "-f"], capture_output=True, check=True)
