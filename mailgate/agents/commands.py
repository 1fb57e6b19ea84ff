"""Agent command tags: split an agent's reply, parse the command block, authorize, plan. Pure.

An agent's reply reads, top to bottom:

    #pickup                  <- the command block: lines starting with '#', nothing before
    #priority +10
                             <- blank lines inside the block are allowed
    Hello Carla, ...         <- the first other line starts the answer to the customer
    --                       <- signature, quoted text, our notification: never read

`split_reply` finds the block and the answer text (quotes, the quoted notification and the
signature removed); `plan` checks every line against the agent, their role and the ticket
and returns either a Plan that can be applied or the same lines with what is wrong. All or
nothing: a Plan with any error applies nothing. docs/agents.md is the reference.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from mailgate.agents.access import can_see, next_tier
from mailgate.agents.tokens import contains_token
from mailgate.config.base import ADDRESS_RE
from mailgate.config.schema import Agent

log = logging.getLogger(__name__)

# the first line of every agent notification; everything from it down is quoted by the reply
REPLY_MARKER = "##- Reply above this line: command lines first, then your answer -##"
_MARKER_KEY = "reply above this line"

STATUSES = ("open", "on-hold", "resolved", "closed")
COMPLEXITIES = ("lower", "medium", "hard")
MAX_TITLE = 500
_TAG_RE = re.compile(r"[a-z0-9][a-z0-9_.-]{0,59}")
_COMMAND_RE = re.compile(r"#([A-Za-z][A-Za-z-]*)(?:[ \t]+(.*))?")
_QUEUE_NAME_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,39}")

# reply layouts of common mail clients: where quoted text begins
_ATTRIBUTION_RE = re.compile(
    r"^(on\b.*\bwrote:|am\b.*\bschrieb\b.*:|le\b.*\ba écrit\s*:|el\b.*\bescribió:)\s*$", re.I
)
_ATTRIBUTION_START_RE = re.compile(r"^(on|am|le|el)\s", re.I)
_ATTRIBUTION_END_RE = re.compile(r"(wrote|schrieb|a écrit|escribió)\s*:\s*$", re.I)
_ORIGINAL_MESSAGE_RE = re.compile(r"^-{2,}\s*(original message|forwarded message)\s*-{2,}$", re.I)
_OUTLOOK_RULE_RE = re.compile(r"^_{20,}$")
_OUTLOOK_HEADER_RE = re.compile(r"^(from|sent|date|to|cc|subject)\s*:", re.I)
_SIGNED_BEGIN = "-----BEGIN PGP SIGNED MESSAGE-----"
_SIGNATURE_BEGIN = "-----BEGIN PGP SIGNATURE-----"
_SIGNATURE_END = "-----END PGP SIGNATURE-----"
_INVISIBLE = dict.fromkeys(map(ord, "\ufeff\u200b\u200c\u200d\u2060"), None)


# --------------------------------------------------------------------------- commands


@dataclass(frozen=True)
class Assign:
    target: str  # an agent name, "me" or "nobody"


@dataclass(frozen=True)
class Pickup:
    pass


@dataclass(frozen=True)
class Release:
    pass


@dataclass(frozen=True)
class Priority:
    value: int
    relative: bool  # +N / -N


@dataclass(frozen=True)
class Status:
    value: str


@dataclass(frozen=True)
class Close:
    pass


@dataclass(frozen=True)
class Note:
    text: str  # text on the #note line itself (the rest of the mail follows it)


@dataclass(frozen=True)
class MoveQueue:
    queue: str
    reason: str


@dataclass(frozen=True)
class Escalate:
    reason: str


@dataclass(frozen=True)
class Sticky:
    on: bool


@dataclass(frozen=True)
class Cc:
    add: tuple[str, ...]
    remove: tuple[str, ...]


@dataclass(frozen=True)
class Title:
    text: str


@dataclass(frozen=True)
class Requester:
    address: str


@dataclass(frozen=True)
class Tag:
    add: tuple[str, ...]
    remove: tuple[str, ...]


@dataclass(frozen=True)
class Complexity:
    level: str


@dataclass(frozen=True)
class Help:
    pass


@dataclass(frozen=True)
class NewTicket:
    requester: str


@dataclass(frozen=True)
class ListMine:
    pass


@dataclass(frozen=True)
class ListUnassigned:
    pass


@dataclass(frozen=True)
class Show:
    ticket_id: int


@dataclass(frozen=True)
class Secret:
    ticket_id: int  # mail me its decrypted PGP content, encrypted to my key (pgp_store)


Command = (
    Assign
    | Pickup
    | Release
    | Priority
    | Status
    | Close
    | Note
    | MoveQueue
    | Escalate
    | Sticky
    | Cc
    | Title
    | Requester
    | Tag
    | Complexity
    | Help
    | NewTicket
    | ListMine
    | ListUnassigned
    | Show
    | Secret
)
Query = Help | ListMine | ListUnassigned | Show | Secret
QUERY_TYPES = (Help, ListMine, ListUnassigned, Show, Secret)

# one line each for #help and for the error transcript
GRAMMAR: tuple[tuple[str, str], ...] = (
    ("#assign <agent|me|nobody>", "assign the ticket (admins: anyone; agents: me)"),
    ("#pickup", "assign the ticket to yourself"),
    ("#release", "give the ticket back to the queue"),
    ("#priority <1-99|+N|-N>", "set or move the priority"),
    ("#status <open|on-hold|resolved|closed>", "set the status"),
    ("#close", "same as #status closed"),
    ("#note [text]", "the rest of the mail is an internal note; nothing is sent"),
    ("#queue <name> [why]", "move to another queue; needs a reason (here or in #note)"),
    ("#escalate [what was tried]", "to the next tier; needs a reason (here or in #note)"),
    ("#sticky on|off", "keep the assignee when the customer replies"),
    ("#cc +addr -addr", "add or remove customers copied on answers"),
    ("#title <text>", "change the ticket's title"),
    ("#requester <addr>", "change who the ticket is for"),
    ("#tag +x -y", "add or remove tags"),
    ("#complexity lower|medium|hard", "KPI category (team leads and admins)"),
    ("#new <addr>", "open a ticket for addr (command address only)"),
    ("#list", "your open tickets, highest priority then oldest"),
    ("#unassigned", "unassigned open tickets in your queues"),
    ("#show <N>", "a ticket's details and history"),
    ("#secret <N>", "a ticket's decrypted PGP content, encrypted to your key"),
    ("#help", "this list"),
)
_NAMES = {
    "assign",
    "pickup",
    "release",
    "priority",
    "status",
    "close",
    "note",
    "queue",
    "escalate",
    "sticky",
    "cc",
    "title",
    "requester",
    "tag",
    "complexity",
    "help",
    "new",
    "list",
    "unassigned",
    "show",
    "secret",
}
_KNOWN_COMMAND_RE = re.compile(r"^\s*#(" + "|".join(sorted(_NAMES)) + r")\b", re.I)


class CommandSyntaxError(ValueError):
    """A command line that cannot be read; the message says what is wrong."""


def parse_line(text: str) -> Command:
    """One command line (`#priority +10`) -> a command; raises CommandSyntaxError."""
    m = _COMMAND_RE.fullmatch(text.strip())
    if m is None:
        raise CommandSyntaxError("not a command: a command is '#' and a word, e.g. #pickup")
    name = m.group(1).lower()
    arg = (m.group(2) or "").strip()
    words = arg.split()

    def no_argument(cmd: Command) -> Command:
        if arg:
            raise CommandSyntaxError(f"#{name} takes no argument")
        return cmd

    def one_word(what: str) -> str:
        if len(words) != 1:
            raise CommandSyntaxError(f"#{name} needs exactly one {what}")
        return words[0]

    if name == "assign":
        return Assign(one_word("agent name, 'me' or 'nobody'").lower())
    if name == "pickup":
        return no_argument(Pickup())
    if name == "release":
        return no_argument(Release())
    if name == "priority":
        value = one_word("value: 1-99, +N or -N")
        if not re.fullmatch(r"[+-]?[0-9]{1,2}", value):
            raise CommandSyntaxError("priority must be 1-99, +N or -N")
        number = int(value)
        if value[0] in "+-":
            if number == 0:
                raise CommandSyntaxError("a relative priority must not be 0")
            return Priority(number, True)
        if not 1 <= number <= 99:
            raise CommandSyntaxError("priority must be between 1 and 99")
        return Priority(number, False)
    if name == "status":
        value = one_word("status").lower()
        if value not in STATUSES:
            raise CommandSyntaxError("status must be one of " + ", ".join(STATUSES))
        return Status(value)
    if name == "close":
        return no_argument(Close())
    if name == "note":
        return Note(arg)
    if name == "queue":
        if not words:
            raise CommandSyntaxError("#queue needs a queue name")
        queue = words[0].lower()
        if not _QUEUE_NAME_RE.fullmatch(queue):
            raise CommandSyntaxError(f"{words[0]!r} is not a queue name")
        return MoveQueue(queue, arg[len(words[0]) :].strip())
    if name == "escalate":
        return Escalate(arg)
    if name == "sticky":
        value = one_word("value: on or off").lower()
        if value not in ("on", "off"):
            raise CommandSyntaxError("#sticky takes on or off")
        return Sticky(value == "on")
    if name in ("cc", "tag"):
        return _signed_list(name, words)
    if name == "title":
        if not arg:
            raise CommandSyntaxError("#title needs the new title")
        if len(arg) > MAX_TITLE:
            raise CommandSyntaxError(f"a title has at most {MAX_TITLE} characters")
        return Title(arg)
    if name == "requester":
        return Requester(_address(one_word("address")))
    if name == "complexity":
        value = one_word("level").lower()
        if value not in COMPLEXITIES:
            raise CommandSyntaxError("complexity must be one of " + ", ".join(COMPLEXITIES))
        return Complexity(value)
    if name == "help":
        return no_argument(Help())
    if name == "new":
        return NewTicket(_address(one_word("requester address")))
    if name == "list":
        return no_argument(ListMine())
    if name == "unassigned":
        return no_argument(ListUnassigned())
    if name in ("show", "secret"):
        value = one_word("ticket number").lstrip("#")
        if not re.fullmatch(r"[1-9][0-9]{0,11}", value):
            raise CommandSyntaxError(f"#{name} needs a ticket number")
        return Show(int(value)) if name == "show" else Secret(int(value))
    raise CommandSyntaxError(f"unknown command #{name} (#help lists the commands)")


def _address(value: str) -> str:
    value = value.strip("<>").lower()
    if not ADDRESS_RE.match(value):
        raise CommandSyntaxError(f"{value!r} is not an email address")
    return value


def _signed_list(name: str, words: list[str]) -> Command:
    if not words:
        raise CommandSyntaxError(f"#{name} needs +item or -item")
    add: list[str] = []
    remove: list[str] = []
    for w in words:
        if len(w) < 2 or w[0] not in "+-":
            raise CommandSyntaxError(f"#{name}: write +{w.lstrip('+-')} or -{w.lstrip('+-')}")
        item = w[1:].lower()
        if name == "cc":
            item = _address(item)
        elif not _TAG_RE.fullmatch(item):
            raise CommandSyntaxError(f"{item!r} is not a tag (a-z, 0-9, '_', '.', '-')")
        (add if w[0] == "+" else remove).append(item)
    both = set(add) & set(remove)
    if both:
        raise CommandSyntaxError(f"#{name}: {sorted(both)[0]} is both added and removed")
    if name == "cc":
        return Cc(tuple(dict.fromkeys(add)), tuple(dict.fromkeys(remove)))
    return Tag(tuple(dict.fromkeys(add)), tuple(dict.fromkeys(remove)))


# --------------------------------------------------------------------------- the reply


@dataclass(frozen=True)
class ReplyText:
    """An agent's reply split into its command block and the text after it."""

    command_lines: tuple[tuple[int, str], ...]  # (line number, text), 1-based
    text: str  # answer or note: quotes, quoted notification and signature removed
    stray_commands: tuple[tuple[int, str], ...]  # command lines below other text
    noted: bool  # a #note line ended the block: the text is an internal note


def unwrap_clearsigned(text: str) -> str:
    """The signed text of an inline PGP clearsigned reply (dash-escaping undone)."""
    stripped = text.lstrip()
    if not stripped.startswith(_SIGNED_BEGIN):
        return text
    lines = stripped.split("\n")
    i = 1
    while i < len(lines) and lines[i].strip():  # armor headers ("Hash: SHA256")
        i += 1
    body: list[str] = []
    for j in range(i + 1, len(lines)):
        if lines[j].strip() == _SIGNATURE_BEGIN:
            rest = lines[j + 1 :]
            end = next((k for k, s in enumerate(rest) if s.strip() == _SIGNATURE_END), None)
            after = rest[end + 1 :] if end is not None else []
            return "\n".join(body + after)
        body.append(lines[j][2:] if lines[j].startswith("- ") else lines[j])
    return text  # no signature: not a clearsigned message after all


def split_reply(text: str, signature: str = "") -> ReplyText:
    """Find the command block at the top and the answer below it."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").translate(_INVISIBLE)
    text = unwrap_clearsigned(text)
    lines = [line.rstrip(" \t\xa0") for line in text.split("\n")]
    commands: list[tuple[int, str]] = []
    i = 0
    noted = False
    while i < len(lines):
        line = lines[i].strip()
        if not line:
            i += 1
            continue
        if not line.startswith("#"):
            break
        commands.append((i + 1, line))
        i += 1
        if re.match(r"#note\b", line, re.I):
            noted = True
            break
    kept = _written_lines(lines, i)
    stray = (
        () if noted else tuple((n + 1, s.strip()) for n, s in kept if _KNOWN_COMMAND_RE.match(s))
    )
    return ReplyText(tuple(commands), _answer_text([s for _, s in kept], signature), stray, noted)


def _written_lines(lines: list[str], start: int) -> list[tuple[int, str]]:
    """(index, line) of what the agent wrote below the commands: up to quoted mail or the
    signature, without '>' lines."""
    kept: list[tuple[int, str]] = []
    for n in range(start, len(lines)):
        line = lines[n]
        if _MARKER_KEY in line.lower():
            break
        if line in ("--", "-- "):  # the signature delimiter (trailing space often lost)
            break
        if _ORIGINAL_MESSAGE_RE.match(line.strip()) or _OUTLOOK_RULE_RE.match(line.strip()):
            break
        if _ATTRIBUTION_RE.match(line.strip()):
            break
        if _ATTRIBUTION_START_RE.match(line.strip()) and any(
            _ATTRIBUTION_END_RE.search(s) for s in lines[n + 1 : n + 3]
        ):
            break
        if _outlook_header_block(lines, n):
            break
        if line.lstrip().startswith(">"):
            continue
        kept.append((n, line))
    return kept


def _answer_text(kept: list[str], signature: str) -> str:
    """The written lines as text, without trailing blank lines or the agent's signature."""
    while kept and not kept[-1].strip():
        kept.pop()
    text = "\n".join(kept)
    sig = "\n".join(s.rstrip() for s in signature.strip().split("\n")) if signature else ""
    if sig and text.rstrip().endswith(sig):
        text = text.rstrip()[: -len(sig)]
    return text.strip("\n").rstrip()


def _outlook_header_block(lines: list[str], n: int) -> bool:
    """`From: ...` followed by `Sent:`/`Date:` and more header lines: a quoted message."""
    if not re.match(r"^from\s*:", lines[n].strip(), re.I):
        return False
    following = [s.strip() for s in lines[n + 1 : n + 4] if s.strip()]
    return bool(following) and all(_OUTLOOK_HEADER_RE.match(s) for s in following[:2])


# --------------------------------------------------------------------------- planning


@dataclass(frozen=True)
class TicketView:
    """What authorization and planning need to know about the ticket being worked on."""

    id: int
    queue: str
    queues: frozenset[str]
    status: str
    priority: int
    assignee: str | None
    sticky: bool
    tier: str
    requester: str


@dataclass(frozen=True)
class PlanContext:
    agent: Agent
    agents: Mapping[str, Agent]  # by name
    queues: frozenset[str]  # every configured queue name
    our_addresses: frozenset[str]  # queue addresses: never a requester or CC
    address_queue: str  # the queue whose address the mail was sent to
    ticket: TicketView | None  # None: the command address (ticket 0)
    subject: str = ""  # the mail's subject (title of a #new ticket)


@dataclass(frozen=True)
class LineResult:
    line: int  # 0 for the answer/note pseudo-line
    text: str
    ok: bool
    message: str


@dataclass(frozen=True)
class TicketChange:
    """The new values a plan writes; None / empty means unchanged."""

    assign: bool = False
    assignee: str | None = None
    sticky: bool | None = None
    priority: int | None = None
    status: str | None = None
    queue: str | None = None
    tier: str | None = None
    title: str | None = None
    requester: str | None = None
    complexity: str | None = None
    cc_add: tuple[str, ...] = ()
    cc_remove: tuple[str, ...] = ()
    tag_add: tuple[str, ...] = ()
    tag_remove: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return self == TicketChange()


@dataclass(frozen=True)
class Assigned:
    """Tell `agent` that the ticket is now theirs."""

    agent: str


@dataclass(frozen=True)
class Escalated:
    """Tell the agents of `queue` (at `tier` or above, if given) why the ticket came to them."""

    queue: str
    tier: str
    reason: str
    moved: bool  # to another queue (else: to the next tier)


Event = Assigned | Escalated


@dataclass(frozen=True)
class Plan:
    lines: tuple[LineResult, ...]
    change: TicketChange = TicketChange()
    answer: str = ""  # to the customer
    note: str = ""  # internal
    new_requester: str = ""  # #new: open a ticket for this address
    new_title: str = ""
    queries: tuple[Query, ...] = ()
    events: tuple[Event, ...] = ()
    commands: tuple[tuple[LineResult, Command], ...] = field(default=())

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.lines)

    @property
    def errors(self) -> tuple[LineResult, ...]:
        return tuple(r for r in self.lines if not r.ok)


_NOT_WITH_NEW = (Release, MoveQueue, Escalate, Requester)
_GROUPS = {Assign: "assignment", Pickup: "assignment", Release: "assignment"}
_GROUPS |= {Status: "status", Close: "status"}


def plan(reply: ReplyText, ctx: PlanContext) -> Plan:
    """Check every command line and the answer; a Plan with no errors can be applied."""
    parsed: list[tuple[LineResult, Command | None]] = []
    for number, text in reply.command_lines:
        try:
            parsed.append((LineResult(number, text, True, "ok"), parse_line(text)))
        except CommandSyntaxError as e:
            parsed.append((LineResult(number, text, False, f"error: {e}"), None))
    planner = _Planner(ctx, reply)
    results = [planner.check(r, c) if c is not None else r for r, c in parsed]
    results.append(planner.text_line())
    results += [
        LineResult(n, t, False, "error: commands must come first, before any other text")
        for n, t in reply.stray_commands
    ]
    ok = all(r.ok for r in results)
    commands = tuple((r, c) for (r0, c), r in zip(parsed, results, strict=False) if c is not None)
    if not ok:  # all or nothing: a line that was fine is not applied either
        return Plan(lines=tuple(_not_applied(r) for r in results))
    return Plan(
        lines=tuple(results),
        change=planner.change(),
        answer=planner.answer,
        note=planner.note,
        new_requester=planner.new_requester,
        new_title=planner.new_title,
        queries=tuple(planner.queries),
        events=tuple(planner.events),
        commands=commands,
    )


def _not_applied(r: LineResult) -> LineResult:
    if not r.ok:
        return r
    return replace(r, message="not sent" if r.line == 0 else "fine, but not applied")


class _Planner:
    """Accumulates the effect of each command; one instance per plan() call."""

    def __init__(self, ctx: PlanContext, reply: ReplyText):
        self.ctx = ctx
        self.reply = reply
        self.values: dict[str, object] = {}
        self.cc_add: dict[str, None] = {}
        self.cc_remove: dict[str, None] = {}
        self.tag_add: dict[str, None] = {}
        self.tag_remove: dict[str, None] = {}
        self.seen: dict[str, int] = {}
        self.queries: list[Query] = []
        self.events: list[Event] = []
        self.reasons: list[tuple[type, str]] = []
        self.new_requester = ""
        self.new_title = ""
        self.note = ""
        self.answer = ""
        commands = [c for _, t in reply.command_lines for c in _try_parse(t)]
        self.creating = any(isinstance(c, NewTicket) for c in commands)
        self.assigning = any(isinstance(c, Assign | Pickup | Release) for c in commands)
        notes = [c for c in commands if isinstance(c, Note)]
        self.note_text = (
            "\n\n".join(s for s in (notes[0].text, reply.text.strip()) if s) if notes else ""
        )

    # -- helpers
    def _ticket(self) -> TicketView | None:
        return self.ctx.ticket

    def _is_admin(self) -> bool:
        return self.ctx.agent.role == "admin"

    def change(self) -> TicketChange:
        v = self.values
        return TicketChange(
            assign="assignee" in v,
            assignee=v.get("assignee"),  # type: ignore[arg-type]
            sticky=v.get("sticky"),  # type: ignore[arg-type]
            priority=v.get("priority"),  # type: ignore[arg-type]
            status=v.get("status"),  # type: ignore[arg-type]
            queue=v.get("queue"),  # type: ignore[arg-type]
            tier=v.get("tier"),  # type: ignore[arg-type]
            title=v.get("title"),  # type: ignore[arg-type]
            requester=v.get("requester"),  # type: ignore[arg-type]
            complexity=v.get("complexity"),  # type: ignore[arg-type]
            cc_add=tuple(self.cc_add),
            cc_remove=tuple(self.cc_remove),
            tag_add=tuple(self.tag_add),
            tag_remove=tuple(self.tag_remove),
        )

    def check(self, r: LineResult, cmd: Command) -> LineResult:
        try:
            message = self._check(cmd, r.line)
        except _Refused as e:
            return LineResult(r.line, r.text, False, f"refused: {e}")
        except CommandSyntaxError as e:
            return LineResult(r.line, r.text, False, f"error: {e}")
        return LineResult(r.line, r.text, True, message)

    def _once(self, cmd: Command, line: int) -> None:
        key = _GROUPS.get(type(cmd), type(cmd).__name__)
        if isinstance(cmd, Cc | Tag):
            return
        if key in self.seen:
            if key in ("assignment", "status"):
                raise CommandSyntaxError(
                    f"conflicts with line {self.seen[key]}: one {key} command per mail"
                )
            raise CommandSyntaxError(f"given twice (also on line {self.seen[key]})")
        self.seen[key] = line

    def _check(self, cmd: Command, line: int) -> str:
        ctx, t = self.ctx, self.ctx.ticket
        self._once(cmd, line)
        if isinstance(cmd, QUERY_TYPES):
            self.queries.append(cmd)
            return "ok, answered below"
        if isinstance(cmd, NewTicket):
            return self._new(cmd)
        if t is None and not self.creating:
            raise CommandSyntaxError(
                "no ticket here: reply to a ticket's notification, or open one with #new"
            )
        if self.creating and isinstance(cmd, _NOT_WITH_NEW):
            raise CommandSyntaxError("not with #new")
        if t is not None and not can_see(ctx.agent, t.queues, t.assignee):
            raise _Refused(f"ticket #{t.id} is not in your queues")
        return self._ticket_command(cmd, t)

    def _new(self, cmd: NewTicket) -> str:
        ctx = self.ctx
        if ctx.ticket is not None:
            raise CommandSyntaxError("#new works only on your command address (see #help)")
        if cmd.requester in ctx.our_addresses or _base(cmd.requester) in ctx.our_addresses:
            raise CommandSyntaxError(f"{cmd.requester} is one of our queue addresses")
        if not (self._is_admin() or ctx.address_queue in ctx.agent.queues):
            raise _Refused(f"you are not an agent of queue {ctx.address_queue}")
        self.new_requester = cmd.requester
        self.new_title = _title_from_subject(ctx.subject)
        return f"ok, new ticket in {ctx.address_queue} for {cmd.requester}"

    def _ticket_command(self, cmd: Command, t: TicketView | None) -> str:
        ctx, me = self.ctx, self.ctx.agent.name
        current_assignee = t.assignee if t else None
        if isinstance(cmd, Assign):
            target = me if cmd.target == "me" else cmd.target
            if target == "nobody":
                if current_assignee not in (None, me) and not self._is_admin():
                    raise _Refused(f"assigned to {current_assignee}; only admins unassign others")
                self.values["assignee"] = None
                return "ok, unassigned"
            if target not in ctx.agents:
                raise CommandSyntaxError(f"no agent named {target!r}")
            if target != me and not self._is_admin():
                raise _Refused("only admins assign tickets to others (use #assign me or #pickup)")
            if target == me and current_assignee not in (None, me) and not self._is_admin():
                raise _Refused(f"assigned to {current_assignee}; only admins take tickets over")
            self.values["assignee"] = target
            if target != me and target != current_assignee:
                self.events.append(Assigned(target))
            return "ok, assigned to you" if target == me else f"ok, assigned to {target}"
        if isinstance(cmd, Pickup):
            if current_assignee not in (None, me) and not self._is_admin():
                raise _Refused(f"assigned to {current_assignee}; only admins take tickets over")
            self.values["assignee"] = me
            return "ok, assigned to you"
        if isinstance(cmd, Release):
            if current_assignee not in (None, me) and not self._is_admin():
                raise _Refused(f"assigned to {current_assignee}, not to you")
            self.values["assignee"] = None
            return "ok, back in the queue" if current_assignee else "ok (was not assigned)"
        if isinstance(cmd, Priority):
            old = t.priority if t else 50
            new = max(1, min(99, old + cmd.value)) if cmd.relative else cmd.value
            self.values["priority"] = new
            return f"ok, priority {old} -> {new}" if t else f"ok, priority {new}"
        if isinstance(cmd, Status | Close):
            value = cmd.value if isinstance(cmd, Status) else "closed"
            self.values["status"] = value
            return f"ok, status {value}"
        if isinstance(cmd, Note):
            if not self.note_text:
                raise CommandSyntaxError("#note needs text (on the line or below it)")
            self.note = self.note_text
            return "ok, kept as an internal note"
        if isinstance(cmd, MoveQueue):
            assert t is not None
            if cmd.queue not in ctx.queues:
                raise CommandSyntaxError(f"no queue named {cmd.queue!r}")
            if cmd.queue == t.queue:
                raise CommandSyntaxError(f"the ticket is already in {cmd.queue}")
            reason = self._reason(cmd.reason, "#queue")
            self.values["queue"] = cmd.queue
            self.events.append(Escalated(cmd.queue, "", reason, moved=True))
            return f"ok, moved {t.queue} -> {cmd.queue}" + self._unassign_note()
        if isinstance(cmd, Escalate):
            assert t is not None
            tier = next_tier(t.tier)
            if tier is None:
                raise CommandSyntaxError(f"already at the highest tier ({t.tier})")
            reason = self._reason(cmd.reason, "#escalate")
            self.values["tier"] = tier
            self.events.append(Escalated(t.queue, tier, reason, moved=False))
            return f"ok, tier {t.tier} -> {tier}" + self._unassign_note()
        if isinstance(cmd, Sticky):
            self.values["sticky"] = cmd.on
            return "ok, sticky " + ("on" if cmd.on else "off")
        if isinstance(cmd, Cc):
            for a in cmd.add:
                if a in ctx.our_addresses or _base(a) in ctx.our_addresses:
                    raise CommandSyntaxError(f"{a} is one of our queue addresses")
            self.cc_add.update(dict.fromkeys(cmd.add))
            self.cc_remove.update(dict.fromkeys(cmd.remove))
            return "ok, " + _signed_summary(cmd.add, cmd.remove)
        if isinstance(cmd, Title):
            self.values["title"] = cmd.text
            return "ok, title changed"
        if isinstance(cmd, Requester):
            if cmd.address in ctx.our_addresses or _base(cmd.address) in ctx.our_addresses:
                raise CommandSyntaxError(f"{cmd.address} is one of our queue addresses")
            self.values["requester"] = cmd.address
            return f"ok, requester {cmd.address}"
        if isinstance(cmd, Tag):
            self.tag_add.update(dict.fromkeys(cmd.add))
            self.tag_remove.update(dict.fromkeys(cmd.remove))
            return "ok, " + _signed_summary(cmd.add, cmd.remove)
        if isinstance(cmd, Complexity):
            if not (self._is_admin() or ctx.agent.team_lead):
                raise _Refused("complexity is set by team leads and admins")
            self.values["complexity"] = cmd.level
            return f"ok, complexity {cmd.level}"
        raise CommandSyntaxError("not supported here")  # pragma: no cover - all types handled

    def _reason(self, inline: str, name: str) -> str:
        if inline:
            return inline
        if self.note_text:
            return self.note_text
        raise CommandSyntaxError(
            f"{name} needs a note saying why and what was tried: "
            f"write it on the line ({name} ... ) or add #note with text"
        )

    def _unassign_note(self) -> str:
        return "" if self.assigning else ", unassigned"

    def text_line(self) -> LineResult:
        """The pseudo-line for the text below the commands: answer, note, or an error."""
        text = self.reply.text.strip()
        n = len(text.split("\n")) if text else 0
        lines = f"{n} line" + ("" if n == 1 else "s")
        if self.reply.noted:
            return LineResult(0, f"(internal note, {lines})", True, "ok, not sent")
        t = self.ctx.ticket
        if not text:
            if not self.reply.command_lines:
                return LineResult(0, "(no text)", False, "error: no command and no answer text")
            return LineResult(0, "(no answer text)", True, "ok, nothing sent to the customer")
        label = f"(answer, {lines})"
        if contains_token(text):
            return LineResult(
                0,
                label,
                False,
                "error: the answer contains a mailgate reply address; delete the quoted "
                "notification and send again",
            )
        if t is None and not self.creating:
            return LineResult(0, label, False, "error: no ticket to answer here (use #new)")
        if t is not None and not can_see(self.ctx.agent, t.queues, t.assignee):
            return LineResult(0, label, False, f"refused: ticket #{t.id} is not in your queues")
        if t is not None and not t.requester and "requester" not in self.values:
            return LineResult(0, label, False, "error: the ticket has no requester (#requester)")
        self.answer = text
        return LineResult(0, label, True, "ok, sent to the customer")


class _Refused(Exception):
    """The agent may not do this (role, queue, ownership)."""


def _try_parse(text: str) -> list[Command]:
    try:
        return [parse_line(text)]
    except CommandSyntaxError:
        return []


def _base(address: str) -> str:
    local, _, domain = address.partition("@")
    return local.split("+", 1)[0] + "@" + domain


def _signed_summary(add: tuple[str, ...], remove: tuple[str, ...]) -> str:
    return " ".join([*(f"+{a}" for a in add), *(f"-{r}" for r in remove)])


def _title_from_subject(subject: str) -> str:
    s = re.sub(r"^\s*((re|aw|sv|fwd?|antw)\s*:\s*)+", "", subject or "", flags=re.I)
    s = re.sub(r"\[[^\]]*#\d+\]\s*", "", s).strip()
    return (s or "(no subject)")[:MAX_TITLE]
