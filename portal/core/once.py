"""A form that makes something makes it once, however often it is sent.

The form carries a one-time key (`OnceField`, hidden, new at each rendering of an empty form and
kept while the same form comes back with its errors); an API client sends its own in the
`Idempotency-Key` header (`api_key`). `submit_once` stores the key with the user
in the transaction that makes the thing: a second sending of the key (a double click, a browser
resending a slow request, the back button) waits for the first, then gets the address of what it
made instead of a second ticket with its own clocks, receipt and escalations. A first sending that
is refused or fails leaves no key behind: the form can be sent again."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta

from django import forms
from django.db import transaction
from django.utils import timezone

from portal.models import FormSubmission

KEPT = timedelta(days=1)


class OnceField(forms.UUIDField):
    widget = forms.HiddenInput

    def __init__(self, **kwargs):
        super().__init__(required=False, initial=uuid.uuid4, **kwargs)


def api_key(value: str | None) -> uuid.UUID | None:
    """The one-time key of an API request's `Idempotency-Key` header (any text of 1-255 characters,
    as the client chose it), or None without one. ValueError for an empty or longer one."""
    if value is None:
        return None
    if not 0 < len(value) <= 255:
        raise ValueError("An Idempotency-Key is 1 to 255 characters.")
    return uuid.uuid5(uuid.NAMESPACE_URL, f"idempotency-key:{value}")


def kept(*, user, key: uuid.UUID | None) -> str | None:
    """The address of what an earlier sending of `key` by `user` made (within KEPT), else None. An
    API retry is answered by it before its body is read again: the body may no longer be valid (its
    contract is another organisation's once the person moved), and the answer is the first's."""
    if key is None:
        return None
    found = FormSubmission.objects.filter(user=user, key=key, created_at__gte=timezone.now() - KEPT).exclude(url="")
    return found.values_list("url", flat=True).first()


def submit_once(*, user, key: uuid.UUID | None, make: Callable[[], str]) -> tuple[str, bool]:
    """(the address of what `make` made, True), or of what the first sending of `key` made and
    False. Without a key (a client that sends none), `make` runs."""
    if key is None:
        return make(), True
    now = timezone.now()
    with transaction.atomic():
        # Keys past KEPT are forgotten, anyone's: a key reused after that makes something anew.
        FormSubmission.objects.filter(created_at__lt=now - KEPT).delete()
        row, first = FormSubmission.objects.get_or_create(user=user, key=key, defaults={"created_at": now})
        if not first:
            return row.url, False
        row.url = make()
        row.save(update_fields=["url"])
    return row.url, True
