"""Public incidents for the status page's tests, made through the services staff use."""

from django.utils import timezone

from contracts.models import Outage, OutageUpdate


def publish_incident(services, start, end=None, *, title, updates=(), scoped_to=None):
    """A published incident on `services` from `start` (to `end`), with `updates` [(at, status,
    body)], customer-scoped to the contracts `scoped_to` when given."""
    outage = Outage.objects.create(title=title, starts_at=start, ends_at=end)
    outage.services.set(services)
    for at, _status, body in updates:
        OutageUpdate.objects.create(outage=outage, at=at, body=body)
    return outage


def add_update(incident, status, body):
    return OutageUpdate.objects.create(outage=incident, at=timezone.now(), body=body)
