"""Load and validate mailgate.toml, queues/*.toml and agents.toml into a `Config`.

Every error names the file, the key and what is wrong. Loading reads files and nothing
else: it writes nothing, reads no secret, and touches neither the network nor the database
(the generated HMAC secret is created by hmac_secret.ensure, called by `mailgate run`).
Relative paths in a file are resolved against that file's directory.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import ValidationError

from mailgate.config import layout
from mailgate.config.checks import agent_problems, queue_problems, rule_problems, unserved_queues
from mailgate.config.errors import ConfigError, format_validation
from mailgate.config.model import Config, Queue
from mailgate.config.schema import Agent, AgentsFile, MailgateFile, QueueFile
from mailgate.config.sections import parse_sections


def _load_queue(path: Path, problems: list[str], broken: set[str]) -> Queue | None:
    """The queue of one file; None when it is broken (its name, or the file's stem if it
    has none, goes into `broken`, so other files naming it get no second error)."""
    data: dict = {}
    try:
        data = layout.read_toml(path)
        qf = QueueFile.model_validate(data)
    except (ConfigError, ValidationError) as e:
        name = data.get("name")
        broken.add(name if isinstance(name, str) and name else path.stem)
        if isinstance(e, ConfigError):
            problems.extend(e.problems)
        else:
            problems.extend(format_validation(path, e, model=QueueFile, data=data))
        return None
    count = len(problems)
    sections = parse_sections(path, qf, problems)  # a broken one is None, its problem listed
    if len(problems) > count:
        broken.add(qf.name)  # loaded, but its section problems are reported already
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
        ack_unauthenticated=qf.ack_unauthenticated,
        imap=sections.imap,
        pgp=sections.pgp,
        sla=sections.sla,
        agent_mail=qf.agent_mail,
        rules=tuple(qf.rules),
    )


def _load_agents(path: Path, problems: list[str]) -> list[Agent] | None:
    """The agents; None when the file is broken (its problems appended)."""
    if not path.exists():
        return []
    data: dict = {}
    try:
        data = layout.read_toml(path)
        return list(AgentsFile.model_validate(data).agents)
    except ConfigError as e:
        problems.extend(e.problems)
    except ValidationError as e:
        problems.extend(format_validation(path, e, model=AgentsFile, data=data))
    return None


def _by_mtime(queues: list[Queue]) -> list[Queue]:
    """Oldest file first: a clash is blamed on the file edited last (the one that has it)."""

    def mtime(q: Queue) -> float:
        try:
            return q.source.stat().st_mtime
        except OSError:
            return 0.0

    return sorted(queues, key=mtime)


def _database_url(value: str, base: Path, data_dir: Path) -> str:
    url = value or f"sqlite:///{data_dir / 'mailgate.db'}"
    if url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
        url = f"sqlite:///{(base / url[len('sqlite:///') :]).resolve()}"
    return url


def load(path: str | os.PathLike[str]) -> Config:
    """Read and validate the whole configuration; raise ConfigError listing every problem."""
    path = Path(path).resolve()
    base = path.parent
    data = layout.read_toml(path)
    try:
        mf = MailgateFile.model_validate(data)
    except ValidationError as e:
        raise ConfigError(format_validation(path, e, model=MailgateFile, data=data)) from e
    main = mf.mailgate
    problems: list[str] = []

    queues_dir, queue_files = layout.queue_files(base, main.queues_dir)
    if not queue_files:
        problems.append(f"{path}: mailgate.queues_dir: no *.toml queue files in {queues_dir}")
    broken: set[str] = set()
    queues = [q for q in (_load_queue(qp, problems, broken) for qp in queue_files) if q]
    problems += queue_problems(_by_mtime(queues), broken)
    agents_path = (base / main.agents_file).resolve()
    loaded = _load_agents(agents_path, problems)
    agents = loaded or []
    problems += agent_problems(agents_path, agents, queues, broken)
    problems += rule_problems(queues, agents, broken, agents_ok=loaded is not None)
    if problems:
        raise ConfigError(problems)

    data_dir = layout.data_dir(base, main.data_dir)
    return Config(
        path=path,
        main=main,
        listener=mf.listener,
        relay=mf.relay,
        governor=mf.governor,
        http=mf.http,
        report=mf.report,
        bounces=mf.bounces,
        spam=mf.spam,
        authentication=mf.authentication,
        database=mf.database,
        worker=mf.worker,
        queues=tuple(queues),
        data_dir=data_dir,
        database_url=_database_url(main.database_url, base, data_dir),
        spool_dir=layout.spool_dir(base, main.data_dir, main.spool_dir),
        templates_dir=(base / main.templates_dir).resolve(),
        outbox_maildir=(data_dir / mf.relay.maildir).resolve(),
        agents=tuple(agents),
        warnings=tuple(unserved_queues(agents_path, agents, queues)),
    )
