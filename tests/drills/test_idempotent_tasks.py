"""Drill 7: every task run twice with the same arguments leaves the same database and mailbox as
running it once. In-process (pytest-django, the test database of DATABASE_URL), clock frozen, so
that "the same arguments" includes the same moment: a retry, a redelivery after a lost worker, a
second beat.

Each task runs against a world in which it has work to do (a window whose notice is due, a P1 ticket
filed two hours ago, October ended, pending outbox rows): the first run must change something, the
second nothing. A new task fails test_every_task_is_covered until it is added to TASKS.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.apps import apps
from django.core import mail

from portal.celery import app
from portal.models import OutboxMessage, SweepHeartbeat

pytestmark = [pytest.mark.drill, pytest.mark.django_db]

T0 = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
APPS = {"portal", "contracts", "tickets", "credits"}
# What a task may change on every run, by design: the heartbeat counts the sweep's runs and when it
# last ran (that is what /healthz reads).
EXEMPT = {SweepHeartbeat}

# Each task with the arguments it is called with (beat's sweeps take none).
TASKS = {
    "portal.core.tasks.outbox_send": lambda: (OutboxMessage.objects.filter(status="pending").order_by("id")[0].key,),
    "portal.core.tasks.outbox_sweep": lambda: (),
    "contracts.tasks.send_maintenance_notices": lambda: (),
    "tickets.tasks.escalate_due_tickets": lambda: (),
    "tickets.tasks.check_sla_deadlines": lambda: (),
    "credits.tasks.close_month": lambda: (),
    "tickets.tasks.recompute_deadlines": lambda: ([], [_p1_first_response_edited()]),
    "contracts.tasks.request_contacts_reviews": lambda: (),
    "portal.core.webhook_tasks.webhooks_sweep": lambda: (),
    "tickets.tasks.poll_mailbox": lambda: (),  # with a message in a real Dovecot mailbox (below)
    "contracts.tasks.publish_due_incidents": lambda: (),  # with an alert's draft due (below)
    "portal.core.tasks.housekeeping_run": lambda: (),
}


def _p1_first_response_edited() -> int:
    """The P1 first response of the ticket's SLA version made 30 minutes long, as an admin edit of
    the terms is (its recompute is the task under test); returns the version's id."""
    from contracts.calendars import terms_edited
    from contracts.models import PriorityTerm
    from tickets.models import Ticket

    version_id = Ticket.objects.get().sla_version_id
    PriorityTerm.objects.filter(version_id=version_id, priority="P1").update(first_response=timedelta(minutes=30))
    terms_edited([version_id])
    return version_id


def project_tasks() -> set[str]:
    app.loader.import_default_modules()
    return {name for name in app.tasks if name.split(".")[0] in APPS}


def test_every_task_is_covered():
    assert project_tasks() == set(TASKS), "add the new task to TASKS (with the arguments it is called with)"


@pytest.fixture
def world(acme_contract, alice, bob, receiver):
    """Work for every task at T0: a window whose notice is due, a P1 ticket filed two hours before
    (due at escalation level 3, both its clocks breached, its receipt emails pending in the outbox,
    its "filed" delivery due to Alice's webhook endpoint, a real HTTPS receiver), October ended for
    Acme's contract (it started in January), and Acme's admin not asked this quarter to review her
    people."""
    from contracts.maintenance.services import window_publish
    from portal.core.webhooks import webhook_endpoint_create
    from tickets.services import ticket_open

    with time_machine.travel(T0 - timedelta(hours=3), tick=False):
        webhook_endpoint_create(actor=alice, url=receiver.url, events=["ticket.filed"])
    service = acme_contract.services.get()
    window_publish(title="Storage upgrade", description="Disks swapped.", services=[service],
                   starts_at=T0 + timedelta(hours=47), ends_at=T0 + timedelta(hours=49), now=T0 - timedelta(days=1))  # fmt: skip
    with time_machine.travel(T0 - timedelta(hours=2), tick=False):
        ticket_open(user=alice, contract=acme_contract, service=service, priority="P1", subject="Backups fail",
                    description="Nothing since midnight.", now=T0 - timedelta(hours=2))  # fmt: skip
    assert OutboxMessage.objects.filter(status="pending").exists()


def snapshot():
    rows = {
        model._meta.label: list(model.objects.order_by("pk").values())
        for model in apps.get_models()
        if model._meta.app_label in APPS and model not in EXEMPT
    }
    mails = [(m.to, m.subject, m.extra_headers.get("Message-ID"), m.body) for m in mail.outbox]
    return rows, mails


@pytest.fixture
def inbound_mail(request, settings, alice):
    """For the mailbox poller: a throwaway Dovecot mailbox with Alice's email to support in it."""
    if request.node.callspec.params["name"] != "tickets.tasks.poll_mailbox":
        return
    from portal.domain.mail_urls import imap_url

    server = request.getfixturevalue("dovecot")
    settings.INBOUND_IMAP = imap_url(server.url())
    settings.INBOUND_IMAP_PROCESSED_FOLDER = "Processed"
    server.append(
        b"From: Alice Achieng <alice@acme.example>\r\nTo: support@kaluari.com\r\n"
        b"Subject: Restores fail\r\nMessage-ID: <restores@acme.example>\r\n\r\nNo restore since noon.\r\n",
        internaldate=T0 - timedelta(minutes=5),
    )


@pytest.fixture
def incident_draft(request, acme_contract):
    """For the incidents' sweep: an outage Alertmanager opened on Acme's service 40 minutes before
    T0, whose drafted incident's delay has passed."""
    if request.node.callspec.params["name"] != "contracts.tasks.publish_due_incidents":
        return
    from contracts.incidents.services import incidents_draft_for_alerts
    from contracts.models import Outage

    outage = Outage.objects.create(title="Backup API errors", starts_at=T0 - timedelta(minutes=40))
    outage.services.set([acme_contract.services.get()])
    incidents_draft_for_alerts(outages=[outage], now=T0 - timedelta(minutes=35))


@pytest.fixture
def old_sent_mail(request):
    """For the housekeeping: an email sent 200 days before T0, whose bodies are past keeping."""
    if request.node.callspec.params["name"] != "portal.core.tasks.housekeeping_run":
        return
    from portal.core.outbox import Email, outbox_enqueue

    outbox_enqueue(email=Email(key="old-reply", to="alice@acme.example", template="ticket_reply", context={"x": 1}))
    OutboxMessage.objects.filter(key="old-reply").update(
        status="sent", sent_at=T0 - timedelta(days=200), created_at=T0 - timedelta(days=200), body_text="Hello.\n"
    )


@pytest.mark.parametrize("name", sorted(TASKS))
def test_a_task_run_twice_leaves_what_running_it_once_left(
    name, world, inbound_mail, incident_draft, old_sent_mail, mailoutbox
):
    task = app.tasks[name]
    args = TASKS[name]()
    with time_machine.travel(T0, tick=False):
        before = snapshot()
        task.apply(args=args).get()
        once = snapshot()
        task.apply(args=args).get()
        twice = snapshot()
    assert once != before, f"{name} had nothing to do: the drill proves nothing"
    for label in once[0]:
        assert twice[0][label] == once[0][label], f"{name} run twice changed {label}"
    assert twice[1] == once[1], f"{name} run twice changed the mailbox"
