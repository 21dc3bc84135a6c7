"""The emails public subscribers get: one per subscriber and notice, to those following a service the
notice is about (or every service), each with its manage link as List-Unsubscribe and the one-click
POST (RFC 8058, portal.core.unsubscribe.one_click_headers). A subscriber whose mailbox already gets
the members' copy of the same notice is skipped: one copy per address."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from django.conf import settings
from django.db.models import Q
from django.urls import reverse

from portal.core.form_limits import address_key
from portal.core.outbox import Email
from portal.core.unsubscribe import one_click_headers
from portal.models import OutboxMessage

from ..models import StatusSubscriber
from .services import manage_url

LABEL = "Status page subscription"


def subscribers_for(service_ids: Iterable[int]) -> list[StatusSubscriber]:
    """Confirmed, not unsubscribed, following one of the services or every service, their services
    prefetched: two queries (the partial index status_subscriber_active), whatever the batch."""
    sids = set(service_ids)
    if not sids:
        return []
    active = StatusSubscriber.objects.filter(confirmed_at__isnull=False, unsubscribed_at__isnull=True)
    followers = active.filter(Q(all_services=True) | Q(services__in=sids)).distinct().order_by("pk")
    return list(followers.prefetch_related("services"))


def subscribers_sent(prefix: str) -> list[StatusSubscriber]:
    """The subscribers (still subscribed, their services prefetched) who were written an email of a
    notice whose key starts with `prefix` (subscriber_emails keys each `<notice key>:subscriber:<pk>`):
    those told of a window or an incident, whatever they follow now."""
    keys = OutboxMessage.objects.filter(key__startswith=prefix, key__contains=":subscriber:")
    ids = {int(k.rsplit(":", 1)[1]) for k in keys.values_list("key", flat=True)}
    active = StatusSubscriber.objects.filter(pk__in=ids, confirmed_at__isnull=False, unsubscribed_at__isnull=True)
    return list(active.order_by("pk").prefetch_related("services"))


def following(subscribers: Iterable[StatusSubscriber], service_ids: Iterable[int]) -> list[StatusSubscriber]:
    """Of subscribers_for() of a batch, those following one of these services (no query)."""
    sids = set(service_ids)
    return [s for s in subscribers if s.all_services or any(x.pk in sids for x in s.services.all())]


def addresses(emails: Iterable[Email]) -> set[str]:
    """The mailboxes a batch of emails goes to, as subscribers are matched against them."""
    return {address_key(e.to) for e in emails}


def subscriber_emails(
    *,
    subscribers: Iterable[StatusSubscriber],
    key: str,
    template: str,
    context: dict,
    skip: set[str] = frozenset(),
    thread: Callable[[StatusSubscriber], tuple[str, dict]] | None = None,
    context_for: Callable[[StatusSubscriber], dict] | None = None,
) -> list[Email]:
    """`key` is the notice's own (e.g. maintenance:<window>:r<rev>:<kind>); each email's is
    `<key>:subscriber:<pk>`, so that each is written once. `skip`: addresses() of the members' emails
    of the same notice. `thread`: a subscriber's Message-ID and threading headers, for a sender whose
    emails form a conversation (an incident's updates). `context_for`: what a subscriber's email says
    of its own (the services they follow among the notice's, and the impact on those)."""
    status_url = settings.PORTAL_BASE_URL + reverse("status")
    out = []
    for sub in subscribers:
        if address_key(sub.email) in skip:
            continue
        url = manage_url(sub)
        ctx = {**context, **(context_for(sub) if context_for else {}), "email": sub.email, "status_url": status_url, "manage_url": url,
               "unsubscribe_url": url, "unsubscribe_label": LABEL}  # fmt: skip
        message_id, headers = thread(sub) if thread else ("", {})
        out.append(Email(key=f"{key}:subscriber:{sub.pk}", to=sub.email, template=template, context=ctx,
                         headers={**headers, **one_click_headers(url)}, message_id=message_id))  # fmt: skip
    return out
