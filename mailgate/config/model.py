"""The validated configuration: `Config` and its `Queue`s, as load.py builds them."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TypeVar

from mailgate.config.database import DatabaseSettings
from mailgate.config.governor import GovernorSettings
from mailgate.config.imap import ImapSettings
from mailgate.config.machine_mail import AuthenticationSettings, BounceSettings, SpamSettings
from mailgate.config.pgp import PgpSettings
from mailgate.config.report import ReportSettings
from mailgate.config.rules import Rule
from mailgate.config.schema import (
    Agent,
    AgentMailSettings,
    AutoResponseSettings,
    CloseSettings,
    HttpSettings,
    ListenerSettings,
    MainSettings,
    PrioritySettings,
    RelaySettings,
    WorkerSettings,
)
from mailgate.config.secrets import read_hmac_secret, read_previous_secrets
from mailgate.config.sla import SlaSettings

T = TypeVar("T")


def _first_by(items: Iterable[T], key: Callable[[T], str]) -> dict[str, T]:
    """key -> the first of `items` with it (a later one with the same key is not found)."""
    found: dict[str, T] = {}
    for item in items:
        found.setdefault(key(item), item)
    return found


@dataclass(frozen=True)
class Queue:
    name: str
    addresses: tuple[str, ...]
    subject_tag: str
    from_name: str
    description: str
    autoresponse: AutoResponseSettings
    priority: PrioritySettings
    close: CloseSettings
    source: Path
    colleagues_may_follow_up: bool = True
    ack_unauthenticated: str = "budget"  # never | budget | always (docs/machine-mail.md)
    imap: ImapSettings | None = None
    pgp: PgpSettings | None = None
    sla: SlaSettings | None = None
    agent_mail: AgentMailSettings = AgentMailSettings()
    rules: tuple[Rule, ...] = ()

    @property
    def address(self) -> str:
        """The queue's primary address: the one it answers from."""
        return self.addresses[0]

    def tag_for(self, ticket_id: int) -> str:
        return f"[{self.subject_tag} #{ticket_id}]" if self.subject_tag else f"[#{ticket_id}]"


@dataclass(frozen=True)
class Config:
    path: Path
    main: MainSettings
    listener: ListenerSettings
    relay: RelaySettings
    worker: WorkerSettings
    queues: tuple[Queue, ...]
    data_dir: Path
    database_url: str
    spool_dir: Path
    templates_dir: Path
    outbox_maildir: Path
    agents: tuple[Agent, ...] = ()
    governor: GovernorSettings = GovernorSettings()
    http: HttpSettings = HttpSettings()
    report: ReportSettings = ReportSettings()
    warnings: tuple[str, ...] = ()  # not errors, but worth saying (check-config, start, reload)
    bounces: BounceSettings = BounceSettings()
    spam: SpamSettings = SpamSettings()
    authentication: AuthenticationSettings = AuthenticationSettings()
    database: DatabaseSettings = DatabaseSettings()

    @property
    def secret_file(self) -> Path:
        """Where the generated HMAC secret lives when `mailgate.secret` is not set."""
        return self.data_dir / "secret"

    @cached_property
    def secret(self) -> bytes:
        """The HMAC key of reply tokens, read at first use, never at load (ConfigError)."""
        return read_hmac_secret(self.main.secret, self.path, self.secret_file)

    @cached_property
    def accepted_secrets(self) -> tuple[bytes, ...]:
        """Keys a reply token may be made with: the secret, then `previous_secrets` (rotation;
        new tokens are always made with `secret`)."""
        return (self.secret, *read_previous_secrets(self.main.previous_secrets, self.path))

    def agent(self, name: str) -> Agent | None:
        return next((a for a in self.agents if a.name == name), None)

    def agent_by_address(self, address: str) -> Agent | None:
        return self._agents_by_address.get(address.lower())

    @cached_property
    def _agents_by_address(self) -> dict[str, Agent]:
        """address -> the first agent with it (the worker asks for every message)."""
        return _first_by(self.agents, lambda a: a.address)

    @property
    def agent_addresses(self) -> frozenset[str]:
        return frozenset(a.address for a in self.agents)

    def queue(self, name: str) -> Queue | None:
        return self._queues_by_name.get(name)

    @cached_property
    def _queues_by_name(self) -> dict[str, Queue]:
        """name -> the first queue of that name (the worker asks several times a message)."""
        return _first_by(self.queues, lambda q: q.name)

    def queue_for_address(self, address: str) -> Queue | None:
        """The queue an envelope recipient belongs to; `support+tok@x` matches `support@x`."""
        addr = address.lower().strip("<>")
        local, _, domain = addr.partition("@")
        base = local.split("+", 1)[0] + "@" + domain
        for q in self.queues:
            if addr in q.addresses or base in q.addresses:
                return q
        return None

    @property
    def our_addresses(self) -> frozenset[str]:
        return frozenset(a for q in self.queues for a in q.addresses)
