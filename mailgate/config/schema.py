"""The files as pydantic models: mailgate.toml, a queue file, agents.toml.

The queue sections that need the queue file's directory (`[imap]`, `[pgp]`, `[sla]`) stay
tables here; load.py validates them with their models (imap.py, pgp.py, sla.py).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from mailgate.config.base import Address, Name, Strict, valid_address
from mailgate.config.database import DatabaseSettings
from mailgate.config.governor import GovernorSettings
from mailgate.config.layout import DEFAULT_DATA_DIR, DEFAULT_MAX_MESSAGE_BYTES, DEFAULT_QUEUES_DIR
from mailgate.config.machine_mail import AuthenticationSettings, BounceSettings, SpamSettings
from mailgate.config.oauth2 import OAuth2Settings
from mailgate.config.report import ReportSettings
from mailgate.config.rules import Rule
from mailgate.config.secrets import SecretRef


class ListenerSettings(Strict):
    enabled: bool = True
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535)] = 2525
    mode: Literal["smtp", "lmtp"] = "smtp"
    max_message_bytes: Annotated[int, Field(gt=0)] = DEFAULT_MAX_MESSAGE_BYTES
    timeout_seconds: Annotated[float, Field(gt=0)] = 300.0


class RelaySettings(Strict):
    host: str = ""
    port: Annotated[int, Field(ge=1, le=65535)] = 25
    starttls: bool = False
    tls: bool = False
    username: str = ""
    password: SecretRef | None = None
    oauth2: OAuth2Settings | None = None  # XOAUTH2 / OAUTHBEARER as `username` (docs/imap.md)
    timeout_seconds: Annotated[float, Field(gt=0)] = 30.0
    retry_initial_seconds: Annotated[float, Field(gt=0)] = 30.0
    retry_max_seconds: Annotated[float, Field(gt=0)] = 1800.0
    give_up_after_hours: Annotated[float, Field(gt=0)] = 72.0
    maildir: str = "outbox-maildir"
    # the sender (outgoing/sender.py): connections kept open to the relay, rows claimed
    # and marked per batch, and how long a claimed row stays a dead sender's
    connections: Annotated[int, Field(ge=1, le=64)] = 4
    batch_size: Annotated[int, Field(ge=1, le=1000)] = 64
    lease_seconds: Annotated[float, Field(gt=0)] = 300.0

    @field_validator("oauth2", mode="before")
    @classmethod
    def _for_smtp(cls, v: Any) -> Any:
        return {**v, "purpose": "smtp"} if isinstance(v, dict) else v

    @model_validator(mode="after")
    def _one_login(self) -> RelaySettings:
        if self.oauth2 and self.password:
            raise ValueError("give either password or oauth2, not both")
        if self.oauth2 and not self.username:
            raise ValueError("oauth2 needs username (the mailbox the relay login is for)")
        return self


class WorkerSettings(Strict):
    # spooled messages per transaction: 128 drained 9-12 % faster than 64 with the batch's
    # set-based writes (docs/performance.md, "The batch's size and the tickets' indexes")
    batch_size: Annotated[int, Field(ge=1, le=1000)] = 128
    max_attempts: Annotated[int, Field(ge=1, le=20)] = 3
    # processes parsing the next batch while this one is in the database (pipeline/pool.py);
    # unset: one per core beside the worker's (cores - 1); 0: parse in the worker's process
    parse_processes: Annotated[int | None, Field(ge=0, le=64)] = None
    shutdown_timeout_seconds: Annotated[float, Field(gt=0)] = 30.0


class MainSettings(Strict):
    data_dir: str = DEFAULT_DATA_DIR
    database_url: str = ""
    spool_dir: str = ""
    hostname: str = "mailgate.localhost"
    queues_dir: str = DEFAULT_QUEUES_DIR
    agents_file: str = "agents.toml"
    templates_dir: str = "../templates"
    secret: SecretRef | None = None  # None: generated in data_dir by `mailgate run`
    previous_secrets: list[SecretRef] = []  # still accepted for tokens while rotating
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    watch_config: bool = True  # reload when a *.toml file of the config changes (reload.py)


class HttpSettings(Strict):
    """[http]: Prometheus /metrics and /healthz on a loopback port (mailgate/observe/)."""

    enabled: bool = False  # off: several daemons on one host would fight over one port
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535)] = 9325

    @field_validator("host")
    @classmethod
    def _loopback(cls, v: str) -> str:
        if v != "localhost" and not v.startswith("127.") and v != "::1":
            raise ValueError(f"must be a loopback address (127.0.0.1, ::1), not {v!r}")
        return v


class MailgateFile(Strict):
    mailgate: MainSettings = MainSettings()
    listener: ListenerSettings = ListenerSettings()
    relay: RelaySettings = RelaySettings()
    worker: WorkerSettings = WorkerSettings()
    governor: GovernorSettings = GovernorSettings()
    http: HttpSettings = HttpSettings()
    report: ReportSettings = ReportSettings()
    bounces: BounceSettings = BounceSettings()
    spam: SpamSettings = SpamSettings()
    authentication: AuthenticationSettings = AuthenticationSettings()
    database: DatabaseSettings = DatabaseSettings()


class AutoResponseSettings(Strict):
    enabled: bool = True
    template: str = "new_ticket.txt"
    period_hours: Annotated[float, Field(ge=0)] = 24.0


class PrioritySettings(Strict):
    initial: Annotated[int, Field(ge=1, le=99)] = 50


class CloseSettings(Strict):
    after_days: Annotated[int, Field(ge=-1)] = 7
    reopen_window_days: Annotated[int, Field(ge=-1)] = 30
    # resolving and closing mails ask the customer to rate the support 1-5 (docs/report.md)
    survey: bool = True


class AgentMailSettings(Strict):
    """[agent_mail] in a queue file: agent notifications and commands by mail (docs/agents.md)."""

    notify: bool = True  # mail the queue's agents about new tickets and customer replies
    latest_tickets: Annotated[int, Field(ge=0, le=50)] = 5  # the customer's other tickets
    history_articles: Annotated[int, Field(ge=0, le=50)] = 5  # recent articles per mail
    max_command_age_hours: Annotated[float, Field(gt=0)] = 72.0
    max_command_future_minutes: Annotated[float, Field(ge=0)] = 15.0
    require_signed_commands: bool = False
    # the customer's attachments a notification carries, in all (the rest: #attachment N)
    attachments_max_bytes: Annotated[int, Field(ge=0)] = 10 * 1024 * 1024
    # an agent's answer with more than this in attachments is refused (nothing sent)
    answer_attachments_max_bytes: Annotated[int, Field(ge=0)] = 10 * 1024 * 1024
    agent_keyring: str = ""  # GnuPG home with the agents' public keys (relative to this file)

    @model_validator(mode="after")
    def _keyring_for_signatures(self) -> AgentMailSettings:
        if self.require_signed_commands and not self.agent_keyring:
            raise ValueError(
                "require_signed_commands needs agent_keyring "
                "(a GnuPG home holding the agents' public keys)"
            )
        return self


class QueueFile(Strict):
    name: Name
    addresses: list[str]
    subject_tag: str = ""
    # a follow-up from the requester's own company domain joins the ticket (public mail
    # providers never count); false: only the requester, CCs and agents
    colleagues_may_follow_up: bool = True
    # acknowledge a sender no trusted Authentication-Results authenticated: "never";
    # "budget" (within the governor's per-queue acknowledgement budget); "always"
    ack_unauthenticated: Literal["never", "budget", "always"] = "budget"
    from_name: str = ""
    description: str = ""
    autoresponse: AutoResponseSettings = AutoResponseSettings()
    priority: PrioritySettings = PrioritySettings()
    close: CloseSettings = CloseSettings()
    # typed by load.py with the queue file's directory as `base` (config/imap, pgp, sla)
    imap: dict[str, Any] | None = None
    pgp: dict[str, Any] | None = None
    sla: dict[str, Any] | None = None
    agent_mail: AgentMailSettings = AgentMailSettings()
    rules: list[Rule] = []  # routing rules for new tickets, in order (config/rules.py)

    @field_validator("addresses")
    @classmethod
    def _addresses(cls, v: list[str]) -> list[str]:
        if not v:
            raise ValueError("a queue needs at least one address")
        return [valid_address(a) for a in v]

    @field_validator("subject_tag")
    @classmethod
    def _tag(cls, v: str) -> str:
        if any(c in v for c in "[]#\r\n"):
            raise ValueError("must not contain '[', ']', '#' or line breaks")
        return v.strip()


class Agent(Strict):
    """An agent: a person who answers tickets, from the agents file."""

    name: Name
    address: Address
    full_name: str = ""
    description: str = ""
    signature: str = ""
    queues: list[str] = []
    tier: Literal["L1", "L2", "L3"] = "L1"
    role: Literal["agent", "admin"] = "agent"
    pgp_fingerprint: str = ""
    team_lead: bool = False


class AgentsFile(Strict):
    agents: list[Agent] = []
