"""The inbound mailbox's address, read from one URL as django-environ reads a database's:
`imap://user:password@host:port/Folder` (plain IMAP, for a server on the same host or network) or
`imaps://...` (IMAP over TLS, the certificate checked). The user and password are URL-decoded, so
a password with `@`, `:` or `/` is written `%40`, `%3A`, `%2F`; the folder defaults to INBOX."""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

DEFAULT_PORTS = {"imap": 143, "imaps": 993}


def imap_url(url: str) -> dict | None:
    """{"SSL", "HOST", "PORT", "USER", "PASSWORD", "FOLDER"}, or None for an empty URL (no
    mailbox). ValueError names what is wrong."""
    if not url:
        return None
    parts = urlsplit(url)
    if parts.scheme not in DEFAULT_PORTS:
        raise ValueError(f"an IMAP URL starts with imap:// or imaps:// (got {parts.scheme or 'none'}://)")
    if not parts.hostname or parts.username is None or parts.password is None:
        raise ValueError("an IMAP URL names the user, the password and the host: imaps://user:password@host/INBOX")
    try:
        port = parts.port or DEFAULT_PORTS[parts.scheme]
    except ValueError as exc:  # a port that is not a number, or out of range
        raise ValueError(f"the IMAP URL's port is not a port: {exc}") from None
    return {
        "SSL": parts.scheme == "imaps",
        "HOST": parts.hostname,
        "PORT": port,
        "USER": unquote(parts.username),
        "PASSWORD": unquote(parts.password),
        "FOLDER": unquote(parts.path.lstrip("/")) or "INBOX",
    }
