"""How mail clients lay out a reply to a notification, per client and language: the
agent's text on top (or inline), then the client's quote header and the quoted mail.

Each layout is what the client really writes in its plain-text part (or what its HTML
part renders to): Gmail and Apple Mail quote with '>' under an attribution line,
Thunderbird the same with its own wording, Outlook puts an unprefixed copy under a
localized "From:/Sent:" block (bold in its HTML-to-text rendering) or an "Original
Message" separator.
"""

from __future__ import annotations

from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

DATE = "Tue, 1 Dec 2026 at 10:00"
SENDER = "Example Support <support+bob.12.abc@example.test>"

# (language, attribution line(s)) as Gmail / Apple Mail / Thunderbird write them
ATTRIBUTIONS = {
    "en": f"On {DATE}, {SENDER} wrote:",
    "de": f"Am Di., 1. Dez. 2026 um 10:00 Uhr schrieb {SENDER}:",
    "fr": f"Le mar. 1 déc. 2026 à 10:00, {SENDER} a écrit :",
    "es": f"El mar, 1 dic 2026 a las 10:00, {SENDER} escribió:",
    "it": f"Il giorno mar 1 dic 2026 alle ore 10:00 {SENDER} ha scritto:",
    "nl": f"Op di 1 dec. 2026 om 10:00 schreef {SENDER}:",
    "pt": f"Em ter., 1 de dez. de 2026 às 10:00, {SENDER} escreveu:",
    "pl": f"W dniu wt., 1.12.2026 o 10:00 {SENDER}\nnapisał(a):",
    "sv": f"Den tis 1 dec. 2026 kl 10:00 skrev {SENDER}:",
    "da": f"Den tir. 1. dec. 2026 kl. 10.00 skrev {SENDER}:",
    "no": f"På tir. 1. des. 2026 kl. 10:00 skrev {SENDER}:",
    "fi": f"ti 1. jouluk. 2026 klo 10.00 {SENDER} kirjoitti:",
    "ru": f"вт, 1 дек. 2026 г. в 10:00, {SENDER}:",
    "ja": f"2026年12月1日(火) 10:00 {SENDER}:",
    "zh": f"{SENDER} 于2026年12月1日周二 10:00写道：",
    "thunderbird": f"On 01.12.26 10:00, {SENDER} wrote:",
    "apple": f"> On 1 Dec 2026, at 10:00, {SENDER} wrote:",
}
# Outlook's header block: (From, Sent, To, Subject) labels per language
HEADER_BLOCKS = {
    "en": ("From", "Sent", "To", "Subject"),
    "de": ("Von", "Gesendet", "An", "Betreff"),
    "fr": ("De ", "Envoyé ", "À ", "Objet "),
    "es": ("De", "Enviado el", "Para", "Asunto"),
    "it": ("Da", "Inviato", "A", "Oggetto"),
    "nl": ("Van", "Verzonden", "Aan", "Onderwerp"),
    "pt": ("De", "Enviado", "Para", "Assunto"),
    "pl": ("Od", "Wysłano", "Do", "Temat"),
    "sv": ("Från", "Skickat", "Till", "Ämne"),
    "da": ("Fra", "Sendt", "Til", "Emne"),
    "no": ("Fra", "Sendt", "Til", "Emne"),
    "fi": ("Lähettäjä", "Lähetetty", "Vastaanottaja", "Aihe"),
    "ru": ("От", "Отправлено", "Кому", "Тема"),
    "ja": ("差出人", "送信日時", "宛先", "件名"),
    "zh": ("发件人", "发送时间", "收件人", "主题"),
}
SEPARATORS = {
    "en": "-----Original Message-----",
    "de": "-----Ursprüngliche Nachricht-----",
    "fr": "-----Message d'origine-----",
    "es": "-----Mensaje original-----",
    "it": "-----Messaggio originale-----",
    "nl": "-----Oorspronkelijk bericht-----",
    "pt": "-----Mensagem original-----",
    "pl": "-----Wiadomość oryginalna-----",
    "sv": "-----Ursprungligt meddelande-----",
    "da": "-----Oprindelig meddelelse-----",
    "no": "-----Opprinnelig melding-----",
    "fi": "-----Alkuperäinen viesti-----",
    "ru": "-----Исходное сообщение-----",
    "ja": "-----元のメッセージ-----",
    "zh": "-----原始邮件-----",
}


def quoted(text: str) -> str:
    return "\n".join(f"> {line}" if line else ">" for line in text.split("\n"))


def gmail(answer: str, original: str, lang: str = "en") -> str:
    """Top-posted under an attribution, the original '>'-quoted."""
    return f"{answer.rstrip()}\n\n{ATTRIBUTIONS[lang]}\n\n{quoted(original)}\n"


def outlook(answer: str, original: str, lang: str = "en", *, bold: bool = False) -> str:
    """Top-posted over a rule and a localized header block, the original unprefixed."""
    f, s, t, subj = HEADER_BLOCKS[lang]
    star = "*" if bold else ""
    block = "\n".join(
        f"{star}{label.rstrip()}{' ' if label.endswith(' ') else ''}:{star} {value}"
        for label, value in (
            (f, "Example Support <support@example.test>"),
            (s, "Tuesday, December 1, 2026 10:00 AM"),
            (t, "Bob Example <bob@example.test>"),
            (subj, "[support #12] New ticket: Printer is broken"),
        )
    )
    return f"{answer.rstrip()}\n\n________________________________\n{block}\n\n{original}\n"


def separator(answer: str, original: str, lang: str = "en") -> str:
    """Top-posted over an "Original Message" separator and an English header block."""
    block = (
        f"From: support@example.test\nSent: {DATE}\nTo: bob@example.test\n"
        "Subject: [support #12] New ticket"
    )
    return f"{answer.rstrip()}\n\n{SEPARATORS[lang]}\n{block}\n\n{original}\n"


def bottom_posted(answer: str, original: str, lang: str = "en") -> str:
    """The attribution and quote first, the answer under it."""
    return f"{ATTRIBUTIONS[lang]}\n{quoted(original)}\n\n{answer.rstrip()}\n"


def inline(answers: list[str], original_parts: list[str], lang: str = "en") -> str:
    """Answers between the quoted parts they answer, after one attribution."""
    out = [ATTRIBUTIONS[lang]]
    for part, ans in zip(original_parts, answers, strict=True):
        out += [quoted(part), "", ans, ""]
    return "\n".join(out)


# HTML-only replies as the clients write them (the agent path reads their text rendering)
_ANSWER_HTML = (
    "<p>Hello Carla,</p><p>please switch it off and on again.</p><p>Best regards,<br>Bob</p>"
)
_NOTE_HTML = (
    "<p>##- Reply above this line: command lines first, then your answer -##</p><p>Ticket #12</p>"
)
HTML_REPLIES = {
    "gmail": f'<div dir="ltr">{_ANSWER_HTML}</div><br><div class="gmail_quote"><div dir="ltr"'
    f' class="gmail_attr">On {DATE} {SENDER.replace("<", "&lt;").replace(">", "&gt;")}'
    f' wrote:<br></div><blockquote class="gmail_quote">{_NOTE_HTML}</blockquote></div>',
    "outlook-desktop": f"<html><head><style>p{{margin:0}}</style></head><body>{_ANSWER_HTML}"
    '<div style="border:none;border-top:solid #E1E1E1 1.0pt"><p><b>From:</b> Example Support'
    " &lt;support@example.test&gt;<br><b>Sent:</b> Tuesday, December 1, 2026 10:00 AM<br>"
    "<b>To:</b> Bob Example &lt;bob@example.test&gt;<br><b>Subject:</b> [support #12] New"
    f" ticket</p></div>{_NOTE_HTML}</body></html>",
    "outlook-web": f'<div>{_ANSWER_HTML}</div><hr style="display:inline-block;width:98%">'
    '<div id="divRplyFwdMsg" dir="ltr"><font face="Calibri"><b>Von:</b> Example Support'
    " &lt;support@example.test&gt;<br><b>Gesendet:</b> Dienstag, 1. Dezember 2026 10:00<br>"
    "<b>An:</b> Bob Example<br><b>Betreff:</b> [support #12] New ticket</font><div>&nbsp;</div>"
    f"</div>{_NOTE_HTML}",
    "apple-mail": f'<html><body>{_ANSWER_HTML}<div><br><blockquote type="cite"><div>On 1 Dec'
    f" 2026, at 10:00, Example Support &lt;support@example.test&gt; wrote:</div><br>{_NOTE_HTML}"
    "</blockquote></div></body></html>",
    "thunderbird": f'<html><body>{_ANSWER_HTML}<div class="moz-cite-prefix">On 01.12.26 10:00,'
    ' Example Support wrote:<br></div><blockquote type="cite"'
    f' cite="mid:x@example.test">{_NOTE_HTML}</blockquote></body></html>',
}


def html_only(html: str, to: str = "support@example.test") -> bytes:
    """An HTML-only agent mail around `html`."""
    head = (
        "From: Bob <bob@example.test>\r\nTo: " + to + "\r\nSubject: Re: x\r\n"
        "Message-ID: <h@example.test>\r\nMIME-Version: 1.0\r\n"
        'Content-Type: text/html; charset="utf-8"\r\n\r\n'
    )
    return (head + html).encode("utf-8")


def agent_mime(to: str, body: str, sender: str = "Bob Example <bob@example.test>") -> EmailMessage:
    """A MIME mail from an agent (EmailMessage) to `to`, for tests to add parts to."""
    m = EmailMessage()
    m["From"] = sender
    m["To"] = to
    m["Subject"] = "Re: notification"
    m["Date"] = format_datetime(datetime.now(UTC))
    m["Message-ID"] = make_msgid(domain="example.test")
    m.set_content(body)
    return m
