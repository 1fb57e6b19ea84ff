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
from mailgate.config.checks import agent_problems, queue_problems
from mailgate.config.errors import ConfigError, format_validation
from mailgate.config.model import Config, Queue
from mailgate.config.schema import Agent, AgentsFile, MailgateFile, QueueFile
from mailgate.config.sections import parse_sections


def _load_queue(path: Path, problems: list[str]) -> Queue | None:
    try:
        qf = QueueFile.model_validate(layout.read_toml(path))
    except ConfigError as e:
        problems.extend(e.problems)
        return None
    except ValidationError as e:
        problems.extend(format_validation(path, e))
        return None
    sections = parse_sections(path, qf, problems)  # a broken one is None, its problem listed
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
        imap=sections.imap,
        pgp=sections.pgp,
        sla=sections.sla,
        agent_mail=qf.agent_mail,
    )


def _load_agents(path: Path, problems: list[str]) -> list[Agent]:
    if not path.exists():
        return []
    try:
        return list(AgentsFile.model_validate(layout.read_toml(path)).agents)
    except ConfigError as e:
        problems.extend(e.problems)
    except ValidationError as e:
        problems.extend(format_validation(path, e))
    return []


def _database_url(value: str, base: Path, data_dir: Path) -> str:
    url = value or f"sqlite:///{data_dir / 'mailgate.db'}"
    if url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
        url = f"sqlite:///{(base / url[len('sqlite:///') :]).resolve()}"
    return url


def load(path: str | os.PathLike[str]) -> Config:
    """Read and validate the whole configuration; raise ConfigError listing every problem."""
    path = Path(path).resolve()
    base = path.parent
    try:
        mf = MailgateFile.model_validate(layout.read_toml(path))
    except ValidationError as e:
        raise ConfigError(format_validation(path, e)) from e
    main = mf.mailgate
    problems: list[str] = []

    queues_dir, queue_files = layout.queue_files(base, main.queues_dir)
    if not queue_files:
        problems.append(f"{path}: mailgate.queues_dir: no *.toml queue files in {queues_dir}")
    queues = [q for q in (_load_queue(qp, problems) for qp in queue_files) if q is not None]
    problems += queue_problems(queues)
    agents_path = (base / main.agents_file).resolve()
    agents = _load_agents(agents_path, problems)
    problems += agent_problems(agents_path, agents, queues)
    if problems:
        raise ConfigError(problems)

    data_dir = layout.data_dir(base, main.data_dir)
    return Config(
        path=path,
        main=main,
        listener=mf.listener,
        relay=mf.relay,
        governor=mf.governor,
        database=mf.database,
        worker=mf.worker,
        queues=tuple(queues),
        data_dir=data_dir,
        database_url=_database_url(main.database_url, base, data_dir),
        spool_dir=layout.spool_dir(base, main.data_dir, main.spool_dir),
        templates_dir=(base / main.templates_dir).resolve(),
        outbox_maildir=(data_dir / mf.relay.maildir).resolve(),
        agents=tuple(agents),
    )
