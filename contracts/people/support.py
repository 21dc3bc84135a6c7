"""Designated contacts per contract: its **support contacts** may open tickets on it (Kaluari:
"designate one or more support contacts that are authorized to engage Support Services"), its
**notification contacts** (`Contract.contacts`) receive its notifications. Customer admins set both
on the contract's contacts page.

`support_contact_check` is the one rule of who may open a ticket, for every channel that files one
(the portal's form, the API, and the email channel): an active person of the contract's
organisation designated on the contract. A person who loses the right keeps the tickets they filed
(they still reply to them and close them) but opens no new one."""

from __future__ import annotations

from django.db import transaction
from django.db.models import QuerySet

from portal.core.audit import audit
from portal.core.related import among

from ..models import Contract, Organisation
from . import PeopleError
from .selectors import admins_of


class NotASupportContact(PeopleError):
    """Refused: the person may not open tickets on the contract; the message says whom to ask."""

    def __init__(self, message: str, admins: list):
        super().__init__(message, field="contract")
        self.admins = admins


def whom_to_ask(admins: list) -> str:
    if not admins:
        return "your organisation's admin, or us"
    return ", ".join(f"{a.get_full_name()} ({a.email})" for a in admins)


def support_contact_check(*, user, contract: Contract) -> None:
    """None when `user` may open tickets on `contract`; else NotASupportContact with why and whom to ask."""
    if (
        user.is_active
        and user.organisation_id == contract.organisation_id
        and among(contract, "support_contacts", user.pk)
    ):
        return
    admins = admins_of(organisation_id=contract.organisation_id)
    raise NotASupportContact(
        f"You are not a designated support contact of {contract.reference} ({contract.name}), so you cannot "
        f"open tickets on it. Your organisation's admins designate who may: ask {whom_to_ask(admins)}.",
        admins,
    )


def openable_contracts(*, user) -> QuerySet[Contract]:
    """The contracts `user` may open tickets on (the ticket form offers these only)."""
    if not (user.is_authenticated and user.is_active and user.organisation_id):
        return Contract.objects.none()
    # With its organisation: a ticket filed on it carries it into its emails (tickets.services.ticket_create).
    return Contract.objects.filter(organisation_id=user.organisation_id, support_contacts=user).select_related(
        "organisation"
    )


def default_contract_of(*, user, contracts: list[Contract]) -> Contract | None:
    """Of several contracts `user` may open tickets on, the organisation's default one (None when
    it is not among them): where an email to an address they share files, what the form proposes."""
    default_id = user.organisation.default_contract_id if user.organisation_id else None
    return next((c for c in contracts if c.pk == default_id), None)


@transaction.atomic
def default_contract_set(*, organisation: Organisation, contract: Contract | None, actor) -> None:
    """Make `contract` (one of the organisation's, or None) its default contract; audited."""
    org = Organisation.objects.select_for_update().get(pk=organisation.pk)
    if contract is not None and contract.organisation_id != org.pk:
        raise PeopleError("Choose one of your organisation's contracts.", "contract")
    before = Contract.objects.filter(pk=org.default_contract_id).first()
    if before == contract:
        return
    org.default_contract = organisation.default_contract = contract
    org.save(update_fields=["default_contract"])
    audit(
        actor=actor, action="organisation.default_contract_changed", target=org,
        before={"default_contract": before.reference if before else None},
        after={"default_contract": contract.reference if contract else None},
    )  # fmt: skip


def _emails(users) -> list[str]:
    return sorted(u.email for u in users)


@transaction.atomic
def contract_contacts_set(*, contract: Contract, support_contacts, notification_contacts, actor) -> None:
    """Designate who may open tickets and who is notified, from the organisation's active people
    (the designations of deactivated people are kept as they are). At least one support contact."""
    Contract.objects.select_for_update().filter(pk=contract.pk).first()
    support, notified = list(support_contacts), list(notification_contacts)
    if any(u.organisation_id != contract.organisation_id or not u.is_active for u in support + notified):
        raise PeopleError("Choose among your organisation's active people.")
    if not support:
        raise PeopleError("Designate at least one support contact: nobody could open tickets otherwise.", "support")
    before_support, before_notified = list(contract.support_contacts.all()), list(contract.contacts.all())
    keep_support = [u for u in before_support if not u.is_active]
    keep_notified = [u for u in before_notified if not u.is_active]
    contract.support_contacts.set(support + keep_support)
    contract.contacts.set(notified + keep_notified)
    before = {"support_contacts": _emails(before_support), "contacts": _emails(before_notified)}
    after = {"support_contacts": _emails(support + keep_support), "contacts": _emails(notified + keep_notified)}
    if before != after:
        changed = [k for k in before if before[k] != after[k]]
        audit(
            actor=actor, action="contract.contacts_changed", target=contract,
            before={k: before[k] for k in changed}, after={k: after[k] for k in changed},
        )  # fmt: skip
