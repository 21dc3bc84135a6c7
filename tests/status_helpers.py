"""Public incidents for the status page's tests, made through the services staff use
(contracts.incidents.services): an outage, made an incident with its first update, then updated."""

from django.utils import timezone

from contracts.incidents.services import incident_open, incident_post_update, outage_set_impact
from contracts.models import Outage


def publish_incident(services, start, end=None, *, title, updates, impacts=None, scoped_to=None):
    """A published incident on `services` from `start` (to `end`), with `updates` [(at, status,
    body)], oldest first; `impacts` {service: impact} where not major; customer-scoped to the
    contracts `scoped_to` when given."""
    outage = Outage.objects.create(title=f"Outage: {title}", starts_at=start, ends_at=end)
    outage.services.set(services)
    if impacts or scoped_to:
        outage_set_impact(
            outage=outage, impacts={s.pk: v for s, v in (impacts or {}).items()}, contracts=scoped_to or [],
            customer_scoped=bool(scoped_to), actor=None, now=start,
        )  # fmt: skip
        outage.refresh_from_db()
    (at, status, body), *rest = updates
    incident = incident_open(outage=outage, title=title, status=status, body=body, actor=None, now=at)
    for at, status, body in rest:
        incident_post_update(incident=incident, status=status, body=body, actor=None, now=at)
    return incident


def add_update(incident, status, body):
    return incident_post_update(incident=incident, status=status, body=body, actor=None, now=timezone.now())
