"""HTML-level reading of replies (agents/html_reply.py) and the sanitiser (outgoing/html.py)."""

from __future__ import annotations

import pytest

from mailgate.agents.html_reply import answer_html, new_html, written_html
from mailgate.agents.reply import split_reply
from mailgate.outgoing.compose import shown_cids
from mailgate.outgoing.html import sanitize
from mailgate.parse.html_text import html_to_text
from tests.reply_clients import HTML_REPLIES

ANSWER = "please switch it off and on again."


@pytest.mark.parametrize("client", list(HTML_REPLIES))
@pytest.mark.parametrize("commands", ["", "<div>#priority 60</div><div>#close</div>"])
def test_each_client_layout_gives_the_answer_and_nothing_quoted(client: str, commands: str):
    html = HTML_REPLIES[client].replace("<p>Hello Carla,</p>", commands + "<p>Hello Carla,</p>")
    own = split_reply(html_to_text(html), "Bob")
    kept, signed = answer_html(html, own.text, len(own.command_lines), "Bob")
    assert kept and signed  # ends with "Bob", the agent's signature
    assert ANSWER in kept and "Hello Carla," in kept
    for quoted in ("Ticket #12", "Reply above", "wrote", "#priority", "#close", "From:", "Von:"):
        assert quoted not in kept, quoted
    assert "<style" not in kept and "margin:0" not in kept


@pytest.mark.parametrize(
    ("html", "expected"),
    [
        ("<p>#close</p><p>Thanks</p>", 1),
        ("<div>#close<br>#priority 5</div><p>Thanks</p>", 2),
        ("<pre>#close\n#priority 5\nThanks</pre>", 0),  # one text node, not all commands
        ("<p>Thanks</p><p>#close</p>", 0),  # below the text: not a command block
    ],
)
def test_command_lines_on_top_are_counted_and_removed(html: str, expected: int):
    kept, removed = written_html(html)
    assert removed == expected
    if expected:
        assert "#" not in kept and "Thanks" in kept


@pytest.mark.parametrize(
    "html",
    [
        "<p>Fixed.</p><blockquote><p>Q</p></blockquote><p>And this too.</p>",  # inline answer
        "<p>Fixed.</p>",  # the text reading says something else
    ],
)
def test_disagreeing_readings_give_no_html(html: str):
    assert answer_html(html, "Fixed. And this too. Plus more.", 0) == ("", False)


def test_a_command_count_that_disagrees_gives_no_html():
    assert answer_html("<p>#close</p><p>Fixed.</p>", "Fixed.", 2) == ("", False)
    assert answer_html("<p>#close</p><p>Fixed.</p>", "Fixed.", 1)[0] == "<p>Fixed.</p>"


def test_the_signature_delimiter_and_marker_end_the_answer():
    assert written_html("<p>Fixed.</p><p>-- <br>Bob, Example</p>")[0] == "<p>Fixed.</p><p>"
    marker = "<p>##- Reply above this line: command lines first, then your answer -##</p>"
    assert written_html(f"<p>Fixed.</p>{marker}<p>Ticket #12</p>")[0] == "<p>Fixed.</p>"


@pytest.mark.parametrize(
    ("dirty", "clean"),
    [
        ('<p onclick="x()">Hi</p><script>alert(1)</script>', "<p>Hi</p>"),
        ('<img src="https://tracker.example/p.gif">', "<img>"),
        ('<img src="data:image/png;base64,AAAA">', "<img>"),
        ('<img src="cid:a@b" onerror="x()">', '<img src="cid:a@b">'),
        ('<a href="javascript:x()">link</a>', '<a rel="noopener noreferrer">link</a>'),
        (
            '<a href="https://example.com">link</a>',
            '<a href="https://example.com" rel="noopener noreferrer">link</a>',
        ),
        ("<style>p{color:red}</style><p>Hi</p><p></p><div><p> </p></div>", "<p>Hi</p>"),
        ("<form><input name=x></form><p>Hi", "<p>Hi</p>"),
        ("<p>Open <b>bold", "<p>Open <b>bold</b></p>"),  # what the cut left open is closed
    ],
)
def test_sanitize(dirty: str, clean: str):
    assert sanitize(dirty) == clean


def test_new_html_cuts_the_customers_quoted_history_but_keeps_hash_lines():
    html = (
        "<p>#1 problem: the printer.</p><div class='gmail_quote'>On Monday we wrote:"
        "<blockquote>Old answer</blockquote></div>"
    )
    assert new_html(html) == "<p>#1 problem: the printer.</p>"
    assert new_html("") == ""


@pytest.mark.parametrize(
    "html",
    [
        "<p>Hello,</p><p>the printer &amp; the scanner are down.</p>",  # nothing to cut
        "<html><head><style>p {margin: 0}</style></head><body><p>Hi</p></body></html>",
        "<p>Answer</p><div class='gmail&#95;quote'>On Monday:</div><p>old</p>",  # by entity
        "<p>Answer</p><div ID='DivRplyFwdMsg'>From: us</div><p>old</p>",
        "<p>Answer</p><BLOCKQUOTE>old</BLOCKQUOTE>",
        '<p>Answer</p><div style="BORDER-TOP: solid #E1E1E1 1.0pt">From: us</div><p>old</p>',
        "<p>Answer</p><p>&#45;&#45;</p><p>Carla, signature</p>",
        "<p>Answer</p><p>Reply ABOVE this line</p><p>old</p>",
        "<p>Answer</p><!-- a comment --><p>kept</p>",  # "--" outside the text: scanned, kept
    ],
)
def test_new_html_is_what_the_scan_keeps(html: str):
    """Without a scan when nothing can be cut (agents/html_reply._may_cut): the same answer."""
    assert new_html(html) == sanitize(written_html(html, commands=False)[0])


def test_shown_cids():
    html = '<img src="cid:a@b"><img src=\'cid:<c@d>\'><img src="https://x/y">'
    assert shown_cids(html) == {"a@b", "c@d"}
