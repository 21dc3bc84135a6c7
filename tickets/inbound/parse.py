"""Reading an inbound message: who sent it, to whom, when we received it, whether it is automatic
mail, what our own MTA's Authentication-Results says, its text and its files. Pure functions of
the parsed message (Python's email package with the default policy); nothing here writes."""

from __future__ import annotations

import email
import email.policy
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import errors
from email.message import EmailMessage
from email.utils import getaddresses, parsedate_to_datetime
from html.parser import HTMLParser

# Headers that name where a message was delivered, the envelope's first (Postfix's pipe adds
# Delivered-To with flags=D; X-Original-To is the address before aliases).
RECIPIENT_HEADERS = ("Delivered-To", "X-Original-To", "To", "Cc")
AUTOMATIC_SENDERS = ("mailer-daemon", "postmaster")
BULK_PRECEDENCE = ("bulk", "list", "junk")
MAX_RECIPIENTS = 100  # addresses read from the headers: 10,000 in To is not 10,000 look-ups
MAX_ADDRESS = 254  # RFC 5321's longest path less its brackets: a longer one is no address anyone can answer


class _ParsedOnce(email.policy.EmailPolicy):
    """The default policy, whose header objects (immutable: str with their parse) are made once per
    name and value: the parser reads a part's Content-Type again for every question it asks of the
    part, and the routing reads From, To and the rest more than once. Kept for the process, at most
    HEADERS_KEPT of them (then forgotten at once), none longer than HEADER_KEPT_CHARS: a hostile
    message's huge header is parsed for its message alone, never held for the next ones."""

    def header_fetch_parse(self, name, value):
        if hasattr(value, "name"):
            return value
        if len(value) > HEADER_KEPT_CHARS:
            return super().header_fetch_parse(name, value)
        key = (name, value)
        found = _headers.get(key)
        if found is None:
            if len(_headers) >= HEADERS_KEPT:
                _headers.clear()
            found = _headers[key] = super().header_fetch_parse(name, value)
        return found


HEADERS_KEPT = 4096
HEADER_KEPT_CHARS = 2048
_headers: dict[tuple[str, str], object] = {}
POLICY = _ParsedOnce()  # email.policy.default's settings


def parse(raw: bytes) -> EmailMessage:
    """The message, however malformed: the email package records defects instead of raising."""
    return email.message_from_bytes(raw, policy=POLICY)


# What no text column takes (PostgreSQL refuses NUL; a lone surrogate cannot be encoded) and no
# header line should hold: control characters but tab and line ends, and lone surrogates.
_UNSAFE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")


def safe_text(text: str) -> str:
    """`text` with what no column takes replaced by U+FFFD (NUL left out): a message that carries
    them is still stored, never retried for ever."""
    return _UNSAFE.sub(lambda m: "" if m.group() == "\x00" else "\ufffd", text)


def header(msg: EmailMessage, name: str) -> str:
    """A header's text with encoded words decoded and line breaks folded away (a subject's CR/LF
    never reaches a ticket or an email we send); empty when absent or unreadable."""
    try:
        value = str(msg.get(name) or "")
    except Exception:  # noqa: BLE001 - a header the parser cannot decode counts as absent
        return ""
    return " ".join(safe_text(value).split())


def addresses(values) -> list[str]:
    """Bare, lower-case addresses of header values ("Eve <E@x>, f@y" -> [e@x, f@y]); one longer
    than MAX_ADDRESS is left out (no mail system delivers to it, and no column holds it)."""
    found = []
    for _, addr in getaddresses([str(v) for v in values if v]):
        addr = addr.strip().lower()
        if "@" in addr and len(addr) <= MAX_ADDRESS and not _UNSAFE.search(addr) and addr not in found:
            found.append(addr)
        if len(found) >= MAX_RECIPIENTS:
            break
    return found


def all_headers(msg: EmailMessage, name: str) -> list[str]:
    try:
        return [str(v) for v in (msg.get_all(name) or [])]
    except Exception:  # noqa: BLE001
        return []


@dataclass
class Envelope:
    sender: str  # the From address ("" when there is none or several)
    return_path: str  # "" for the null return path <>, None-like "?" when absent
    recipients: list[str]
    message_id: str
    subject: str
    in_reply_to: str
    references: str
    # Set by tickets.inbound.route: what our MTA said of DMARC (None: nothing), why it is automatic,
    # and whether a program sent it (Auto-Submitted: auto-generated: a customer's monitoring files a
    # ticket without a receipt; RFC 3834: such mail is never answered).
    dmarc_failed: bool | None = None
    automatic: str = ""
    auto_generated: bool = False


def envelope(msg: EmailMessage) -> Envelope:
    # A display name is never trusted: "support@kaluari.com" <eve@evil.example> is eve@evil.example.
    senders = addresses(all_headers(msg, "From"))
    return_paths = all_headers(msg, "Return-Path")
    if return_paths:
        rp = return_paths[0].strip()
        return_path = "" if rp in ("<>", "") else (addresses([rp]) or ["?"])[0]
    else:
        return_path = "?"
    recipients = []
    for name in RECIPIENT_HEADERS:
        for addr in addresses(all_headers(msg, name)):
            if addr not in recipients and len(recipients) < MAX_RECIPIENTS:
                recipients.append(addr)
    message_id = (re.findall(r"<[^<>\s]{1,250}>", header(msg, "Message-ID")) or [""])[0]
    return Envelope(
        sender=senders[0] if len(senders) == 1 else "",
        return_path=return_path,
        recipients=recipients,
        message_id=message_id,
        subject=header(msg, "Subject")[:300],
        in_reply_to=header(msg, "In-Reply-To"),
        references=header(msg, "References"),
    )


def received_at(msg: EmailMessage) -> datetime | None:
    """The moment in the topmost Received header (our own MTA's, added last): an MTA retrying after
    a temporary failure keeps the message and its headers, so a retry does not move it."""
    for value in all_headers(msg, "Received")[:1]:
        stamp = value.rpartition(";")[2].strip()
        try:
            at = parsedate_to_datetime(stamp)
            if at is not None and at.tzinfo is not None:
                return at.astimezone(UTC)
        except (TypeError, ValueError, IndexError, OverflowError):  # year 9999 at -12:00 leaves datetime's range
            return None
    return None


def automatic_reason(msg: EmailMessage, env: Envelope, own_addresses: set[str]) -> str:
    """Why a message is automatic mail that is never answered (RFC 3834 and the usual signs), or ""."""
    auto = header(msg, "Auto-Submitted").lower()
    if auto and auto != "no" and not auto.startswith("auto-generated"):
        return f"Auto-Submitted: {auto[:200]}"  # a reason column's length, whatever the header's
    precedence = header(msg, "Precedence").lower()
    if precedence in BULK_PRECEDENCE:
        return f"Precedence: {precedence}"
    if env.return_path == "":
        return "null return path"
    local = env.sender.partition("@")[0]
    if local in AUTOMATIC_SENDERS or env.return_path.partition("@")[0] in AUTOMATIC_SENDERS:
        return "sent by a mail system (mailer-daemon or postmaster)"
    if re.sub(r"\+[^@]*@", "@", env.sender) in own_addresses:  # ours, or one of our reply addresses
        return "sent from our own address"
    if (
        header(msg, "X-Autoreply")
        or header(msg, "X-Autorespond")
        or "auto_reply" in header(msg, "X-Auto-Response-Suppress").lower()
    ):
        return "an auto-reply"
    return ""


# Defects that leave the structure of a message unknown: its text and files cannot be trusted.
BROKEN = (
    errors.NoBoundaryInMultipartDefect, errors.StartBoundaryNotFoundDefect, errors.CloseBoundaryNotFoundDefect,
    errors.MultipartInvariantViolationDefect, errors.MissingHeaderBodySeparatorDefect,
)  # fmt: skip


def broken(msg: EmailMessage) -> str:
    """Why a message's MIME structure cannot be read, or ""."""
    try:
        for part in msg.walk():
            for defect in getattr(part, "defects", []):
                if isinstance(defect, BROKEN):
                    return f"Its MIME structure is broken ({type(defect).__name__})."
    except Exception as exc:  # noqa: BLE001
        return f"Its MIME structure is broken ({type(exc).__name__})."
    return ""


def is_auto_generated(msg: EmailMessage) -> bool:
    return header(msg, "Auto-Submitted").lower().startswith("auto-generated")


def dmarc_failed(msg: EmailMessage, authserv_id: str) -> bool | None:
    """What our own MTA said of DMARC: True (failed), False (passed), None (it said nothing, or no
    authserv-id is configured). Authentication-Results of other hosts are ignored: anyone can write one."""
    if not authserv_id:
        return None
    for value in all_headers(msg, "Authentication-Results"):
        text = " ".join(value.split())
        if text.split(";", 1)[0].strip().split(" ")[0].lower() != authserv_id.lower():
            continue
        found = re.search(r"\bdmarc=(\w+)", text, re.I)
        if found:
            return found.group(1).lower() != "pass"
    return None


class _Text(HTMLParser):
    BLOCKS = {"p", "div", "br", "tr", "li", "h1", "h2", "h3", "h4", "h5", "h6", "table", "blockquote", "pre", "hr"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skip = 0
        self.cells = 0  # cells of the row so far
        self.in_cell = 0  # open td/th: Outlook and Gmail wrap a cell's text in <p> or <div>

    def _block(self, tag):
        # A paragraph inside a cell is part of the cell's line, the row is the line.
        self.parts.append(" " if self.in_cell and tag in ("p", "div", "br") else "\n")

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style", "head", "title"):
            self.skip += 1
        elif tag in self.BLOCKS:
            self._block(tag)
        if tag in ("tr", "table"):
            self.cells = 0
        if tag == "li":
            self.parts.append("- ")
        elif tag in ("td", "th"):
            if self.cells:
                self.parts.append(" | ")  # a table's cells stay apart: "backup01 | nightly | failed"
            self.cells += 1
            self.in_cell += 1

    def handle_endtag(self, tag):
        if tag in ("script", "style", "head", "title"):
            self.skip = max(0, self.skip - 1)
        elif tag in self.BLOCKS:
            self._block(tag)
        if tag in ("td", "th"):
            self.in_cell = max(0, self.in_cell - 1)
        elif tag in ("tr", "table"):
            self.in_cell = 0

    def handle_data(self, data):
        if not self.skip:
            self.parts.append(data)


def html_to_text(html: str) -> str:
    """Readable text of an HTML body: tags dropped, blocks as lines, no scripts or styles."""
    parser = _Text()
    try:
        parser.feed(html)
        parser.close()
    except Exception:  # noqa: BLE001 - whatever was read so far is the text
        pass
    lines = [" ".join(line.split()) for line in "".join(parser.parts).splitlines()]
    text = "\n".join(lines)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


@dataclass
class File:
    name: str
    content: bytes
    claimed_type: str
    inline: bool = False  # shown in the text (a pasted screenshot, a signature's logo), not attached


@dataclass
class Content:
    text: str
    files: list[File] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # parts refused or unreadable, said to the sender


def content(msg: EmailMessage, *, max_file_bytes: int) -> Content:
    """The message's text (its plain part, else its HTML part as text) and every other part as a
    file, however deep the client nested it: Apple Mail's files inside an alternative, a pasted
    screenshot beside the HTML it shows in, the message inside an S/MIME or PGP signature. A text
    part that is not the body nor another form of it (Apple Mail's text after a file) is more
    text; a forwarded message (message/rfc822) is read as text with its files. A part that cannot
    be decoded is named in `problems`, never raised."""
    out = Content(text="")
    _read(msg, out, max_file_bytes, depth=0)
    out.text = safe_text(out.text).strip()
    out.files.sort(key=lambda f: f.inline)  # attached files first: a signature's logos never take their place
    return out


MAX_FORWARDS = 3  # a forwarded message inside a forwarded message inside one: deeper is a file unread
BODY_TYPES = ("text/plain", "text/html")
SIGNATURES = {"application/pkcs7-signature", "application/x-pkcs7-signature", "application/pgp-signature"}
# Charsets as mail clients mean them: WHATWG's reading (Latin-1 labels carry Windows-1252's quotes
# and euro sign); an undeclared or unknown one is tried as UTF-8, then Windows-1252.
CHARSETS = {"iso-8859-1": "cp1252", "latin1": "cp1252", "latin-1": "cp1252", "us-ascii": "", "ascii": "",
            "iso-8859-8-i": "iso-8859-8", "iso-8859-6-i": "iso-8859-6"}  # fmt: skip


def _read(msg: EmailMessage, out: Content, max_file_bytes: int, depth: int) -> None:
    try:
        body = msg.get_body(preferencelist=("plain", "html"))
    except Exception:  # noqa: BLE001
        body = None
    texts = []
    if body is not None:
        try:
            texts.append(_text(body))
            body = _placeholder_html(msg, body, texts)
        except Exception as exc:  # noqa: BLE001
            out.problems.append(f"the text could not be read ({type(exc).__name__})")
    try:
        # A message that is one part and not a text (a photo sent alone, a scanner's PDF) is its own file.
        leaves = list(_leaves(msg, None)) if msg.is_multipart() else ([(msg, None)] if body is None else [])
    except Exception:  # noqa: BLE001
        leaves, out.problems = [], [*out.problems, "the attachments could not be read"]
    twins = _alternatives_of(msg, body)
    n = 0
    for part, _ in leaves:
        if part is body or id(part) in twins or part.get_content_type() in SIGNATURES:
            continue
        n += 1
        if part.get_content_type() in BODY_TYPES and not part.get_filename() and not _attached(part):
            try:
                texts.append(_text(part))  # more of the body (Apple Mail's text after a file)
            except Exception:  # noqa: BLE001
                out.problems.append(f"“{_filename(part, n)}” could not be decoded")
            continue
        if part.get_content_type() == "message/rfc822" and depth < MAX_FORWARDS:
            inner = part.get_payload(0) if isinstance(part.get_payload(), list) else None
            if isinstance(inner, EmailMessage):
                forwarded = Content(text="")
                _read(inner, forwarded, max_file_bytes, depth + 1)
                texts.append(_forwarded(inner, forwarded.text))
                out.files += forwarded.files
                out.problems += forwarded.problems
                continue
        name = _filename(part, n)
        try:
            data = part.get_payload(decode=True) or b""
        except Exception:  # noqa: BLE001
            out.problems.append(f"“{name}” could not be decoded")
            continue
        if len(data) > max_file_bytes:
            out.problems.append(
                f"“{name}” is {len(data) // 1024} KB; the limit is {max_file_bytes // (1024 * 1024)} MB"
            )
            continue
        out.files.append(File(name, data, part.get_content_type(), inline=not _attached(part)))
    out.text = "\n\n".join(t.strip("\n") for t in texts if t.strip())


PLACEHOLDER_CHARS = 200  # a plain part shorter than this may only say "view this in HTML"


def _placeholder_html(msg: EmailMessage, body, texts: list[str]):
    """The HTML part in place of a plain part that is empty (a provider's webhook builds one from
    an absent text field) or only a placeholder ("This email requires an HTML capable client"):
    short, naming HTML or a browser, and most of its words missing from the HTML's text. Returns the
    body part read (texts[-1] replaced by the HTML's text then)."""
    plain = texts[-1]
    if body.get_content_subtype() != "plain" or len(plain.strip()) >= PLACEHOLDER_CHARS:
        return body
    if plain.strip() and not re.search(r"\bhtml\b|\bbrowser\b", plain, re.I):
        return body
    try:
        html = msg.get_body(preferencelist=("html",))
    except Exception:  # noqa: BLE001
        return body
    if html is None:
        return body
    html_text = _text(html)
    plain_words = set(re.findall(r"\w+", plain.lower()))
    html_words = set(re.findall(r"\w+", html_text.lower()))
    if html_text.strip() and (not plain_words or len(plain_words & html_words) * 2 < len(plain_words)):
        texts[-1] = html_text
        return html
    return body


def _leaves(part, parent):
    """(part, its parent) for every part that is not a multipart, depth first; a forwarded message
    is one leaf (read on its own)."""
    if part.get_content_maintype() == "multipart":
        for sub in part.iter_parts():
            yield from _leaves(sub, part)
    else:
        yield part, parent


def _alternatives_of(msg: EmailMessage, body) -> set[int]:
    """The text parts that are another form of the body: inside the multipart/alternative that
    holds it (Apple Mail's HTML pieces around its files); its files there are still files."""
    if body is None or not msg.is_multipart():
        return set()
    for alternative in msg.walk():
        if alternative.get_content_type() != "multipart/alternative":
            continue
        inside = list(_leaves(alternative, None))
        if any(p is body for p, _ in inside):
            return {id(p) for p, _ in inside if p.get_content_type() in BODY_TYPES and not p.get_filename()}
    return set()


def _attached(part) -> bool:
    try:
        return (part.get_content_disposition() or "") == "attachment"
    except Exception:  # noqa: BLE001
        return True


def _text(part) -> str:
    """A text part as text: its bytes read in its charset as mail clients mean it (CHARSETS), an
    HTML part as readable text."""
    data = part.get_payload(decode=True) or b""
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogateescape")
    declared = (part.get_content_charset() or "").strip().lower()
    text = None
    for name in (CHARSETS.get(declared, declared), "utf-8", "cp1252", "latin-1"):
        if not name:
            continue
        try:
            text = data.decode(name)
            break
        except (LookupError, UnicodeDecodeError):
            continue
    text = (text if text is not None else data.decode("latin-1")).replace("\r\n", "\n")
    return html_to_text(text) if part.get_content_subtype() == "html" else text


def _forwarded(inner: EmailMessage, text: str) -> str:
    """A forwarded message as its reader would see it in a mail client."""
    lines = ["---------- Forwarded message ----------"]
    for name in ("From", "Date", "Subject", "To"):
        value = header(inner, name)
        if value:
            lines.append(f"{name}: {value}")
    return "\n".join(lines) + "\n\n" + (text or "(The forwarded message had no text.)")


def _filename(part, n: int) -> str:
    try:
        name = part.get_filename() or ""
    except Exception:  # noqa: BLE001
        name = ""
    name = " ".join(safe_text(name).replace("/", "_").replace("\\", "_").split())[:200]
    return name if name.strip(".") else f"attachment-{n}"  # "." and ".." name no file
