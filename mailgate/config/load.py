"""Load and validate mailgate.toml, queues/*.toml and agents.toml.

Every error names the file, the key and what is wrong; nothing here touches the network or
the database. Relative paths in a file are resolved against that file's directory.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

ADDRESS_RE = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$")
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")


class ConfigError(Exception):
    """One or more problems in the configuration, each naming file, key and reason."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _valid_name(v: str) -> str:
    if not NAME_RE.match(v):
        raise ValueError("must be lowercase letters, digits, '-' or '_' (at most 40)")
    return v


class SecretRef(_Strict):
    """A secret given by file or environment variable, never inline in a file admins share."""

    file: str | None = None
    env: str | None = None

    def resolve(self, base: Path) -> str | None:
        if self.file:
            return (base / self.file).read_text(encoding="utf-8").strip()
        if self.env:
            return os.environ.get(self.env)
        return None


class ListenerSettings(_Strict):
    enabled: bool = True
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535)] = 2525
    mode: Literal["smtp", "lmtp"] = "smtp"
    max_message_bytes: Annotated[int, Field(gt=0)] = 25 * 1024 * 1024
    timeout_seconds: Annotated[float, Field(gt=0)] = 300.0


class RelaySettings(_Strict):
    host: str = ""
    port: Annotated[int, Field(ge=1, le=65535)] = 25
    starttls: bool = False
    tls: bool = False
    username: str = ""
    password: SecretRef = SecretRef()
    timeout_seconds: Annotated[float, Field(gt=0)] = 30.0
    retry_initial_seconds: Annotated[float, Field(gt=0)] = 30.0
    retry_max_seconds: Annotated[float, Field(gt=0)] = 1800.0
    give_up_after_hours: Annotated[float, Field(gt=0)] = 72.0
    maildir: str = "outbox-maildir"


class WorkerSettings(_Strict):
    batch_size: Annotated[int, Field(ge=1, le=1000)] = 64
    max_attempts: Annotated[int, Field(ge=1, le=20)] = 3
    shutdown_timeout_seconds: Annotated[float, Field(gt=0)] = 30.0


class MainSettings(_Strict):
    data_dir: str = "../var"
    database_url: str = ""
    spool_dir: str = ""
    hostname: str = "mailgate.localhost"
    queues_dir: str = "queues"
    agents_file: str = "agents.toml"
    templates_dir: str = "../templates"
    secret: SecretRef = SecretRef()
    log_level: Literal["debug", "info", "warning", "error"] = "info"


class MailgateFile(_Strict):
    mailgate: MainSettings = MainSettings()
    listener: ListenerSettings = ListenerSettings()
    relay: RelaySettings = RelaySettings()
    worker: WorkerSettings = WorkerSettings()


class AutoResponseSettings(_Strict):
    enabled: bool = True
    template: str = "new_ticket.txt"
    period_hours: Annotated[float, Field(ge=0)] = 24.0


class PrioritySettings(_Strict):
    initial: Annotated[int, Field(ge=1, le=99)] = 50


class CloseSettings(_Strict):
    after_days: Annotated[int, Field(ge=-1)] = 7
    reopen_window_days: Annotated[int, Field(ge=-1)] = 30


class AgentMailSettings(_Strict):
    """[agent_mail] in a queue file: agent notifications and commands by mail (docs/agents.md)."""

    notify: bool = True  # mail the queue's agents about new tickets and customer replies
    latest_tickets: Annotated[int, Field(ge=0, le=50)] = 5  # the customer's other tickets
    history_articles: Annotated[int, Field(ge=0, le=50)] = 5  # recent articles per mail
    max_command_age_hours: Annotated[float, Field(gt=0)] = 72.0
    max_command_future_minutes: Annotated[float, Field(ge=0)] = 15.0
    require_signed_commands: bool = False
    agent_keyring: str = ""  # GnuPG home with the agents' public keys (relative to this file)

    @model_validator(mode="after")
    def _keyring_for_signatures(self) -> AgentMailSettings:
        if self.require_signed_commands and not self.agent_keyring:
            raise ValueError(
                "require_signed_commands needs agent_keyring "
                "(a GnuPG home holding the agents' public keys)"
            )
        return self


class QueueFile(_Strict):
    name: str
    addresses: list[str]
    subject_tag: str = ""
    # a follow-up from the requester's own company domain joins the ticket (public mail
    # providers never count); false: only the requester, CCs and agents
    colleagues_may_follow_up: bool = True
    from_name: str = ""
    description: str = ""
    autoresponse: AutoResponseSettings = AutoResponseSettings()
    priority: PrioritySettings = PrioritySettings()
    close: CloseSettings = CloseSettings()
    # sections other issues own (imap, pgp, sla, agents' rules) are validated by their modules
    imap: dict[str, Any] | None = None
    pgp: dict[str, Any] | None = None
    sla: dict[str, Any] | None = None
    agent_mail: AgentMailSettings = AgentMailSettings()

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return _valid_name(v)

    @field_validator("addresses")
    @classmethod
    def _addresses(cls, v: list[str]) -> list[str]:
        if not v:
            raise ValueError("a queue needs at least one address")
        out = []
        for a in v:
            if not ADDRESS_RE.match(a):
                raise ValueError(f"{a!r} is not an email address")
            out.append(a.lower())
        return out

    @field_validator("subject_tag")
    @classmethod
    def _tag(cls, v: str) -> str:
        if any(c in v for c in "[]#\r\n"):
            raise ValueError("must not contain '[', ']', '#' or line breaks")
        return v.strip()


class Agent(_Strict):
    """An agent: a person who answers tickets, from the agents file."""

    name: str
    address: str
    full_name: str = ""
    description: str = ""
    signature: str = ""
    queues: list[str] = []
    tier: Literal["L1", "L2", "L3"] = "L1"
    role: Literal["agent", "admin"] = "agent"
    pgp_fingerprint: str = ""
    team_lead: bool = False

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return _valid_name(v)

    @field_validator("address")
    @classmethod
    def _address(cls, v: str) -> str:
        if not ADDRESS_RE.match(v):
            raise ValueError(f"{v!r} is not an email address")
        return v.lower()


class AgentsFile(_Strict):
    agents: list[Agent] = []


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
    imap: dict[str, Any] | None = None
    pgp: dict[str, Any] | None = None
    sla: dict[str, Any] | None = None
    agent_mail: AgentMailSettings = AgentMailSettings()

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
    secret: bytes
    agents: tuple[Agent, ...] = ()

    def agent(self, name: str) -> Agent | None:
        return next((a for a in self.agents if a.name == name), None)

    def agent_by_address(self, address: str) -> Agent | None:
        addr = address.lower()
        return next((a for a in self.agents if a.address == addr), None)

    @property
    def agent_addresses(self) -> frozenset[str]:
        return frozenset(a.address for a in self.agents)

    def queue(self, name: str) -> Queue | None:
        return next((q for q in self.queues if q.name == name), None)

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


def format_validation(path: object, err: ValidationError, section: str = "") -> list[str]:
    """pydantic errors as `FILE: KEY: reason` lines; `section` prefixes the key (e.g. "imap")."""
    out = []
    for e in err.errors():
        loc = (section, *e["loc"]) if section else e["loc"]
        key = ".".join(str(p) for p in loc) or "(top level)"
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            msg = "unknown key"
        elif e["type"] == "missing":
            msg = "required key is missing"
        out.append(f"{path}: {key}: {msg}")
    return out


def parse_section(
    queue: Queue,
    section: str,
    model: type[BaseModel],
    secret_problems: Callable[[Path, Any], list[str]] | None = None,
) -> Any:
    """Validate a queue's `[section]` table with `model` (paths relative to the queue file).

    None when the queue has no such table; ConfigError naming file, key and reason, also
    for secrets `secret_problems` finds missing (files, environment variables).
    """
    table = getattr(queue, section)
    if table is None:
        return None
    path = queue.source
    if "base" in table:
        raise ConfigError([f"{path}: {section}.base: unknown key"])
    try:
        settings = model.model_validate({**table, "base": path.parent})
    except ValidationError as e:
        raise ConfigError(format_validation(path, e, section)) from e
    problems = secret_problems(path, settings) if secret_problems else []
    if problems:
        raise ConfigError(problems)
    return settings


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except FileNotFoundError as e:
        raise ConfigError([f"{path}: file not found"]) from e
    except tomllib.TOMLDecodeError as e:
        raise ConfigError([f"{path}: not valid TOML: {e}"]) from e
    except OSError as e:
        raise ConfigError([f"{path}: cannot read: {e.strerror}"]) from e


def _load_queue(path: Path, problems: list[str]) -> Queue | None:
    try:
        data = _read_toml(path)
    except ConfigError as e:
        problems.extend(e.problems)
        return None
    try:
        qf = QueueFile.model_validate(data)
    except ValidationError as e:
        problems.extend(format_validation(path, e))
        return None
    return Queue(
        name=qf.name,
        addresses=tuple(qf.addresses),
        subject_tag=qf.subject_tag,
        from_name=qf.from_name or qf.name.capitalize(),
        description=qf.description,
        autoresponse=qf.autoresponse,
        priority=qf.priority,
        close=qf.close,
        source=path,
        colleagues_may_follow_up=qf.colleagues_may_follow_up,
        imap=qf.imap,
        pgp=qf.pgp,
        sla=qf.sla,
        agent_mail=qf.agent_mail,
    )


def _load_secret(main: MainSettings, base: Path, data_dir: Path, path: Path) -> bytes:
    try:
        value = main.secret.resolve(base)
    except OSError as e:
        raise ConfigError([f"{path}: mailgate.secret.file: cannot read: {e.strerror}"]) from e
    if main.secret.env and not value:
        raise ConfigError([f"{path}: mailgate.secret.env: ${main.secret.env} is not set"])
    if value:
        if len(value) < 16:
            raise ConfigError([f"{path}: mailgate.secret: must be at least 16 characters"])
        return value.encode()
    # embedded default: a random secret kept beside the data, created once
    secret_path = data_dir / "secret"
    if secret_path.exists():
        return secret_path.read_bytes().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    token = os.urandom(32).hex().encode()
    fd = os.open(secret_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(token)
    return token


def load(path: str | os.PathLike[str]) -> Config:
    """Read and validate the whole configuration; raise ConfigError listing every problem."""
    path = Path(path).resolve()
    base = path.parent
    raw = _read_toml(path)
    try:
        mf = MailgateFile.model_validate(raw)
    except ValidationError as e:
        raise ConfigError(format_validation(path, e)) from e
    main = mf.mailgate
    problems: list[str] = []

    queues_dir = (base / main.queues_dir).resolve()
    queue_files = sorted(queues_dir.glob("*.toml")) if queues_dir.is_dir() else []
    if not queue_files:
        problems.append(f"{path}: mailgate.queues_dir: no *.toml queue files in {queues_dir}")
    queues: list[Queue] = []
    for qp in queue_files:
        q = _load_queue(qp, problems)
        if q is not None:
            queues.append(q)
    names: dict[str, Path] = {}
    owners: dict[str, Queue] = {}
    for q in queues:
        if q.name in names:
            problems.append(
                f"{q.source}: name: queue {q.name!r} is already defined in {names[q.name]}"
            )
        names[q.name] = q.source
        for i, a in enumerate(q.addresses):
            if a in owners and owners[a] is not q:
                problems.append(
                    f"{q.source}: addresses[{i}]: {a} is already claimed by queue "
                    f"{owners[a].name!r} ({owners[a].source})"
                )
            owners[a] = q
    agents = _load_agents((base / main.agents_file).resolve(), queues, owners, problems)
    if problems:
        raise ConfigError(problems)

    data_dir = (base / main.data_dir).resolve()
    database_url = main.database_url or f"sqlite:///{data_dir / 'mailgate.db.engine'}"
    if database_url.startswith("sqlite:///") and not database_url.startswith("sqlite:////"):
        rel = database_url[len("sqlite:///") :]
        database_url = f"sqlite:///{(base / rel).resolve()}"
    spool_dir = (base / main.spool_dir).resolve() if main.spool_dir else data_dir / "spool"
    templates_dir = (base / main.templates_dir).resolve()
    outbox_maildir = (data_dir / mf.relay.maildir).resolve()
    secret = _load_secret(main, base, data_dir, path)
    config = Config(
        path=path,
        main=main,
        listener=mf.listener,
        relay=mf.relay,
        worker=mf.worker,
        queues=tuple(queues),
        data_dir=data_dir,
        database_url=database_url,
        spool_dir=spool_dir,
        templates_dir=templates_dir,
        outbox_maildir=outbox_maildir,
        secret=secret,
        agents=tuple(agents),
    )
    section_problems = _section_problems(config)
    if section_problems:
        raise ConfigError(section_problems)
    return config


def _section_problems(config: Config) -> list[str]:
    """Problems in the queue sections other modules own ([imap], [sla], [pgp])."""
    # imported here: those modules build on this one
    from mailgate.pgp.stage import pgp_problems
    from mailgate.pollers.imap_settings import imap_problems
    from mailgate.scheduler.sla import sla_problems

    return imap_problems(config) + sla_problems(config) + pgp_problems(config)


def _load_agents(
    path: Path, queues: list[Queue], owners: dict[str, Queue], problems: list[str]
) -> list[Agent]:
    if not path.exists():
        return []
    try:
        af = AgentsFile.model_validate(_read_toml(path))
    except ConfigError as e:
        problems.extend(e.problems)
        return []
    except ValidationError as e:
        problems.extend(format_validation(path, e))
        return []
    known = {q.name for q in queues}
    seen: dict[str, int] = {}
    for i, a in enumerate(af.agents):
        for j, qn in enumerate(a.queues):
            if qn not in known:
                problems.append(f"{path}: agents.{i}.queues.{j}: no queue named {qn!r}")
        if a.name in seen:
            problems.append(f"{path}: agents.{i}.name: {a.name!r} is already agents.{seen[a.name]}")
        seen[a.name] = i
        signed = [q.name for q in queues if q.agent_mail.require_signed_commands]
        if not a.pgp_fingerprint and set(a.queues) & set(signed):
            problems.append(
                f"{path}: agents.{i}.pgp_fingerprint: required, queue(s) "
                f"{', '.join(sorted(set(a.queues) & set(signed)))} require signed commands"
            )
        if a.address in owners:
            problems.append(
                f"{path}: agents.{i}.address: {a.address} is a queue address "
                f"({owners[a.address].name}); agents need their own address"
            )
    return list(af.agents)
