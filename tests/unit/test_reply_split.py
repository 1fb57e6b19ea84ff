"""The reply splitter on the other parsers' fixture sets and on real client layouts.

The fixture sets (tests/reply_fixtures.py) are fed here as the text under an agent's
command block, straight to the splitter; tests/integration/test_reply_fixtures.py runs
them end to end. The client layouts (tests/reply_clients.py) quote a real notification
in each client's way and language: the customer must get the answer and nothing else.
"""

from __future__ import annotations

import pytest

from mailgate.agents import quotes
from mailgate.agents.reply import REPLY_MARKER, _has_marker, new_text, split_reply
from mailgate.parse.message import parse
from tests import reply_clients as clients
from tests.reply_fixtures import SETS, load_cases, score, tally

NOTIFICATION = f"""{REPLY_MARKER}
Ticket #12: Printer is broken   [support, priority 50, new]
From: Carla Customer <carla@example.com>

Hello,
my printer is broken.

--
Example Support - commands: #help"""
ANSWER = "Hello Carla,\n\nplease switch it off and on again.\n\nBest regards,\nBob"
LANGS = sorted(clients.HEADER_BLOCKS)
# the thresholds of issue 12, per set: clean at least, leak at most
CLEAN_MIN, LEAK_MAX = 0.95, 0.01


def answer_of(text: str) -> str:
    return split_reply(text, signature="").text


@pytest.mark.parametrize("fixture_set", SETS)
def test_fixture_sets_fed_to_the_splitter(fixture_set: str):
    cases = [c for c in load_cases() if c.set == fixture_set]
    t = tally([(c, score(c, answer_of(c.text))) for c in cases])[fixture_set]
    n = sum(t.values())
    bad = [c.name for c in cases if score(c, answer_of(c.text)) != "clean"]
    assert t["clean"] / n >= CLEAN_MIN, bad
    assert t["leak"] / n <= LEAK_MAX, bad


def test_the_score_tells_leaks_and_losses_apart():
    (case,) = [c for c in load_cases() if c.name == "email_1_2.txt" and c.set == "github-erp"]
    assert score(case, case.exp) == "clean"
    assert score(case, case.text) == "leak"
    assert score(case, "Hi,") == "lost"


@pytest.mark.parametrize("lang", [*LANGS, "thunderbird", "apple"])
def test_gmail_apple_thunderbird_attribution(lang: str):
    assert answer_of(clients.gmail(ANSWER, NOTIFICATION, lang)) == ANSWER


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("bold", [False, True])
def test_outlook_header_block(lang: str, bold: bool):
    assert answer_of(clients.outlook(ANSWER, NOTIFICATION, lang, bold=bold)) == ANSWER


@pytest.mark.parametrize("lang", LANGS)
def test_original_message_separator(lang: str):
    assert answer_of(clients.separator(ANSWER, NOTIFICATION, lang)) == ANSWER


@pytest.mark.parametrize("lang", LANGS)
def test_bottom_posted(lang: str):
    assert answer_of(clients.bottom_posted(ANSWER, NOTIFICATION, lang)) == ANSWER


@pytest.mark.parametrize("lang", ["en", "de", "fr", "ja"])
def test_inline_answers_keep_the_author_lines_between_quotes(lang: str):
    text = clients.inline(
        ["Yes, the Model 42.", "Since Monday."],
        ["Which printer is it?", "Since when?"],
        lang,
    )
    assert answer_of(text) == "Yes, the Model 42.\n\nSince Monday."


@pytest.mark.parametrize(
    "footer",
    [
        "Sent from my iPhone",
        "Von meinem iPhone gesendet",
        "Envoyé de mon iPad",
        "Enviado desde mi Samsung Galaxy",
        "Inviato da iPhone",
        "Verzonden met mijn iPhone",
        "Skickat från min iPhone",
        "Sendt fra min iPhone",
        "Get Outlook for Android",
        "iPhoneから送信",
    ],
)
def test_mobile_footer_is_dropped(footer: str):
    text = clients.gmail(f"{ANSWER}\n\n{footer}", NOTIFICATION)
    assert answer_of(text) == ANSWER


def test_a_sentence_that_starts_like_a_footer_is_kept():
    text = "Sent from a magnificent torch of pixels, this works.\n"
    assert answer_of(text) == text.strip()


def test_author_lines_that_look_like_headers_are_kept():
    for text in (
        "From: the logs I see a timeout.\nPlease retry.",
        "On Monday we deploy the fix.\nIt will be fine.",
        "Date: tomorrow at the latest.",
        "Here is what the manual says:\nturn it off.",
    ):
        assert answer_of(text) == text


def test_forwarded_message_is_kept_but_not_the_notification_under_it():
    fwd = (
        "FYI, see below.\n\n---------- Forwarded message ---------\n"
        "From: vendor@example.org\nDate: Mon, 30 Nov 2026\nSubject: Recall\n"
        "To: bob@example.test\n\nModel 42 is recalled."
    )
    assert answer_of(clients.gmail(fwd, NOTIFICATION)) == fwd


def test_a_banner_of_angle_brackets_is_not_a_quote():
    text = "Visit us:\n>>> http://example.com <<<\nthanks"
    assert answer_of(text) == text


@pytest.mark.parametrize("client", sorted(clients.HTML_REPLIES))
def test_html_only_replies_from_each_client(client: str):
    p = parse(clients.html_only(clients.HTML_REPLIES[client]))
    assert (
        answer_of(p.text)
        == "Hello Carla,\n\nplease switch it off and on again.\n\nBest regards,\nBob"
    )


def test_new_text_of_a_customer_mail():
    mail = clients.gmail("Any news?\n\n-- \nCarla", "Hello,\nmy printer is broken.", "de")
    assert new_text(mail) == "Any news?"
    assert new_text("#1 is my order number\n> old") == "#1 is my order number"


@pytest.mark.parametrize("invisible", ["\u200b", "\u200e", "\u202e", "\u2066", "\ufeff", "\u00ad"])
def test_invisible_and_bidi_controls_are_removed_before_commands_are_read(invisible: str):
    split = split_reply(f"{invisible}#close\n\nDone{invisible}.")
    assert split.command_lines == ((1, "#close"),)
    assert split.text == "Done."


def test_html_inline_and_bottom_posted_answers_keep_the_lines_between_quotes():
    sender = clients.SENDER.replace("<", "&lt;").replace(">", "&gt;")
    html = (
        f'<div class="gmail_attr">On {clients.DATE} {sender} wrote:</div>'
        '<blockquote class="gmail_quote"><p>Which printer is it?</p></blockquote>'
        "<p>The Model 42.</p>"
        '<blockquote type="cite"><p>Since when?</p><blockquote><p>old</p></blockquote></blockquote>'
        "<div>Since Monday.</div>"
    )
    assert answer_of(parse(clients.html_only(html)).text) == "The Model 42.\n\nSince Monday."


def test_a_rule_of_dashes_in_the_answer_is_text_unless_a_header_block_follows():
    text = "Step one: unplug it.\n\n------------------------------\n\nStep two: wait."
    assert answer_of(text) == text
    quoted = clients.outlook("Done.", NOTIFICATION).replace("_" * 32, "-" * 30)
    assert answer_of(quoted) == "Done."


def test_a_line_that_cannot_open_a_header_is_at_most_a_bare_wrote_line():
    """The splitter asks header_at only where may_open_header (or a '>' quote below) says
    so: every other line of every fixture, as the clients quote it, gives no header or a
    bare "X wrote:" one."""
    bare_wrote = quotes.Header(1, explicit=False)
    asked = 0
    for case in load_cases():
        for text in (
            case.text,
            clients.gmail(case.text, REPLY_MARKER),
            clients.outlook(case.text, "x"),
        ):
            lines = text.split("\n")
            for n, line in enumerate(lines):
                if not quotes.may_open_header(line):
                    asked += 1
                    assert quotes.header_at(lines, n) in (None, bare_wrote), (case.name, line)
    assert asked > 1000
    assert quotes.header_at(["Anna Smith wrote", "> hi"], 0) == bare_wrote
    assert not quotes.may_open_header("Anna Smith wrote")


@pytest.mark.parametrize(
    "text",
    [
        "no marker here",
        "## Reply ABOVE this line ##",
        "Über: reply above this line, dänke",
        "reply above thİs line",  # İ lowers to "i" + U+0307: not the marker
        "reply above this lİne",
        "\u212a reply above this line",  # KELVIN SIGN lowers to "k"
        "répondre: REPLY above THIS line",
        "reply above\nthis line",
        "",
    ],
)
def test_the_marker_check_reads_the_ascii_characters_as_lower_would(text: str):
    """reply._has_marker: what `"reply above this line" in text.lower()` says, also with
    the two non-ASCII characters that lower to ASCII ones."""
    assert _has_marker(text) is ("reply above this line" in text.lower())
    for case in load_cases():
        assert _has_marker(case.text) is ("reply above this line" in case.text.lower())
