"""Who is emailed what: the one rule every customer-facing sender asks (docs/decisions.md,
"Who is emailed what").

A sender names the kind of its email and what it is about (the contract; the ticket's or claim's
owner and participants); `recipients` filters its candidates (usually every active member of the
organisation) and says of each whether the email is mandatory for them. An optional email carries a
one-click unsubscribe link (RFC 8058) that turns off exactly that kind for that person
(portal.core.unsubscribe); a mandatory one carries none.

- Mandatory: account emails (password resets, invitations); the receipt of a ticket one filed
  oneself; a breach of one's own P1 ticket; maintenance notices to a contract's designated contacts
  (the exclusion of maintenance downtime from uptime rests on the notice going out); the receipt,
  decision and re-judging of a claim one filed oneself.
- Otherwise the person's own choice for the kind, and without a choice the default: updates on
  one's own tickets (filed or taken part in) on, on the organisation's other tickets off; breaches
  and escalations on for the ticket's own people and the contract's designated contacts;
  maintenance and incidents on for every member (they use the services, and may turn them off
  unless designated); SLA changes and credits on for the designated contacts, off for the others.
  A choice made is for every contract of the organisation: "on" brings a member who is not a
  designated contact the kind for all of them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from django.db import models
from django.db.models import Prefetch

from portal.models import NotificationPreference


class Kind(models.TextChoices):
    """What an email is, as its sender names it."""

    ACCOUNT = "account", "Account (password resets, invitations)"
    TICKET_FILED = "ticket_filed", "Receipt of a filed ticket"
    TICKET = "ticket", "Ticket update"
    BREACH = "breach", "SLA breach of a ticket"
    ESCALATION = "escalation", "Escalation of a ticket"
    MAINTENANCE = "maintenance", "Maintenance"
    INCIDENT = "incident", "Incidents"
    SLA_CHANGE = "sla_change", "SLA changes"
    CREDIT = "credit", "Credits and claims"
    CONTACT_REVIEW = "contact_review", "Contact reviews"


class Choice(models.TextChoices):
    """What a person chooses on the preferences page (a NotificationPreference's kind)."""

    TICKET_MINE = "ticket_mine", "Updates on my tickets"
    TICKET_ORG = "ticket_org", "Updates on every ticket of my organisation"
    BREACH = "breach", "Breaches and escalations"
    MAINTENANCE = "maintenance", "Maintenance"
    INCIDENT = "incident", "Incidents"
    SLA_CHANGE = "sla_change", "SLA changes"
    CREDIT = "credit", "Credits and claims"
    CONTACT_REVIEW = "contact_review", "Contact reviews"


# What each choice covers and what of it cannot be turned off (the preferences page shows both).
EXPLAINED = {
    Choice.TICKET_MINE: (
        "Replies, status changes and escalation requests on tickets you filed or wrote on.",
        "The receipt of a ticket you file yourself always comes.",
    ),
    Choice.TICKET_ORG: ("The same for every other ticket of your organisation.", ""),
    Choice.BREACH: (
        "A ticket that missed its SLA deadline, and each move up the escalation ladder (with the "
        "channel to use now), for your own tickets and those of contracts you are a designated contact of.",
        "A breach of a P1 ticket you filed yourself always comes.",
    ),
    Choice.MAINTENANCE: (
        "Notices, reminders and cancellations of scheduled maintenance of your contracts' services.",
        "A designated contact of a contract always gets its maintenance emails: the exclusion of "
        "maintenance downtime from your uptime rests on that notice reaching you.",
    ),
    Choice.INCIDENT: ("Updates on incidents that affect your contracts' services.", ""),
    Choice.SLA_CHANGE: ("A new version of your contract's SLA terms, with what it changes.", ""),
    Choice.CREDIT: (
        "A month's uptime figure corrected, invitations to claim, and claims received and decided.",
        "The receipt and the decision of a claim you filed yourself always come.",
    ),
    Choice.CONTACT_REVIEW: ("The quarterly request to customer admins to review the people and contacts.", ""),
}

# The choice that governs each kind (TICKET and TICKET_FILED: by the person's part in the ticket).
GOVERNED_BY = {
    Kind.BREACH: Choice.BREACH,
    Kind.ESCALATION: Choice.BREACH,
    Kind.MAINTENANCE: Choice.MAINTENANCE,
    Kind.INCIDENT: Choice.INCIDENT,
    Kind.SLA_CHANGE: Choice.SLA_CHANGE,
    Kind.CREDIT: Choice.CREDIT,
    Kind.CONTACT_REVIEW: Choice.CONTACT_REVIEW,
}
# What every member gets by default (what happens to the services they use); the other kinds about
# a contract (SLA changes, credits) by default reach its designated contacts only (_default).
EVERY_MEMBER_CHOICES = {Choice.MAINTENANCE, Choice.INCIDENT}


@dataclass(frozen=True)
class About:
    """What an email is about, as far as the rule needs it. `contract` is read for its designated
    contacts (`contract.contacts.all()`: prefetch it in a batch), unless `contact_ids` names them
    (a sender that read a batch's contacts as ids); `owner_id` is the ticket's filer or the claim's
    submitter; `participant_ids` the customers who wrote on the ticket or asked to escalate it; `p1`
    whether the ticket is a P1 (a production incident)."""

    organisation_id: int | None = None
    contract: object | None = None
    owner_id: int | None = None
    participant_ids: frozenset = field(default_factory=frozenset)
    p1: bool = False
    contact_ids: frozenset | None = None

    def designated(self) -> set[int]:
        if self.contact_ids is not None:
            return set(self.contact_ids)
        return {u.pk for u in self.contract.contacts.all()} if self.contract is not None else set()


@dataclass(frozen=True)
class Recipient:
    user: object
    kind: Kind
    mandatory: bool

    @property
    def choice(self) -> Choice | None:
        """The choice an unsubscribe link turns off (None for a mandatory email)."""
        return None if self.mandatory else self._choice

    _choice: Choice | None = None


def _mandatory(user, kind: Kind, about: About, designated: set[int]) -> bool:
    own = about.owner_id is not None and user.pk == about.owner_id
    return (
        kind == Kind.ACCOUNT
        or (kind == Kind.TICKET_FILED and own)
        or (kind == Kind.BREACH and own and about.p1)
        or (kind == Kind.MAINTENANCE and user.pk in designated)
        or (kind == Kind.CREDIT and own)
    )


def _default(choice: Choice, *, involved: bool, designated: bool) -> bool:
    """Whether a person who made no choice gets what `choice` governs: `involved` in the ticket
    (filed it, wrote on it, asked to escalate it), `designated` a contact of the contract."""
    if choice == Choice.TICKET_ORG:
        return False
    if choice == Choice.BREACH:
        return involved or designated
    if choice in (Choice.TICKET_MINE, Choice.CONTACT_REVIEW) or choice in EVERY_MEMBER_CHOICES:
        return True
    return designated


def _choice_and_default(user, kind: Kind, about: About, designated: set[int]) -> tuple[Choice, bool]:
    involved = user.pk == about.owner_id or user.pk in about.participant_ids
    if kind in (Kind.TICKET, Kind.TICKET_FILED):
        choice = Choice.TICKET_MINE if involved else Choice.TICKET_ORG
    else:
        choice = GOVERNED_BY[kind]
    return choice, _default(choice, involved=involved, designated=user.pk in designated)


class Preferences:
    """People's choices, loaded once for a batch of candidates (one query per CHUNK people)."""

    CHUNK = 10_000

    def __init__(self):
        self._chosen: dict[tuple[int, str], bool] = {}
        self._loaded: set[int] = set()

    def load(self, user_ids: Iterable[int]) -> None:
        wanted = set(user_ids) - self._loaded
        if not wanted:
            return
        ids = sorted(wanted)
        for start in range(0, len(ids), self.CHUNK):  # an incident's 30,000 people: a few queries
            rows = NotificationPreference.objects.filter(user_id__in=ids[start : start + self.CHUNK])
            for user_id, kind, enabled in rows.values_list("user_id", "kind", "enabled"):
                self._chosen[(user_id, kind)] = enabled
        self._loaded |= wanted

    def chosen(self, user_id: int, choice: Choice) -> bool | None:
        if user_id not in self._loaded:
            self.load([user_id])
        return self._chosen.get((user_id, choice))


def recipients(
    kind: Kind, *, users: Iterable, about: About | None = None, prefs: Preferences | None = None
) -> list[Recipient]:
    """Of `users` (candidates; each once), those who get an email of `kind` about `about`, in order:
    active, of the organisation the email is about (when it is about one), and mandatory or chosen
    (or on by default)."""
    about = about or About()
    prefs = prefs or Preferences()
    seen, people = set(), []
    for u in users:
        if u.pk in seen or not u.is_active:
            continue
        if about.organisation_id is not None and u.organisation_id != about.organisation_id:
            continue
        seen.add(u.pk)
        people.append(u)
    if kind == Kind.ACCOUNT:
        return [Recipient(u, kind, True) for u in people]
    designated = about.designated()
    prefs.load(u.pk for u in people)
    chosen = []
    for u in people:
        if _mandatory(u, kind, about, designated):
            chosen.append(Recipient(u, kind, True))
            continue
        choice, default = _choice_and_default(u, kind, about, designated)
        wanted = prefs.chosen(u.pk, choice)
        if wanted if wanted is not None else default:
            chosen.append(Recipient(u, kind, False, choice))
    return chosen


def active_members() -> models.QuerySet:
    """Active people by id: an organisation's members as candidates of every per-contract email."""
    from django.contrib.auth import get_user_model

    return get_user_model().objects.filter(is_active=True).order_by("id")


def members_prefetch() -> Prefetch:
    """Prefetch a contract's organisation's active members (`contract.organisation.users`), the
    candidates of every per-contract email (for_contract)."""
    return Prefetch("organisation__users", queryset=active_members())


def for_contract(
    kind: Kind, contract, *, prefs: Preferences | None = None, owner_id: int | None = None
) -> list[Recipient]:
    """Who of the contract's organisation gets an email of `kind` about it (its designated contacts
    and organisation's members prefetched: members_prefetch, "contacts")."""
    about = About(organisation_id=contract.organisation_id, contract=contract, owner_id=owner_id)
    return recipients(kind, users=contract.organisation.users.all(), about=about, prefs=prefs)


def may_email(user, kind: Kind, contract=None, *, about: About | None = None) -> bool:
    """Whether `user` gets an email of `kind` (about `contract`, or about what `about` says)."""
    if about is None:
        about = About(organisation_id=getattr(contract, "organisation_id", None), contract=contract)
    return bool(recipients(kind, users=[user], about=about))


def effective(user, choice: Choice, prefs: Preferences, *, designated: bool) -> tuple[bool, bool]:
    """(on, chosen) for the preferences page: the person's choice, else the default as it applies
    to them (`designated`: a designated contact of one of their organisation's contracts)."""
    wanted = prefs.chosen(user.pk, choice)
    if wanted is not None:
        return wanted, True
    # The page speaks of one's own tickets: "Breaches" on means those of the tickets one is in.
    return _default(choice, involved=True, designated=designated), False
