"""Two staff at once on PostgreSQL (real row locks, two connections): publishing the same draft
incident sends its emails once, and two updates posted after the same update are one update sent
and one refusal, never two updates each unaware of the other."""

import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connections

from contracts.incidents.services import IncidentError, incident_open, incident_post_update, incident_publish
from contracts.models import Incident, IncidentUpdate, Outage
from portal.models import OutboxMessage

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

NOW = datetime(2026, 11, 10, 9, 0, tzinfo=UTC)


def _at_once(*calls):
    """Run the calls in two threads released together; (results, errors)."""
    barrier = threading.Barrier(len(calls))
    results, errors = [], []

    def run(call):
        try:
            barrier.wait(timeout=10)
            results.append(call())
        except IncidentError as exc:
            errors.append(str(exc))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(c,)) for c in calls]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results, errors


@pytest.fixture
def draft(acme_contract, alice, bob, lena):
    outage = Outage.objects.create(title="Backup API errors", starts_at=NOW - timedelta(minutes=30))
    outage.services.set(acme_contract.services.all())
    return incident_open(outage=outage, title="Backups failing", status="investigating", body="Looking.", actor=lena,
                         publish=False, now=NOW)  # fmt: skip


def test_two_staff_publishing_the_same_draft_at_once_send_each_email_once(draft, lena, ayo, alice, bob):
    results, errors = _at_once(
        lambda: incident_publish(incident=Incident.objects.get(pk=draft.pk), actor=lena, now=NOW),
        lambda: incident_publish(incident=Incident.objects.get(pk=draft.pk), actor=ayo, now=NOW),
    )
    assert results == [2] and len(errors) == 1 and "published already" in errors[0]
    assert sorted(OutboxMessage.objects.values_list("to", flat=True)) == [alice.email, bob.email]


def test_two_updates_after_the_same_one_are_one_update_sent_and_one_refusal(draft, lena, ayo):
    incident_publish(incident=draft, actor=lena, now=NOW)
    results, errors = _at_once(
        lambda: incident_post_update(incident=draft, status="identified", body="Found it.", actor=lena, after=1,
                                     now=NOW + timedelta(minutes=5)),
        lambda: incident_post_update(incident=draft, status="identified", body="Found.", actor=ayo, after=1,
                                     now=NOW + timedelta(minutes=5)),
    )  # fmt: skip
    assert len(results) == 1 and len(errors) == 1 and "#2 was posted meanwhile" in errors[0]
    assert list(IncidentUpdate.objects.filter(incident=draft).values_list("number", flat=True)) == [1, 2]
    assert OutboxMessage.objects.filter(key__startswith=f"incident:{draft.pk}:u2:").count() == 2
