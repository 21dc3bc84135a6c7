"""Contact information kept up to date (Klart: "maintain up-to-date contact information"): each
quarter every organisation's active customer admins get one email asking them to review its people
and contacts, with the list; "Confirm reviewed" records when (audited), which staff see in the
admin. The organisation's own details are kept by its admins too.

The sweep (beat, hourly) is safe to run twice: an organisation is asked once per quarter (UTC), each
email's key names the organisation, the quarter and the recipient, and the quarter asked is stored
on the organisation in the same transaction."""

from __future__ import annotations

from datetime import UTC, datetime

from django.conf import settings
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from portal.core.audit import audit
from portal.core.notify_rules import About, Kind, recipients
from portal.core.outbox import outbox_enqueue_many
from portal.core.roles import CustomerRole
from portal.core.unsubscribe import email_to

from ..models import Organisation
from . import PeopleError
from .selectors import people_of

DETAILS = ("name", "address", "phone")


def quarter_of(moment: datetime) -> str:
    """ "2026Q4": the calendar quarter of a moment, in UTC."""
    utc = moment.astimezone(UTC)
    return f"{utc.year}Q{(utc.month - 1) // 3 + 1}"


def review_summary(organisation: Organisation) -> dict:
    """Its people and each contract's designated contacts, as plain values (the email's list and the page's)."""
    people = list(people_of(organisation_id=organisation.pk))
    contracts = []
    for contract in organisation.contracts.prefetch_related("support_contacts", "contacts").order_by("reference"):
        contracts.append({
            "reference": contract.reference, "name": contract.name,
            "support": [u.get_full_name() for u in contract.support_contacts.all() if u.is_active],
            "notified": [u.get_full_name() for u in contract.contacts.all() if u.is_active],
        })  # fmt: skip
    return {
        "people": [
            {
                "name": p.get_full_name(),
                "email": p.email,
                "phone": p.phone,
                "timezone": p.timezone,
                "role": "Admin" if p.customer_role == CustomerRole.ADMIN else "Member",
                "active": p.is_active,
            }
            for p in people
        ],  # fmt: skip
        "contracts": contracts,
    }


def contacts_review_request_due(*, now: datetime | None = None) -> int:
    """Ask the organisations not asked yet this quarter; returns how many emails were written."""
    now = now or timezone.now()
    quarter = quarter_of(now)
    written = 0
    for pk in Organisation.objects.exclude(review_requested_for=quarter).values_list("pk", flat=True):
        written += _request_one(pk, quarter, now)
    return written


@transaction.atomic
def _request_one(pk: int, quarter: str, now: datetime) -> int:
    organisation = Organisation.objects.select_for_update().filter(pk=pk).exclude(review_requested_for=quarter).first()
    if organisation is None:
        return 0  # another sweep had it
    summary = review_summary(organisation)
    admins = people_of(organisation_id=pk).filter(customer_role=CustomerRole.ADMIN, is_active=True)
    url = settings.PORTAL_BASE_URL + reverse("organisation-review")
    # Each admin who has not turned contact reviews off (portal.core.notify_rules).
    emails = [
        email_to(
            r,
            key=f"contacts-review:{pk}:{quarter}:user:{r.user.pk}",
            template="contacts_review",
            context={
                "organisation_name": organisation.name,
                "quarter": quarter,
                "review_url": url,
                "recipient_name": r.user.get_full_name(),
                **summary,
            },
        )  # fmt: skip
        for r in recipients(Kind.CONTACT_REVIEW, users=admins, about=About(organisation_id=pk))
    ]
    organisation.review_requested_for = quarter
    organisation.save(update_fields=["review_requested_for"])
    return outbox_enqueue_many(emails=emails, now=now)


def contacts_review_confirm(*, organisation: Organisation, actor, now: datetime | None = None) -> None:
    now = now or timezone.now()
    before = organisation.contacts_reviewed_at
    Organisation.objects.filter(pk=organisation.pk).update(contacts_reviewed_at=now, contacts_reviewed_by=actor)
    organisation.contacts_reviewed_at, organisation.contacts_reviewed_by = now, actor
    audit(actor=actor, action="organisation.contacts_reviewed", target=organisation, now=now,
          before={"contacts_reviewed_at": before}, after={"contacts_reviewed_at": now})  # fmt: skip


@transaction.atomic
def organisation_details_set(*, organisation: Organisation, actor, **details) -> None:
    """Its name, address and phone, as its admins keep them (audited). The name stays unique."""
    details = {k: str(v).strip() for k, v in details.items() if k in DETAILS}
    if not details.get("name", organisation.name):
        raise PeopleError("Enter the organisation's name.", field="name")
    if (
        "name" in details
        and Organisation.objects.filter(name__iexact=details["name"]).exclude(pk=organisation.pk).exists()
    ):
        raise PeopleError("Another organisation has this name: ask us if it is yours.", field="name")
    before = {k: getattr(organisation, k) for k in details}
    changed = {k: v for k, v in details.items() if before[k] != v}
    if not changed:
        return
    for k, v in changed.items():
        setattr(organisation, k, v)
    organisation.save(update_fields=list(changed))
    audit(actor=actor, action="organisation.details_changed", target=organisation,
          before={k: before[k] for k in changed}, after=changed)  # fmt: skip
