"""The incident fan-out's costs that bench/incident_fanout.py measured (issue 20, Performance):
publishing an update runs the same queries for 2 affected contracts as for 6 (it ran one
preferences query per contract: 10,000 of them for 10,000 contracts), and the worker sends a batch
over one SMTP connection with a fixed number of queries per message."""

from datetime import UTC, datetime, timedelta
from unittest import mock

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext, override_settings

from contracts.incidents.publishing import update_publish
from contracts.incidents.services import incident_open
from contracts.models import Incident, Outage
from portal.core import delivery
from portal.models import OutboxAttempt, OutboxMessage

from .factories import ContractFactory, OrganisationFactory, ServiceFactory, UserFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 10, 9, 0, tzinfo=UTC)


@pytest.fixture
def backup(db):
    return ServiceFactory(name="Cloud Backup", slug="cloud-backup")


def customers(service, n: int, start: int = 0) -> None:
    for i in range(start, start + n):
        org = OrganisationFactory(name=f"Customer {i}", slug=f"customer-{i}")
        people = [UserFactory(email=f"p{i}-{k}@c{i}.example", organisation=org) for k in range(3)]
        ContractFactory(organisation=org, reference=f"KAL-{i:04d}", services=[service], contacts=people)


def draft_update(service, lena, title: str):
    """An incident published with its first update not yet sent: what update_publish takes."""
    outage = Outage.objects.create(title=title, starts_at=NOW - timedelta(minutes=30))
    outage.services.set([service])
    incident = incident_open(outage=outage, title=title, status="investigating", body="Looking.", actor=lena,
                             publish=False, now=NOW)  # fmt: skip
    Incident.objects.filter(pk=incident.pk).update(published_at=NOW)
    return incident.updates.get(number=1)


def publish_counted(update) -> tuple[int, int]:
    with time_machine.travel(NOW, tick=False), CaptureQueriesContext(connection) as q:
        written = update_publish(update=update, now=NOW)
    return written, len(q.captured_queries)


def test_publishing_an_update_runs_the_same_queries_for_2_contracts_as_for_6(backup, lena):
    customers(backup, 2)
    written, small = publish_counted(draft_update(backup, lena, "First"))
    assert written == 6
    customers(backup, 4, start=2)
    written, large = publish_counted(draft_update(backup, lena, "Second"))
    assert written == 18
    assert large == small, f"{small} queries for 2 contracts, {large} for 6"


@pytest.fixture
def smtp_backend(smtp_sink):
    with override_settings(EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend", EMAIL_HOST="127.0.0.1",
                           EMAIL_PORT=smtp_sink.port, EMAIL_USE_TLS=False, EMAIL_HOST_USER="",
                           EMAIL_HOST_PASSWORD=""):  # fmt: skip
        yield smtp_sink


def deliver_counted(count: int) -> tuple[int, int, int]:
    """Send `count` pending rows as the worker does: (sent, queries, SMTP connections opened)."""
    import smtplib

    real = smtplib.SMTP.connect
    with (
        mock.patch.object(smtplib.SMTP, "connect", autospec=True, side_effect=real) as connect,
        CaptureQueriesContext(connection) as q,
    ):
        sent = delivery.outbox_send_due(batch=count, max_batches=1)
    return sent, len(q.captured_queries), connect.call_count


def test_the_worker_sends_a_batch_over_one_connection_with_fixed_queries_per_message(backup, lena, smtp_backend):
    customers(backup, 3)  # 9 people
    update_publish(update=draft_update(backup, lena, "Storage"), now=NOW)
    assert OutboxMessage.objects.filter(status="pending").count() == 9

    sent3, q3, conns3 = deliver_counted(3)
    sent6, q6, conns6 = deliver_counted(6)
    assert (sent3, sent6) == (3, 6)
    assert conns3 == conns6 == 1  # not one connect, EHLO and QUIT per message
    per_message = (q6 - q3) / 3
    # Per message: mark it sent and record the attempt, one statement on PostgreSQL (elsewhere a
    # transaction: a savepoint, two statements and its release inside the test's transaction); the
    # batch's lease and renderings: one statement.
    assert per_message == (1 if connection.vendor == "postgresql" else 4), f"{q3} queries for 3 messages, {q6} for 6"
    received = smtp_backend.wait_for(9)
    assert len(received) == 9
    assert {m["Message-ID"] for m in received} == set(OutboxMessage.objects.values_list("message_id", flat=True))
    assert all(m["Auto-Submitted"] == "auto-generated" for m in received)
    rows = OutboxMessage.objects.all()
    assert all(r.status == "sent" and r.sent_at and r.lease_until is None for r in rows)
    assert sorted(a.message_id for a in OutboxAttempt.objects.filter(ok=True, error="")) == sorted(r.pk for r in rows)


def test_many_new_rows_are_handed_to_as_many_sweeps_as_they_fill(monkeypatch, settings):
    """A sweep sends up to 50 batches: 30,900 rows of an incident go to 7 sweeps at once, so that
    every worker process takes part (one sweep left the second idle until beat's next minute)."""
    from portal.core import outbox, tasks

    sent = []
    monkeypatch.setattr(tasks.outbox_sweep, "apply_async", lambda **kw: sent.append("sweep"))
    monkeypatch.setattr(outbox.outbox_send, "delay", lambda key: sent.append(key))
    settings.OUTBOX_BATCH = 100
    outbox._dispatch([f"k{n}" for n in range(30_900)])
    assert sent == ["sweep"] * 7
    sent.clear()
    outbox._dispatch(["k1", "k2"])
    assert sent == ["sweep"]
    sent.clear()
    outbox._dispatch(["k1"])
    assert sent == ["k1"]


def test_each_persons_email_of_an_update_is_as_the_rule_and_the_thread_make_it(backup, lena, settings):
    """What the batch reading of the affected contracts must keep, person by person: who is written
    to (each once, about their first contract; not one who turned incidents off, nor an inactive
    member), the context the body is rendered from, the one-click unsubscribe link (signed as
    portal.core.unsubscribe always signed it: links in emails already sent keep working), the
    reply address and the thread."""
    from django.core import signing
    from django.urls import reverse

    from contracts.incidents.services import incident_post_update
    from contracts.selectors import Versions
    from portal.core import reply_address
    from portal.core.snapshot import thaw
    from portal.models import NotificationPreference, User

    settings.PORTAL_BASE_URL = "https://portal.example"
    storage = ServiceFactory(name="Object Storage", slug="object-storage")
    customers(backup, 2)
    first, second = ContractFactory._meta.model.objects.order_by("pk")
    later = ContractFactory(organisation=first.organisation, reference="KAL-0100", services=[backup, storage],
                            contacts=[User.objects.get(email="p0-0@c0.example")])  # fmt: skip
    member = UserFactory(email="member@c1.example", organisation=second.organisation)  # not a designated contact
    UserFactory(email="gone@c1.example", organisation=second.organisation, is_active=False)
    off = User.objects.get(email="p1-2@c1.example")
    NotificationPreference.objects.create(user=off, kind="incident", enabled=False, updated_at=NOW)
    update = draft_update(backup, lena, "Storage")
    update.incident.outage.services.add(storage)
    update_publish(update=update, now=NOW)
    at = NOW + timedelta(minutes=20)
    with time_machine.travel(at, tick=False):
        second_update = incident_post_update(incident=update.incident, status="identified", body="A disk & a <fix>.",
                                             actor=lena, now=at)  # fmt: skip
    incident = Incident.objects.get(pk=update.incident_id)
    rows = {r.to: r for r in OutboxMessage.objects.filter(key__startswith=f"incident:{incident.pk}:u2:user:")}
    about = {**{f"p0-{k}@c0.example": first for k in range(3)}, "p1-0@c1.example": second,
             "p1-1@c1.example": second, member.email: second}  # fmt: skip
    assert sorted(rows) == sorted(about)
    assert later.pk > first.pk
    versions = Versions({first.sla_id})
    for email, contract in about.items():
        user, row = User.objects.get(email=email), rows[email]
        with time_machine.travel(at, tick=False):  # the token's timestamp: when it was signed
            token = signing.dumps({"u": user.pk, "c": "incident"}, salt="portal.unsubscribe")
        link = "https://portal.example" + reverse("unsubscribe", args=[token])
        mid = f"<incident-{incident.pk}.%d.{user.pk}@{settings.MESSAGE_ID_DOMAIN}>"
        assert row.message_id == mid % 2
        assert row.headers == {
            "List-Unsubscribe": f"<{link}>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            "Reply-To": reply_address.make(mailbox=settings.SUPPORT_QUEUE_EMAIL, tag="i", number=incident.pk,
                                           salt="contracts.incidents.mail.reply_address",
                                           value=f"{incident.pk}:{email}"),
            "In-Reply-To": mid % 1, "References": mid % 1,
        }  # fmt: skip
        version = versions.shown(contract.sla_id, at)
        assert thaw(row.context) == {
            "tz": version.timezone,
            "incident": {"pk": incident.pk, "title": "Storage", "impact": incident.get_impact_display(),
                         "started_at": incident.outage.starts_at, "url": f"/incidents/{incident.pk}/"},
            "update": {"number": 2, "status": "Identified", "body": "A disk & a <fix>.", "at": at, "resolved": False},
            "services": ["Cloud Backup"], "contract": {"reference": contract.reference, "name": contract.name},
            "recipient": user, "unsubscribe_url": link, "unsubscribe_label": "Incidents",
        }  # fmt: skip
        recipient = thaw(row.context)["recipient"]
        assert (recipient.name, recipient.organisation.name) == (user.name, contract.organisation.name)
    assert second_update.number == 2
    text = delivery.outbox_render(rows["p0-1@c0.example"])[1]
    assert "A disk & a <fix>." in text and first.reference in text
    assert rows["p0-1@c0.example"].headers["List-Unsubscribe"][1:-1] in text
