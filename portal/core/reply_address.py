"""Reply addresses: a plus-address that names what an email is about and proves we made it.

`support+t123.<token>@kaluari.com` names ticket 123 (a vulnerability report's is `security+r17.<token>@`).
The token is an HMAC under the SECRET_KEY of the number and whatever the caller binds to it (a
ticket's: the recipient's address), 20 base32 letters (100 bits), lower case since mail systems may
fold case: nobody can make one up, and one leaked address does not open another ticket. It is read
back under SECRET_KEY_FALLBACKS too, so rotating the key keeps old addresses working for a while.
tickets.security_mail and tickets.notify (ticket emails) use this one scheme.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from email.utils import getaddresses

from django.conf import settings
from django.utils.crypto import constant_time_compare, salted_hmac

TOKEN_LENGTH = 20
_ADDRESS = re.compile(
    r"(?P<local>[^@+\s]+)\+(?P<tag>[a-z])(?P<number>[0-9]{1,12})\.(?P<token>[a-z2-7]+)@(?P<domain>[^@\s]+)", re.I
)


def token(*, salt: str, value: str, secret: str | None = None) -> str:
    digest = salted_hmac(salt, value, secret=secret or settings.SECRET_KEY, algorithm="sha256").digest()
    return base64.b32encode(digest).decode("ascii").lower()[:TOKEN_LENGTH]


def make(*, mailbox: str, tag: str, number: int, salt: str, value: str) -> str:
    """The reply address of `number` under `mailbox` (e.g. support@kaluari.com -> support+t123.<token>@kaluari.com)."""
    local, _, domain = mailbox.strip().lower().rpartition("@")
    return f"{local}+{tag}{number}.{token(salt=salt, value=value)}@{domain}"


@dataclass(frozen=True)
class Parsed:
    local: str
    tag: str
    number: int
    token: str
    domain: str

    @property
    def mailbox(self) -> str:
        return f"{self.local}@{self.domain}"


def parse(address: str) -> Parsed | None:
    """The parts of a reply address (as it comes: "Name <addr>" too), or None when it is none."""
    bare = [addr for _, addr in getaddresses([address]) if addr]
    found = _ADDRESS.fullmatch(bare[0]) if len(bare) == 1 else None
    if found is None:
        return None
    return Parsed(
        found["local"].lower(),
        found["tag"].lower(),
        int(found["number"]),
        found["token"].lower(),
        found["domain"].lower(),
    )


def verify(parsed: Parsed, *, salt: str, value: str) -> bool:
    """Whether the address's token is ours for `value`, under the current key or a fallback."""
    for secret in [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]:
        if constant_time_compare(parsed.token, token(salt=salt, value=value, secret=secret)):
            return True
    return False
