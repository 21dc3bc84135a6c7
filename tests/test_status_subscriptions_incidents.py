"""Status page subscribers get an incident's updates (issue 20, items 2 and 6): each published update
once per subscriber following one of its services, threaded per incident, with the one-click
unsubscribe; a customer contact who also subscribed gets one copy (the member's, which she can
answer); a customer-scoped outage is not public and reaches no subscriber (those told of it while it
was public get one neutral last email). Frozen clocks; emails asserted as sent, headers included."""

from datetime import UTC, datetime, timedelta
from email import message_from_bytes

import pytest
import time_machine
from django.core import mail

from contracts.incidents.services import incident_open, incident_post_update, outage_set_impact
from contracts.models import IncidentStatus, Outage, StatusSubscriber
from portal.models import OutboxMessage

from .factories import ContractFactory

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 11, 10, 9, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


@pytest.fixture(autouse=True)
def _https(settings):
    settings.PORTAL_BASE_URL = "https://portal.example"


@pytest.fixture
def outage(backup):
    o = Outage.objects.create(title="Backup API errors", starts_at=NOW - 30 * MINUTE)
    o.services.set([backup])
    return o


def subscriber(email, services=(), *, active=True):
    sub = StatusSubscriber.objects.create(
        email=email, address_key=email.lower(), all_services=not services, created_at=NOW - timedelta(days=1),
        confirmed_at=NOW - timedelta(days=1) if active else None,
    )  # fmt: skip
    sub.services.set(services)
    return sub


@pytest.fixture
def sent(django_capture_on_commit_callbacks):
    def run(at, fn, **kwargs):
        mail.outbox.clear()
        with time_machine.travel(at, tick=False), django_capture_on_commit_callbacks(execute=True):
            fn(**kwargs)
        return {m.to[0]: message_from_bytes(m.message().as_bytes()) for m in mail.outbox}

    return run


def test_subscribers_of_the_service_get_each_update_threaded_and_a_contact_gets_one_copy(
    sent, outage, acme, alice, bob, backup, assistant, lena
):
    ContractFactory(organisation=acme, services=[backup], contacts=[alice, bob])
    eve = subscriber("eve@example.org", [backup])
    subscriber("ivan@example.org", [assistant])  # another service
    everything = subscriber("all@example.org")
    subscriber("pending@example.org", active=False)
    subscriber("Alice@Acme.example")  # Alice's own mailbox: she gets the member's copy only

    first = sent(NOW, incident_open, outage=outage, title="Backups failing", status=IncidentStatus.INVESTIGATING,
                 body="We are looking into failed backups.", actor=lena)  # fmt: skip
    assert sorted(first) == ["alice@acme.example", "all@example.org", "bob@acme.example", "eve@example.org"]
    to_eve = first["eve@example.org"]
    incident_id = OutboxMessage.objects.get(key__endswith=f":subscriber:{eve.pk}").key.split(":")[1]
    assert to_eve["Subject"] == "Incident: Backups failing"
    assert to_eve["Message-ID"].startswith(f"<incident-{incident_id}.1.s{eve.pk}@")
    assert to_eve["In-Reply-To"] is None and to_eve["Reply-To"] is None  # a subscriber's reply files no ticket
    assert to_eve["List-Unsubscribe"].strip().startswith("<https://portal.example/status/subscriptions/")
    assert to_eve["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert to_eve["Auto-Submitted"] == "auto-generated"
    body = to_eve.get_payload()[0].get_payload(decode=True).decode()
    assert "We are looking into failed backups." in body and "Services:  Cloud Backup" in body
    assert f"Follow it on our status page: https://portal.example/status/incidents/{incident_id}/" in body
    assert "contract" not in body  # nothing of a customer's
    assert "Unsubscribe or choose your services: https://portal.example/status/subscriptions/" in body
    assert first["alice@acme.example"]["Reply-To"] is not None  # the member's copy, answerable

    incident = outage.incident
    second = sent(NOW + 20 * MINUTE, incident_post_update, incident=incident, status=IncidentStatus.RESOLVED,
                  body="Backups run again.", actor=lena, after=1)  # fmt: skip
    assert sorted(second) == sorted(first)
    again = second["all@example.org"]
    assert again["Message-ID"].startswith(f"<incident-{incident.pk}.2.s{everything.pk}@")
    assert again["In-Reply-To"] == first["all@example.org"]["Message-ID"] == again["References"]
    assert OutboxMessage.objects.filter(key__contains=":subscriber:").count() == 4  # two updates, two subscribers


def test_a_customer_scoped_outage_reaches_no_subscriber(sent, outage, acme, alice, backup, lena):
    contract = ContractFactory(organisation=acme, services=[backup], contacts=[alice])
    subscriber("eve@example.org", [backup])
    with time_machine.travel(NOW, tick=False):
        outage_set_impact(outage=outage, impacts={}, contracts=[contract], customer_scoped=True, actor=lena)
    emails = sent(NOW, incident_open, outage=outage, title="Backups failing for you",
                  status=IncidentStatus.INVESTIGATING, body="Looking into it.", actor=lena)  # fmt: skip
    assert sorted(emails) == ["alice@acme.example"]


def text_of(msg) -> str:
    return next(p for p in msg.walk() if p.get_content_type() == "text/plain").get_payload(decode=True).decode()


def test_subscribers_told_of_an_incident_later_scoped_to_a_customer_get_one_neutral_last_email(
    sent, outage, acme, alice, backup, lena
):
    """Told while it was public, they are not left without an ending: the first update after staff
    scope it to a customer brings them one closing email in their thread, with the update's status and
    nothing of the customer (not its name, not staff's text, not a title retitled for the customer);
    later updates and subscribers never told of it get nothing."""
    from contracts.incidents.services import incident_set_title

    contract = ContractFactory(organisation=acme, services=[backup], contacts=[alice])
    eve = subscriber("eve@example.org", [backup])
    first = sent(NOW, incident_open, outage=outage, title="Backup API errors", status=IncidentStatus.INVESTIGATING,
                 body="We are looking into errors.", actor=lena)  # fmt: skip
    assert sorted(first) == ["alice@acme.example", "eve@example.org"]
    incident = outage.incident
    subscriber("late@example.org", [backup])  # subscribed after it went out: never told of it

    with time_machine.travel(NOW + 10 * MINUTE, tick=False):
        outage_set_impact(outage=outage, impacts={}, contracts=[contract], customer_scoped=True, actor=lena)
        incident_set_title(incident=incident, title="Acme Corp storage node down", actor=lena)
    second = sent(NOW + 20 * MINUTE, incident_post_update, incident=incident, status=IncidentStatus.IDENTIFIED,
                  body="Acme Corp's storage node failed; replacing it.", actor=lena)  # fmt: skip
    assert sorted(second) == ["alice@acme.example", "eve@example.org"]
    last = second["eve@example.org"]
    assert last["Subject"] == "Incident update: no longer on our status page"
    assert last["Message-ID"].startswith(f"<incident-{incident.pk}.2.s{eve.pk}@")
    assert last["In-Reply-To"] == first["eve@example.org"]["Message-ID"]  # in her thread
    assert last["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    body = text_of(last)
    assert (
        "The incident we told you of, on Cloud Backup since 2026-11-10 08:30 (UTC+00:00), turned out to affect "
        "particular customers only, not the service in general." in body
    )
    assert "this is our last email about it." in body
    assert "Its status when we wrote this: Identified (2026-11-10 09:20 (UTC+00:00))." in body
    assert "Acme" not in body and "Acme" not in last["Subject"] and "replacing" not in body
    assert OutboxMessage.objects.filter(key=f"incident:{incident.pk}:closed:subscriber:{eve.pk}").exists()

    # The resolution goes to the customer only: Eve had her last word.
    third = sent(NOW + 40 * MINUTE, incident_post_update, incident=incident, status=IncidentStatus.RESOLVED,
                 body="Fixed.", actor=lena)  # fmt: skip
    assert sorted(third) == ["alice@acme.example"]
