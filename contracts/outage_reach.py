"""Which of an organisation's contracts an outage affects, and on which of their services: the one
rule the customer's incident page (contracts.incidents.selectors) and the API's outages
(contracts.api) name and filter by, so that neither names a contract whose uptime the outage does
not touch.

A contract on one of the outage's services is affected on it, except where staff scoped the outage
(`Outage.contracts`): a customer-scoped outage affects its scoped contracts only, and a partial
impact on a service is down only for the scoped contracts (credits.closing.outage_spans, which
decides the uptime: PRODUCT.md, "Incidents and notices"). Most outages are neither: they cost no
query more than reading their services."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping

from django.db.models import Q, QuerySet

from .choices import Impact
from .models import Contract, Outage
from .selectors import contracts_for_user


def is_scoped(outage: Outage) -> bool:
    """Whether the contracts staff scoped the outage to decide whom it affects."""
    return outage.customer_scoped or any(v == Impact.PARTIAL for v in (outage.impacts or {}).values())


def outage_reach(
    outage: Outage,
    services: Iterable[int],
    contract_services: Mapping[int, Collection[int]],
    scoped: Collection[int] = (),
) -> dict[int, set[int]]:
    """Of `contract_services` (an organisation's contracts, each with its services), those the
    outage (on `services`, scoped to the contracts `scoped`) affects, each with the services it
    affects it on."""
    services = set(services)
    out: dict[int, set[int]] = {}
    for contract, theirs in contract_services.items():
        shared = services.intersection(theirs)
        if contract not in scoped:
            shared = set() if outage.customer_scoped else {s for s in shared if outage.impact_of(s) != Impact.PARTIAL}
        if shared:
            out[contract] = shared
    return out


def contracts_reached(outage: Outage) -> QuerySet[Contract]:
    """outage_reach as a query: every contract the outage affects (the incident emails' and webhooks'
    recipients, the contracts a reply to an incident email may file on)."""
    services = Contract.services.through.objects.filter(service__in=outage.services.values("pk"))
    contracts = Contract.objects.filter(pk__in=services.values("contract_id"))
    scoped = Q(pk__in=outage.contracts.values("pk"))
    if outage.customer_scoped:
        return contracts.filter(scoped)
    if partial := [int(s) for s, v in (outage.impacts or {}).items() if v == Impact.PARTIAL]:
        return contracts.filter(scoped | Q(pk__in=services.exclude(service_id__in=partial).values("contract_id")))
    return contracts


def contract_services_for_user(*, user) -> dict[int, set[int]]:
    """The user's organisation's contracts, each with the services it covers (one query)."""
    out: dict[int, set[int]] = {}
    for contract, service in contracts_for_user(user=user).values_list("pk", "services"):
        out.setdefault(contract, set())
        if service is not None:
            out[contract].add(service)
    return out


def scopes_of(outages: Iterable[Outage]) -> dict[int, set[int]]:
    """The scoped contracts of those of `outages` whose scope matters (is_scoped): one query, none
    when no outage has one."""
    ids = [o.pk for o in outages if is_scoped(o)]
    out: dict[int, set[int]] = {pk: set() for pk in ids}
    if ids:
        for outage, contract in Outage.contracts.through.objects.filter(outage_id__in=ids).values_list(
            "outage_id", "contract_id"
        ):
            out[outage].add(contract)
    return out


def outages_reaching(
    outages: QuerySet[Outage], *, user, contract: int | None = None, service: int | None = None
) -> QuerySet[Outage]:
    """`outages` narrowed to those that affect the organisation's contract `contract` and/or its
    service `service` (outage_reach). Another organisation's contract or service is no different
    from an id never used: nothing."""
    contract_services = contract_services_for_user(user=user)
    if contract is not None:
        contract_services = {contract: contract_services.get(contract, set())}
    if service is not None:
        contract_services = {c: sids & {service} for c, sids in contract_services.items()}
    sids = set().union(*contract_services.values())
    outages = outages.filter(pk__in=Outage.services.through.objects.filter(service__in=sids).values("outage"))
    special = [
        o for o in outages.filter(Q(customer_scoped=True) | ~Q(impacts={})).only("pk", "customer_scoped", "impacts")
        if is_scoped(o)
    ]  # fmt: skip
    if not special:
        return outages
    scopes = scopes_of(special)
    services: dict[int, set[int]] = {o.pk: set() for o in special}
    for outage, sid in Outage.services.through.objects.filter(outage_id__in=services).values_list(
        "outage_id", "service_id"
    ):
        services[outage].add(sid)
    missed = [o.pk for o in special if not outage_reach(o, services[o.pk], contract_services, scopes[o.pk])]
    return outages.exclude(pk__in=missed)
