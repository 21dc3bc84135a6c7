"""DKIM: every email the outbox sends is signed when a private key is configured (DKIM_PRIVATE_KEY,
the PEM text, or DKIM_PRIVATE_KEY_FILE), with DKIM_SELECTOR and DKIM_DOMAIN (dkimpy, RFC 6376).

The signature is made where the message's bytes are made (`SignedEmail.message()`), so whatever
backend sends it (SMTP, the .eml files) sends the bytes that were signed. Canonicalisation is
relaxed/relaxed: a relay that refolds a header or trims trailing spaces does not break it. The
signed headers are dkimpy's recommended set plus List-Unsubscribe-Post (RFC 8058 requires the
one-click headers to be signed) and Auto-Submitted; From is signed twice so none can be added.

The message's header lines are written by `SHORT_LINES`: the email package's compat32 folding
(what Django's messages use), with a line that needs no folding written as it is.
"""

from __future__ import annotations

import re
from email.policy import Compat32
from functools import lru_cache
from pathlib import Path

import dkim
from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.core.mail.message import SafeMIMEMultipart, SafeMIMEText

EXTRA_SIGNED = (b"list-unsubscribe-post", b"auto-submitted")


@lru_cache(maxsize=4)
def _key(text: str, path: str) -> bytes | None:
    if text.strip():
        return text.strip().encode()
    if path:
        return Path(path).read_bytes()
    return None


def signing_key() -> bytes | None:
    """The configured private key (PEM), or None: emails go out unsigned. A key file is read once
    per process: restart the workers after rotating it (publish the new selector first)."""
    return _key(settings.DKIM_PRIVATE_KEY, settings.DKIM_PRIVATE_KEY_FILE)


def dkim_header(data: bytes, key: bytes) -> bytes:
    """The DKIM-Signature header line (with its CRLF) for a message's bytes."""
    signer = dkim.DKIM(data)
    signer.should_sign.update(EXTRA_SIGNED)
    return signer.sign(
        settings.DKIM_SELECTOR.encode(), settings.DKIM_DOMAIN.encode(), key, canonicalize=(b"relaxed", b"relaxed")
    )


_PRINTABLE_ASCII = re.compile(r"[ -~]*")


class _ShortLines(Compat32):
    """compat32, but a header whose line fits (printable ASCII, at most max_line_length with its
    name) is written as it is: what compat32's Header.encode() returns for it, at a fraction of
    the cost (bench/RESULTS.md, session 8). Any other header is folded by compat32 itself."""

    def _fold(self, name, value, sanitize):
        if (
            isinstance(value, str)
            and len(name) + 2 + len(value) <= (self.max_line_length or 0)
            and _PRINTABLE_ASCII.fullmatch(value)
        ):
            return f"{name}: {value}{self.linesep}"
        return super()._fold(name, value, sanitize)


SHORT_LINES = _ShortLines()


class SignedEmail(EmailMultiAlternatives):
    """An email whose MIME message carries a DKIM signature when a key is configured."""

    def message(self, *args, **kwargs) -> SafeMIMEText | SafeMIMEMultipart:
        msg = super().message(*args, **kwargs)
        msg.policy = SHORT_LINES  # the generator writes every part with it
        key = signing_key()
        if key is None:
            return msg
        name, _, value = dkim_header(msg.as_bytes(linesep="\r\n"), key).decode().partition(":")
        # The signature goes first (RFC 6376 5.6); its value's folding is undone by relaxed canonicalisation.
        msg._headers.insert(0, (name, value.replace("\r\n", "").strip()))  # noqa: SLF001 - email.message's list
        return msg
