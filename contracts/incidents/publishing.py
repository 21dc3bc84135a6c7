"""Publishing an incident update: `update_publish`, the one function that publishes an update and
sends what it sends (customers' emails through the outbox, the `incident.updated` webhook). Every
way an update goes out (staff publishing, posting, the delay's sweep) ends here; senders to other
audiences (the status page's subscribers) belong here too, so that a person is told once."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet
from django.urls import reverse
from django.utils import timezone

from portal.core.notify_rules import About, Kind, Preferences, active_members, recipients
from portal.core.outbox import Email, outbox_enqueue_many
from portal.core.unsubscribe import email_to
from portal.core.webhooks import HookEvent, webhooks_emit
from portal.models import WebhookEvent

from ..models import Contract, Incident, IncidentUpdate
from ..outage_reach import contracts_reached
from ..selectors import Versions, running_at
from ..subscribers.emails import addresses, following, subscriber_emails, subscribers_for, subscribers_sent
from . import mail

TEMPLATE = "incident_update"


def affected_contracts(incident: Incident, now: datetime):
    """The contracts running at `now`, on their own calendar date (contracts.selectors.running_at),
    that the incident's outage affects (contracts.outage_reach)."""
    return running_at(contracts_reached(incident.outage), now).order_by("pk")


def incident_url(incident: Incident) -> str:
    return reverse("incident-detail", args=[incident.pk])


@dataclass(frozen=True)
class Affected:
    """The affected contracts as an update's emails read them, in four queries whatever their
    number: the contracts with their organisations, their designated contacts' and services' ids,
    and their organisations' active members (the people emailed)."""

    contracts: list[Contract]
    contact_ids: dict[int, frozenset[int]]  # by contract
    service_ids: dict[int, frozenset[int]]  # by contract
    members: dict[int, list]  # by organisation, by id (notify_rules.active_members)

    @classmethod
    def read(cls, contracts: QuerySet) -> Affected:
        def ids_by_contract(through, other: str) -> dict[int, frozenset[int]]:
            pairs = defaultdict(set)
            rows = through.objects.filter(contract__in=contracts).values_list("contract_id", f"{other}_id")
            for contract_id, other_id in rows:
                pairs[contract_id].add(other_id)
            return {k: frozenset(v) for k, v in pairs.items()}

        rows = list(contracts.select_related("organisation"))
        organisations = {c.organisation_id: c.organisation for c in rows}
        people = defaultdict(list)
        for u in active_members().filter(organisation__in=contracts.values("organisation_id")):
            u.organisation = organisations[u.organisation_id]  # one instance each: frozen once (portal.core.snapshot)
            people[u.organisation_id].append(u)
        return cls(
            contracts=rows,
            contact_ids=ids_by_contract(Contract.contacts.through, "user"),
            service_ids=ids_by_contract(Contract.services.through, "service"),
            members=dict(people),
        )

    def organisation_ids(self) -> list[int]:
        return sorted({c.organisation_id for c in self.contracts})

    def services_of(self, organisation_id: int, services: list) -> list:
        """Of `services` (the outage's), those the organisation's affected contracts cover."""
        covered = set().union(*(self.service_ids.get(c.pk, ()) for c in self.contracts
                                if c.organisation_id == organisation_id))  # fmt: skip
        return [s for s in services if s.pk in covered] or services


def _about(incident: Incident, update: IncidentUpdate) -> dict:
    """What every member's email of the update says alike, built once (one reverse() of its link)."""
    return {
        "incident": {"pk": incident.pk, "title": incident.title, "impact": incident.get_impact_display(),
                     "started_at": incident.outage.starts_at, "url": incident_url(incident)},
        "update": {"number": update.number, "status": update.get_status_display(), "body": update.body,
                   "at": update.published_at, "resolved": update.status == Incident.Status.RESOLVED},
    }  # fmt: skip


def update_emails(incident: Incident, update: IncidentUpdate, affected: Affected) -> list[Email]:
    """One email per person the rule lets through (notify_rules, Kind.INCIDENT), keyed by update and
    person: a person on two affected contracts gets one, about the first."""
    prefs, seen, emails = Preferences(), set(), []
    all_services = list(incident.outage.services.all())
    versions = Versions({c.sla_id for c in affected.contracts})
    prefs.load(u.pk for people in affected.members.values() for u in people)  # not one query per contract
    about = _about(incident, update)
    for contract in affected.contracts:
        version = versions.shown(contract.sla_id, update.published_at)
        covered = affected.service_ids.get(contract.pk, frozenset())
        services = [s for s in all_services if s.pk in covered] or all_services
        impact = incident.outage.impact_on(s.pk for s in services)  # of this contract's services, not the worst
        ctx = {
            "tz": version.timezone if version else "UTC",  # the contract's timezone, as every email about it
            **about,
            "incident": {**about["incident"], "impact": impact.label},
            "services": [s.name for s in services],
            "contract": {"reference": contract.reference, "name": contract.name},
        }
        org, contacts = contract.organisation_id, affected.contact_ids.get(contract.pk, frozenset())
        rule = About(organisation_id=org, contact_ids=contacts)
        for r in recipients(Kind.INCIDENT, users=affected.members.get(org, ()), about=rule, prefs=prefs):
            if r.user.pk in seen:
                continue
            seen.add(r.user.pk)
            e = email_to(r, key=f"incident:{incident.pk}:u{update.number}:user:{r.user.pk}", template=TEMPLATE,
                         context=ctx)  # fmt: skip
            headers = {**e.headers, **mail.headers(incident.pk, update.number, r.user.pk, r.user.email)}
            emails.append(
                replace(e, headers=headers, message_id=mail.message_id(incident.pk, update.number, r.user.pk))
            )
    return emails


def subscriber_update_emails(
    incident: Incident, update: IncidentUpdate, services: list, members: list[Email]
) -> list[Email]:
    """The update to the status page's subscribers who follow one of its services, keyed
    incident:<id>:u<n>:subscriber:<id>, threaded per incident and subscriber (no reply address: a
    reply of theirs files no ticket); none to an address a member's copy of this update reaches
    (contracts.subscribers.emails). Each names the services the subscriber follows and the worst
    impact on those (Outage.impact_on).

    A customer-scoped outage is not public: its updates go to no subscriber. Those who were sent an
    earlier update (it was public then) get one closing email instead, at the first update after it
    was scoped (keyed incident:<id>:closed:subscriber:<id>, so once), in their thread: a fixed text
    that it concerns particular customers only and this is the last they hear, with the update's
    status; never staff's text, the title (staff may retitle it for the customer) or the impact."""
    sids = [s.pk for s in services]

    def thread(sub) -> tuple[str, dict]:
        earlier = [mail.message_id(incident.pk, n, f"s{sub.pk}") for n in range(1, update.number)]
        refs = {"In-Reply-To": earlier[0], "References": " ".join(earlier)} if earlier else {}
        return mail.message_id(incident.pk, update.number, f"s{sub.pk}"), refs

    context = {
        "incident": {"pk": incident.pk, "title": incident.title, "impact": incident.get_impact_display(),
                     "started_at": incident.outage.starts_at,
                     "url": settings.PORTAL_BASE_URL + reverse("status-incident", args=[incident.pk])},
        "update": {"number": update.number, "status": update.get_status_display(), "body": update.body,
                   "at": update.published_at, "resolved": update.status == Incident.Status.RESOLVED},
    }  # fmt: skip

    def theirs(sub) -> dict:
        followed = {x.pk for x in sub.services.all()}
        mine = [s for s in services if sub.all_services or s.pk in followed] or services
        impact = incident.outage.impact_on(s.pk for s in mine)
        return {"incident": {**context["incident"], "impact": impact.label}, "services": [s.name for s in mine]}

    if incident.outage.customer_scoped:
        return subscriber_emails(
            subscribers=subscribers_sent(f"incident:{incident.pk}:u"), key=f"incident:{incident.pk}:closed",
            template="status_incident_closed", skip=addresses(members), thread=thread,
            context={"incident": {"started_at": incident.outage.starts_at},
                     "update": {"status": update.get_status_display(), "at": update.published_at}},
            context_for=lambda sub: {"services": theirs(sub)["services"]},
        )  # fmt: skip
    return subscriber_emails(
        subscribers=following(subscribers_for(sids), sids), key=f"incident:{incident.pk}:u{update.number}",
        template="status_incident_update", context=context, skip=addresses(members), thread=thread,
        context_for=theirs,
    )  # fmt: skip


def _hook(incident: Incident, update: IncidentUpdate, services: list, organisation_id: int) -> HookEvent:
    return HookEvent(
        organisation_id=organisation_id, event=WebhookEvent.INCIDENT_UPDATED,
        key=f"incident:{incident.pk}:update:{update.number}",
        data={
            "incident": {"id": incident.pk, "url": settings.PORTAL_BASE_URL + incident_url(incident), "title": incident.title,
                         "status": incident.status, "services": [s.name for s in services],
                         "started_at": incident.outage.starts_at, "resolved_at": incident.resolved_at},
            "update": {"id": update.pk, "status": update.status, "body": update.body, "created_at": update.published_at},
        },
    )  # fmt: skip


@transaction.atomic
def update_publish(*, update: IncidentUpdate, now: datetime | None = None) -> int:
    """THE function that publishes an incident update and sends its emails: marks it published
    (once: an update published already, by another member of staff or the delay's sweep, sends
    nothing again and returns 0), then, in the same transaction, writes one outbox email per person
    the notification rule lets through of every contract the incident affects (keyed
    incident:<id>:u<n>:user:<id>, threaded per incident: contracts.incidents.mail), the same to the
    status page's subscribers of its services whom no member's copy reaches, and the
    `incident.updated` webhook for each affected organisation. Returns the emails written.
    Called by contracts.incidents.services for every update that goes out; callers hold no lock
    it needs (it takes the update's row)."""
    now = now or timezone.now()
    claimed = IncidentUpdate.objects.filter(pk=update.pk, published_at__isnull=True).update(published_at=now)
    if not claimed:
        return 0
    update.published_at = now
    incident = Incident.objects.select_related("outage").prefetch_related("outage__services").get(pk=update.incident_id)
    if incident.published_at is None:  # a draft's updates go out when the incident is published
        IncidentUpdate.objects.filter(pk=update.pk).update(published_at=None)
        update.published_at = None
        return 0
    affected = Affected.read(affected_contracts(incident, now))
    services = list(incident.outage.services.all())
    members = update_emails(incident, update, affected)
    written = outbox_enqueue_many(
        emails=members + subscriber_update_emails(incident, update, services, members), now=now
    )
    webhooks_emit(
        events=[
            _hook(incident, update, affected.services_of(org, services), org) for org in affected.organisation_ids()
        ],
        now=now,
    )
    return written
