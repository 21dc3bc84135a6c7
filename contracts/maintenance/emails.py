"""The emails of a maintenance notice, reminder or cancellation to a contract's contacts: one outbox
row per contact, keyed maintenance:<window>:r<revision>:<kind>:contract:<contract>:user:<user>, so
that each goes out once."""

from __future__ import annotations

from portal.core.outbox import Email

from ..models import Contract
from .judging import DEFAULT_NOTICE, Kind, service_ids

TEMPLATES = {
    Kind.ANNOUNCE: "maintenance_notice",
    Kind.UPDATE: "maintenance_notice",
    Kind.REMINDER: "maintenance_reminder",
    Kind.CANCEL: "maintenance_cancelled",
}


def _contacts(contract: Contract) -> list:
    return [u for u in contract.contacts.all() if u.is_active and u.organisation_id == contract.organisation_id]


def notice_emails(
    window, contract, kind: str, version, *, short_notice: bool = False, affected: bool = True
) -> list[Email]:
    csids = service_ids(contract)
    ctx = {
        "window": window,
        "contract": contract,
        "kind": kind,
        "tz": version.timezone if version else "UTC",
        "notice": version.maintenance_notice if version else DEFAULT_NOTICE,
        "services": [s for s in window.services.all() if s.pk in csids] or list(window.services.all()),
        "short_notice": short_notice,
        "affected": affected,
    }
    prefix = f"maintenance:{window.pk}:r{window.revision}:{kind}:contract:{contract.pk}"
    return [
        Email(key=f"{prefix}:user:{u.pk}", to=u.email, template=TEMPLATES[kind], context={**ctx, "recipient": u})
        for u in _contacts(contract)
    ]
