"""The audit log: one call per action that matters, in the transaction of the change. Where the
request came from is taken from the request being served (AuditContextMiddleware)."""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from portal.core.client_ip import client_ip
from portal.domain.formats import duration
from portal.models import AuditEntry

_client_ip: contextvars.ContextVar[str | None] = contextvars.ContextVar("audit_client_ip", default=None)
_request: contextvars.ContextVar = contextvars.ContextVar("audit_request", default=None)


class AuditContextMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        # The client's address as the login lockout reads it: behind the trusted proxies, from
        # X-Forwarded-For (portal.core.client_ip).
        token = _client_ip.set(client_ip(request))
        request_token = _request.set(request)
        try:
            return self.get_response(request)
        finally:
            _request.reset(request_token)
            _client_ip.reset(token)


def current_actor():
    """Who is signed in to the request being served (None outside a request, or anonymous): the
    actor of changes audited where no caller names one (portal.core.staff_access's signals)."""
    user = getattr(_request.get(), "user", None)
    return user if getattr(user, "is_authenticated", False) else None


def plain(value):
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, timedelta) and not value % timedelta(minutes=1):
        return duration(value)  # "36 h" as the SLAs write it, not "1 day, 12:00:00"
    return str(value)  # Decimal, datetime, model instances: their text


def audit(
    *, actor, action: str, target, before: dict | None = None, after: dict | None = None, now: datetime | None = None
) -> AuditEntry:
    entry = audit_entry(actor=actor, action=action, target=target, before=before, after=after, now=now)
    entry.save()
    return entry


def audit_entry(
    *, actor, action: str, target, before: dict | None = None, after: dict | None = None, now: datetime | None = None
) -> AuditEntry:
    """The entry audit() writes, unsaved: for changes written in bulk, whose entries are written
    with them in one `AuditEntry.objects.bulk_create` (the Alertmanager webhook's outages)."""
    return AuditEntry(
        at=now or timezone.now(),
        actor=actor if getattr(actor, "pk", None) else None,
        actor_email=getattr(actor, "email", "") or "",
        ip=_client_ip.get(),
        action=action,
        target_type=target._meta.label_lower,
        target_id=str(target.pk),
        target_repr=str(target)[:300],
        before=plain(before or {}),
        after=plain(after or {}),
    )


def row_state(obj) -> dict:
    """A row's fields and many-to-many relations as the audit log shows them: a relation by its text
    (a contact's address, a service's name), a figure as written."""
    state = {}
    for field in obj._meta.concrete_fields:
        if not field.primary_key:
            state[field.name] = getattr(obj, field.name if field.is_relation else field.attname)
    for field in obj._meta.many_to_many:
        state[field.name] = sorted(str(o) for o in getattr(obj, field.name).all()) if obj.pk else []
    return plain(state)


@contextmanager
def audited_edit(*, target, actor, action: str, state: Callable[[object], dict] = row_state) -> Iterator[None]:
    """Around the saving of a row and what belongs to it (its many-to-many relations, an admin's
    inlines): one entry `<action>.created` or `<action>.changed` with what changed, before and after
    as stored (read back, so that 150000 and 150000.00 are no change), in the saving's transaction;
    none if nothing changed or the saving failed.

        with audited_edit(target=contract, actor=user, action="contract"):
            ...  # save the contract and its relations
    """
    with transaction.atomic():
        created, rows = target.pk is None, type(target)._default_manager
        before = {} if created else state(rows.get(pk=target.pk))
        yield
        after = state(rows.get(pk=target.pk))
        changed = [k for k in after if before.get(k) != after[k]]
        if changed:
            audit(
                actor=actor, action=f"{action}.{'created' if created else 'changed'}", target=target,
                before={k: before[k] for k in changed if k in before}, after={k: after[k] for k in changed},
            )  # fmt: skip


def audit_deleted(*, actor, action: str, target, state: Callable[[object], dict] = row_state) -> AuditEntry:
    """Before the row is deleted, in the deletion's transaction: `<action>.deleted` with what it was."""
    return audit(actor=actor, action=f"{action}.deleted", target=target, before=state(target))
