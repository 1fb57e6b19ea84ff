"""The parse processes (pipeline/pool.py) import only what preparing a message needs: not
the config models, the database layer, the templates or the agents' command registry.
Each process starts faster and holds less (about 22 MiB against 36 when prepare.py pulled
in pydantic through decide.py and agents/reply.py)."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = (
    "pydantic",
    "sqlalchemy",
    "jinja2",
    "mailgate.config.model",
    "mailgate.agents.commands.registry",
)


def test_preparing_a_message_loads_no_config_database_or_command_modules():
    code = (
        "import json, sys; import mailgate.pipeline.prepare, mailgate.pipeline.pool; "
        "print(json.dumps(sorted(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = set(json.loads(out.stdout))
    assert [m for m in HEAVY if m in loaded] == []


def test_the_agents_side_still_reads_commands(tmp_path):
    from mailgate.agents.reply import split_reply

    split = split_reply("#priority 80\n#note\nThe disk is full.\n")
    assert [line for _, line in split.command_lines] == ["#priority 80", "#note"]
    assert split.noted and split.text == "The disk is full."
