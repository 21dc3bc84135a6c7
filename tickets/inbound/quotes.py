"""The new text of an emailed reply: what its writer typed, without the history their mail client
quoted below it. mail-parser-reply (maintained, many languages) finds where the history starts;
everything above it is kept exactly as written, indentation and all. Its signature and disclaimer
guesses are not used: they cut a reply at any "- item", "Thanks," or "Regards," line, and a
reply's steps or its "PS" were lost with them. Only what is certainly not the writer's words goes:

- the quoted history, from the client's attribution ("On ... wrote:", an Outlook "From: ... Sent:"
  block, "-----Original Message-----") down;
- a signature below the standard "-- " line (RFC 3676), when it is short;
- a closing line that is a sign-off and nothing else ("Best regards,") with at most four short
  lines below it (a name, a title, a phone number; not a "PS");
- a last "Sent from my iPhone" line, and a block of "> " lines ending the message.

The whole text is kept when the writer answered inside the quote (their lines between quoted ones)
or forwarded a message in their reply. The full message is always kept as a file beside it."""

from __future__ import annotations

import re
from functools import cache

from mailparser_reply import EmailMessage

LANGUAGES = ("en", "de", "fr", "es", "it", "nl", "sv")
# An Outlook-style block of fields names its sender; "Subject:" and "Date:" lines alone are a report.
FIELD_LINE = re.compile(r"^[>\s*]*[^\W\d_]+\s*:")
SENDER_FIELD = re.compile(r"^[>\s*]*(?:from|från|von|de|van|da)\s*:", re.I | re.M)
FORWARDED = re.compile(
    r"^[>\s]*(?:-{2,}\s*(?:forwarded message|weitergeleitete nachricht|vidarebefordrat meddelande|"
    r"message transféré|mensaje reenviado|messaggio inoltrato|doorgestuurd bericht)|begin forwarded message:)",
    re.I | re.M,
)
SENT_FROM = re.compile(
    r"^(?:sent from my |sent from outlook|get outlook for |skickat från min |von meinem .* gesendet|"
    r"envoyé de mon |enviado desde mi |inviato da |verzonden met )",
    re.I,
)
SEPARATOR = re.compile(r"^\s*[_=-]{8,}\s*$")  # Outlook's line above the history it quotes
SIGNATURE_LINES = 8  # below "-- ": longer is more than a signature
# A line that is a sign-off and nothing else; below it, a signature's few short lines (a name, a
# title, a phone number): then it and they go. "Thanks, the restore works" is no sign-off, and a
# "PS" or a sentence below one (ending in . ! or ?, or of more than a few words) is the writer's.
SIGN_OFF = re.compile(
    r"^(?:thanks|thank you|many thanks|thanks again|regards|best regards|kind regards|warm regards|best|"
    r"cheers|sincerely|yours sincerely|br|mvh|med vänliga hälsningar|vänliga hälsningar|hälsningar|tack|"
    r"mit freundlichen grüßen|viele grüße|beste grüße|grüße|gruß|danke|cordialement|bien cordialement|merci|"
    r"saludos|un saludo|gracias|atentamente|cordiali saluti|saluti|grazie|met vriendelijke groet|groeten|"
    r"bedankt)[\s,.!]*$",
    re.I,
)
SIGNATURE_LINE = re.compile(r"^(?!p\.?\s?s\b)(?!.*[.!?]$).{1,50}$", re.I)  # no PS, no sentence
SIGNATURE_WORDS = 6
SIGN_OFF_LINES = 4


def latest_reply(text: str) -> str:
    """The reply's new text (see the module's docstring); the whole text when nothing is quoted."""
    if not text:
        return ""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    try:
        cut = _history_start(lines)
    except Exception:  # noqa: BLE001 - a text the parser cannot read is kept whole
        cut = None
    if cut is not None and cut > 0 and not _answered_inside(lines[cut:]):
        lines = lines[:cut]
    lines = _without_tail(lines)
    return "\n".join(lines).strip("\n").rstrip() or text.strip()


def _history_start(lines: list[str]) -> int | None:
    """The index of the line where the quoted history starts, or None. A forwarded message keeps
    the whole text (None): the writer sent it to be read."""
    stripped = "\n".join(line.strip() for line in lines)  # as the parser reads a text
    for match in _headers().finditer(stripped):
        found = match.group(0)
        if FORWARDED.search(stripped, 0, match.end()):
            return None
        if FIELD_LINE.match(found.lstrip("\n")) and not SENDER_FIELD.search(found):
            continue  # "Subject: ...\nDate: ..." of a pasted report, not a quoted email's header
        return stripped.count("\n", 0, match.start() + len(found) - len(found.lstrip("\n")))
    return None


@cache
def _headers() -> re.Pattern:
    """The parser's pattern of the attributions that start a quoted history, in LANGUAGES."""
    return EmailMessage(text="", languages=list(LANGUAGES)).HEADER_REGEX


def _answered_inside(history: list[str]) -> bool:
    """Whether the writer's own lines sit between "> " lines of the quote (an answer inline)."""
    rest = [line.strip() for line in history[1:] if line.strip()]
    if not rest or not rest[0].startswith(">"):
        return False  # an Outlook-style history: quoted without "> ", nothing to tell apart
    quoting = False
    for line in history[1:]:
        s = line.strip()
        if s.startswith(">"):
            quoting = True
        elif s and quoting:
            return True
    return False


def _without_tail(lines: list[str]) -> list[str]:
    """Without a trailing block of "> " lines, a short "-- " signature, a separator line and a
    "Sent from my" line."""
    end = len(lines)
    while end and not lines[end - 1].strip():
        end -= 1
    start_quote = end
    while start_quote and (lines[start_quote - 1].lstrip().startswith(">") or not lines[start_quote - 1].strip()):
        start_quote -= 1
    if start_quote < end and any(line.strip() for line in lines[:start_quote]):
        end = start_quote
    for i in range(end - 1, -1, -1):
        if lines[i] == "-- ":
            if i > 0 and sum(1 for line in lines[i + 1 : end] if line.strip()) <= SIGNATURE_LINES:
                end = i
            break
    end = _without_sign_off(lines, end)
    while end and (not lines[end - 1].strip() or SEPARATOR.match(lines[end - 1])):
        end -= 1
    if end > 1 and SENT_FROM.match(lines[end - 1].strip()):
        end -= 1
    return lines[:end]


def _without_sign_off(lines: list[str], end: int) -> int:
    """Where the text ends without its closing sign-off and the short signature below it."""
    below = 0
    for i in range(end - 1, 0, -1):
        line = lines[i].strip()
        if SIGN_OFF.match(line):
            return i if any(x.strip() for x in lines[:i]) else end
        if line:
            below += 1
            if below > SIGN_OFF_LINES or not SIGNATURE_LINE.match(line) or len(line.split()) > SIGNATURE_WORDS:
                return end
    return end
