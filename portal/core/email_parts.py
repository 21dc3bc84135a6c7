"""Attachments of outbox emails: named renderers that an app registers (contracts: a maintenance
window's .ics) and a row names (`OutboxMessage.attachments`). A row's attachments are rendered at
every send from its frozen context and the moment it was written, so a retry sends the same bytes;
they are not stored (a calendar file per person and notice would double the outbox).

A renderer takes (context, written_at) and returns (filename, content, mimetype). The ground names
no app: each registers its renderers in its AppConfig.ready().
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

Rendered = tuple[str, bytes, str]
Renderer = Callable[[dict, datetime], Rendered]
_RENDERERS: dict[str, Renderer] = {}


def register_attachment(name: str, renderer: Renderer) -> None:
    _RENDERERS[name] = renderer


def render_attachments(names, context: dict, written_at: datetime) -> list[Rendered]:
    """The attachments a row names, rendered; an unknown name is an error (the row fails, says why)."""
    out = []
    for name in names or ():
        try:
            renderer = _RENDERERS[name]
        except KeyError:
            raise LookupError(f"No attachment renderer named {name!r} is registered.") from None
        out.append(renderer(context, written_at))
    return out
