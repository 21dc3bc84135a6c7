"""Issue 20's first "Done when", end to end on the real routes: a real Alertmanager notification
opens an outage on Acme's service (and drafts its incident); a support lead publishes the incident
and posts two updates through the admin; a public subscriber who signed up and confirmed through the
status pages is told too; the outbox is delivered as the worker does (its sweep) and the sent emails
are parsed as received. Alice and Bob (Acme, on the service) get three emails that thread, Charlie
(Globex, not on it) none, the subscriber three; the Atom feed and summary.json show the incident
while it is open; once resolved the history lists it and incidents/unresolved.json is empty."""

import json
import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from email import message_from_bytes

import pytest
import time_machine
from django.core import mail
from django.test import Client
from django.urls import reverse

from contracts.models import Incident, Outage, StatusSubscriber
from contracts.outages.alerts import service_rotate_webhook_token
from portal.core.tasks import outbox_sweep

from .factories import ContractFactory, ServiceFactory
from .test_alertmanager import alert, notification
from .test_incident_links import _timeline_management

pytestmark = pytest.mark.django_db

BASE = "https://portal.example"
NOW = datetime(2026, 11, 10, 9, 0, tzinfo=UTC)  # the alert reaches us
MINUTE = timedelta(minutes=1)
ATOM = "{http://www.w3.org/2005/Atom}"
EVE = "eve@example.org"


@pytest.fixture(autouse=True)
def _base(settings):
    settings.PORTAL_BASE_URL = BASE


@pytest.fixture
def backup(db):
    service = ServiceFactory(name="Cloud Backup", slug="cloud-backup")
    service.token = service_rotate_webhook_token(service=service)
    return service


@pytest.fixture
def assistant(db):
    return ServiceFactory(name="AI Assistant", slug="ai-assistant")


@pytest.fixture
def contracts(acme, globex, alice, bob, charlie, backup, assistant):
    return (
        ContractFactory(organisation=acme, reference="KAL-0001", name="Cloud Backup for Acme", services=[backup],
                        contacts=[alice, bob]),
        ContractFactory(organisation=globex, reference="KLA-0001", name="AI Assistant for Globex",
                        services=[assistant], contacts=[charlie]),
    )  # fmt: skip


def deliver(at) -> list:
    """Run the worker's outbox sweep at `at`; the emails it sent, parsed as a mailbox receives them."""
    mail.outbox.clear()
    with time_machine.travel(at, tick=False):
        outbox_sweep()
    return [message_from_bytes(m.message().as_bytes()) for m in mail.outbox]


def text_of(msg) -> str:
    return next(p for p in msg.walk() if p.get_content_type() == "text/plain").get_payload(decode=True).decode()


def subject(msg) -> str:
    return re.sub(r"\s*\n\s*", " ", msg["Subject"])


def post_admin(client, incident, at, **fields):
    """The incident's admin page as a lead submits it: the title, maybe an update, maybe "publish"."""
    incident.refresh_from_db()
    data = {"title": incident.title, "new_status": "", "new_body": "",
            "seen_last": incident.updates.count(), **fields, **_timeline_management(incident)}  # fmt: skip
    with time_machine.travel(at, tick=False):
        response = client.post(reverse("admin:contracts_incident_change", args=[incident.pk]), data)
    assert response.status_code == 302, response.content.decode()[:3000]


def get(client, path, at):
    with time_machine.travel(at, tick=False):
        response = client.get(path)
    assert response.status_code == 200, path
    return response


def test_an_alert_becomes_an_incident_that_customers_and_subscribers_follow_to_its_end(
    client, contracts, backup, alice, bob, charlie, lena
):
    public = Client()

    # A member of the public subscribes to Cloud Backup and confirms from the email's link.
    with time_machine.travel(NOW - 60 * MINUTE, tick=False):
        response = public.post(
            "/status/subscribe/", {"email": EVE, "services": [backup.pk]}, REMOTE_ADDR="198.51.100.7"
        )
    assert response.status_code == 302
    (confirmation,) = deliver(NOW - 59 * MINUTE)
    assert confirmation["To"] == EVE
    path = re.search(rf"{re.escape(BASE)}(/status/subscriptions/confirm/[^\s\"<>]+/)", text_of(confirmation)).group(1)
    assert "Confirm my subscription" in get(public, path, NOW - 58 * MINUTE).content.decode()  # a link only shows
    with time_machine.travel(NOW - 58 * MINUTE, tick=False):
        assert public.post(path).status_code == 200
    assert StatusSubscriber.objects.get(email=EVE).confirmed_at == NOW - 58 * MINUTE

    # Alertmanager: Cloud Backup's API is down. An outage opens and its incident is drafted, unpublished.
    firing = notification(alert(starts="2026-11-10T08:55:00Z"))
    with time_machine.travel(NOW, tick=False):
        response = Client().post(reverse("alertmanager-webhook"), data=json.dumps(firing),
                                 content_type="application/json", headers={"Authorization": f"Bearer {backup.token}"})  # fmt: skip
    assert response.status_code == 200, response.content
    outage = Outage.objects.get()
    assert response.json()["opened"] == [outage.pk] and list(outage.services.all()) == [backup]
    incident = Incident.objects.get(outage=outage)
    assert incident.published_at is None
    assert deliver(NOW + MINUTE) == []  # a draft tells no one

    # A support lead publishes it from its admin page, then posts two updates there.
    client.force_login(lena)
    post_admin(client, incident, NOW + 5 * MINUTE, publish="on")
    first = deliver(NOW + 6 * MINUTE)
    post_admin(client, incident, NOW + 20 * MINUTE, new_status="identified",
               new_body="A storage node is full; we are moving data off it.")  # fmt: skip
    second = deliver(NOW + 21 * MINUTE)

    # While it is open, the Atom feed and summary.json show it.
    feed = ET.fromstring(get(public, "/status/feed.atom", NOW + 25 * MINUTE).content)
    entries = {e.find(f"{ATOM}title").text: e for e in feed.findall(f"{ATOM}entry")}
    entry = entries["Cloud Backup API is down [Identified]"]
    assert entry.find(f"{ATOM}link").get("href").endswith(f"/status/incidents/{incident.pk}/")
    assert "A storage node is full" in entry.find(f"{ATOM}summary").text
    summary = get(public, "/status/api/v2/summary.json", NOW + 25 * MINUTE).json()
    (shown,) = summary["incidents"]
    assert (shown["name"], shown["status"], shown["impact"], shown["resolved_at"]) == (
        "Cloud Backup API is down", "identified", "critical", None
    )  # fmt: skip
    assert [u["status"] for u in shown["incident_updates"]] == ["identified", "investigating"]
    assert {c["id"]: c["status"] for c in summary["components"]}["cloud-backup"] == "major_outage"
    assert summary["status"]["indicator"] == "critical"

    # Alertmanager says the alert resolved; the lead resolves the incident.
    resolved = notification(alert("resolved", starts="2026-11-10T08:55:00Z", ends="2026-11-10T09:55:00Z"))
    with time_machine.travel(NOW + 56 * MINUTE, tick=False):
        response = Client().post(reverse("alertmanager-webhook"), data=json.dumps(resolved),
                                 content_type="application/json", headers={"Authorization": f"Bearer {backup.token}"})  # fmt: skip
    assert response.status_code == 200 and response.json()["closed"] == [outage.pk]
    post_admin(client, incident, NOW + 60 * MINUTE, new_status="resolved", new_body="Backups run again.")
    third = deliver(NOW + 61 * MINUTE)

    # The emails: three to each of Alice, Bob and the subscriber, one thread each; none to Charlie.
    sent = [*first, *second, *third]
    assert sorted({m["To"] for m in sent}) == sorted([alice.email, bob.email, EVE])
    assert [len(batch) for batch in (first, second, third)] == [3, 3, 3]
    for address in (alice.email, bob.email, EVE):
        thread = [m for m in sent if m["To"] == address]
        assert [subject(m) for m in thread] == ["Incident: Cloud Backup API is down"] * 3
        ids = [m["Message-ID"] for m in thread]
        assert len(set(ids)) == 3
        assert thread[0]["In-Reply-To"] is None and thread[0]["References"] is None
        assert thread[1]["In-Reply-To"] == ids[0] and thread[1]["References"] == ids[0]
        assert thread[2]["In-Reply-To"] == ids[0] and thread[2]["References"].split() == ids[:2]
        assert all(m["Auto-Submitted"] == "auto-generated" for m in thread)
        bodies = [text_of(m) for m in thread]
        assert "reported by our monitoring at 08:55 UTC" in bodies[0]  # the alert's draft, as published
        assert "A storage node is full" in bodies[1] and "Backups run again." in bodies[2]
    assert charlie.email not in {m["To"] for m in sent}
    assert deliver(NOW + 90 * MINUTE) == []  # nothing twice

    # Resolved: the history lists it, nothing is unresolved, and the summary lists no incident.
    history = get(public, "/status/history/", NOW + 90 * MINUTE).content.decode()
    assert "Cloud Backup API is down" in history and f'href="/status/incidents/{incident.pk}/"' in history
    assert get(public, "/status/api/v2/incidents/unresolved.json", NOW + 90 * MINUTE).json()["incidents"] == []
    summary = get(public, "/status/api/v2/summary.json", NOW + 90 * MINUTE).json()
    assert summary["incidents"] == [] and summary["status"]["indicator"] == "none"


def test_a_refused_post_comes_back_with_its_text_and_claims_no_success(client, contracts, backup, lena):
    from contracts.incidents.services import incident_open, incident_post_update

    outage = Outage.objects.create(title="Backup API errors", starts_at=NOW - 30 * MINUTE)
    outage.services.set([backup])
    with time_machine.travel(NOW, tick=False):
        incident = incident_open(outage=outage, title="Backups failing", status="investigating", body="Looking.",
                                 publish=True, actor=lena)  # fmt: skip
    client.force_login(lena)
    page = get(client, reverse("admin:contracts_incident_change", args=[incident.pk]), NOW + MINUTE)
    seen = page.context["adminform"].form["seen_last"].value()
    # Another lead posts while Lena types: hers comes back, her text in it, nothing posted in her name.
    with time_machine.travel(NOW + 2 * MINUTE, tick=False):
        incident_post_update(incident=incident, status="identified", body="A node is full.", actor=lena, after=seen)
    data = {"title": incident.title, "new_status": "identified", "new_body": "Moving data off the node.",
            "seen_last": seen, **_timeline_management(incident)}  # fmt: skip
    with time_machine.travel(NOW + 3 * MINUTE, tick=False):
        response = client.post(reverse("admin:contracts_incident_change", args=[incident.pk]), data, follow=True)
    html = response.content.decode()
    assert "Update #2 was posted meanwhile" in html and "Moving data off the node." in html
    assert "successfully" not in html and incident.updates.count() == 2
    # An update longer than the service takes is the field's error, not an "added successfully".
    data = {"outage": Outage.objects.create(title="More", starts_at=NOW).pk, "title": "More", "status": "investigating",
            "body": "x" * 10_001, "publish_now": "on"}  # fmt: skip
    with time_machine.travel(NOW + 4 * MINUTE, tick=False):
        response = client.post(reverse("admin:contracts_incident_add"), data, follow=True)
    assert "successfully" not in response.content.decode() and Incident.objects.count() == 1
    assert response.context["adminform"].form.errors["body"]
