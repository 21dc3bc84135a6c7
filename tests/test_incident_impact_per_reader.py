"""Each reader is told the impact on their own services (Outage.impact_on): an outage takes Cloud
Backup down (major) and slows AI Assistant (degraded). Acme (Cloud Backup) read "Major outage";
Globex (AI Assistant only) read "Degraded performance" in their emails, on their incident pages,
their dashboard and their claim's evidence; a public subscriber who follows AI Assistant only is
told of AI Assistant, degraded, one who follows every service of both, major. Frozen clocks; the
emails as sent."""

import re
from datetime import UTC, date, datetime, timedelta
from email import message_from_bytes

import pytest
import time_machine
from django.core import mail

from contracts.choices import Impact
from contracts.incidents.services import incident_open, outage_set_impact
from contracts.models import Outage, StatusSubscriber

from .factories import ContractFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 10, 9, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


@pytest.fixture
def world(acme, globex, alice, charlie, backup, assistant):
    acme_c = ContractFactory(organisation=acme, reference="KAL-0001", name="Backup for Acme", services=[backup],
                             contacts=[alice])  # fmt: skip
    globex_c = ContractFactory(organisation=globex, reference="KLA-0001", name="AI for Globex", services=[assistant],
                               contacts=[charlie])  # fmt: skip
    return acme_c, globex_c


def subscriber(email, services=()):
    sub = StatusSubscriber.objects.create(
        email=email, address_key=email, all_services=not services, created_at=NOW - timedelta(days=1),
        confirmed_at=NOW - timedelta(days=1),
    )  # fmt: skip
    sub.services.set(services)
    return sub


def storage_outage(backup, assistant, starts_at=NOW, ends_at=None):
    o = Outage.objects.create(title="Storage cluster", starts_at=starts_at, ends_at=ends_at)
    o.services.set([backup, assistant])
    outage_set_impact(outage=o, impacts={assistant.pk: Impact.DEGRADED}, contracts=[], customer_scoped=False,
                      actor=None, now=starts_at)  # fmt: skip
    o.refresh_from_db()
    return o


def opened(outage, at, django_capture_on_commit_callbacks):
    mail.outbox.clear()
    with time_machine.travel(at, tick=False), django_capture_on_commit_callbacks(execute=True):
        incident = incident_open(outage=outage, title="Storage trouble", status="investigating", body="Looking.",
                                 actor=None)  # fmt: skip
    sent = {m.to[0]: message_from_bytes(m.message().as_bytes()) for m in mail.outbox}
    return incident, sent


def text_of(msg) -> str:
    return next(p for p in msg.walk() if p.get_content_type() == "text/plain").get_payload(decode=True).decode()


def html_of(msg) -> str:
    return next(p for p in msg.walk() if p.get_content_type() == "text/html").get_payload(decode=True).decode()


def lines(text: str) -> dict[str, str]:
    return {k: v.strip() for k, v in re.findall(r"^(Services|Impact):\s+(.*)$", text, re.M)}


def test_customers_and_subscribers_are_told_the_impact_on_their_own_services(
    world, backup, assistant, alice, charlie, django_capture_on_commit_callbacks
):
    subscriber("ai-fan@example.org", [assistant])
    subscriber("everything@example.org")
    outage = storage_outage(backup, assistant)
    _, sent = opened(outage, NOW + MINUTE, django_capture_on_commit_callbacks)

    assert lines(text_of(sent[charlie.email])) == {"Services": "AI Assistant", "Impact": "Degraded performance"}
    assert "Degraded performance" in html_of(sent[charlie.email])
    assert "Major outage" not in text_of(sent[charlie.email]) + html_of(sent[charlie.email])
    assert lines(text_of(sent[alice.email])) == {"Services": "Cloud Backup", "Impact": "Major outage"}
    # A subscriber following AI Assistant only: that service, degraded; Cloud Backup not named.
    fan = text_of(sent["ai-fan@example.org"])
    assert lines(fan) == {"Services": "AI Assistant", "Impact": "Degraded performance"}
    assert "Cloud Backup" not in fan and "Cloud Backup" not in html_of(sent["ai-fan@example.org"])
    assert lines(text_of(sent["everything@example.org"])) == {
        "Services": "AI Assistant, Cloud Backup",
        "Impact": "Major outage",
    }


def test_a_customers_pages_show_the_impact_on_their_own_services(
    client, world, backup, assistant, alice, charlie, django_capture_on_commit_callbacks
):
    incident, _ = opened(storage_outage(backup, assistant), NOW + MINUTE, django_capture_on_commit_callbacks)
    with time_machine.travel(NOW + 2 * MINUTE, tick=False):
        client.force_login(charlie)
        pages = [client.get(path).content.decode() for path in (f"/incidents/{incident.pk}/", "/incidents/", "/")]
        for page in pages:
            assert "Degraded performance" in page and "Major outage" not in page
        assert client.get(f"/api/v1/incidents/{incident.pk}/").json()["impact"] == "degraded"
        assert client.get("/api/v1/incidents/").json()["results"][0]["impact"] == "degraded"
        client.force_login(alice)
        assert "Major outage" in client.get(f"/incidents/{incident.pk}/").content.decode()
        assert client.get(f"/api/v1/incidents/{incident.pk}/").json()["impact"] == "major"


def test_a_claims_evidence_shows_the_impact_on_the_months_services(
    client, world, backup, assistant, charlie, django_capture_on_commit_callbacks
):
    from credits.closing import close_month
    from credits.services import claim_submit

    _, globex_c = world
    start = datetime(2026, 10, 10, 9, 0, tzinfo=UTC)
    outage = storage_outage(backup, assistant, starts_at=start, ends_at=start + 60 * MINUTE)
    with django_capture_on_commit_callbacks(execute=True):
        incident_open(outage=outage, title="Storage trouble", status="resolved", body="Over.", actor=None, now=NOW)
    close_month(month=date(2026, 10, 1), now=NOW)
    with time_machine.travel(NOW, tick=False):
        claim = claim_submit(contract=globex_c, month=date(2026, 10, 1), user=charlie, now=NOW)
        client.force_login(charlie)
        page = client.get(f"/claims/{claim.pk}/").content.decode()
    assert "Storage trouble" in page
    assert "(Degraded performance," in page and "Major outage" not in page
