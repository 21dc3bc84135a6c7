"""The contract page a customer sees, scoped to their organisation."""

import pytest
from django.urls import reverse

from .factories import PASSWORD

pytestmark = pytest.mark.django_db


def test_login_page_uses_email(client):
    response = client.get(reverse("login"))
    assert response.status_code == 200
    assert b'type="email"' in response.content
    assert b"Forgotten your password?" in response.content


def test_user_logs_in_with_email(client, alice):
    response = client.post(reverse("login"), {"username": "ALICE@acme.example", "password": PASSWORD})
    assert response.status_code == 302
    assert response.url == reverse("dashboard")


def test_wrong_password_is_refused_with_a_message(client, alice):
    response = client.post(reverse("login"), {"username": "alice@acme.example", "password": "nope"})
    assert response.status_code == 200
    assert b"enter a correct email address and password" in response.content.lower()


def test_anonymous_is_sent_to_login(client, acme_contract):
    response = client.get(reverse("contract-detail", args=[acme_contract.pk]))
    assert response.status_code == 302
    assert response.url.startswith(reverse("login"))


def test_contract_page_shows_kaluari_terms_in_nairobi_time(client, alice, acme_contract):
    client.force_login(alice)
    response = client.get(reverse("contract-detail", args=[acme_contract.pk]))
    assert response.status_code == 200
    html = response.content.decode()
    # Support terms table: priority, meaning, availability, first response, resolution.
    assert "severely impacts your ability to push, process or trigger backup within 12 hours" in html
    assert "24x7 (Africa/Nairobi)" in html
    assert "Kenya business hours (Mon-Fri 08:00-17:00, Africa/Nairobi)" in html
    assert "15 min" in html and "within 1 h" in html
    assert "target 12 h, limit 24 h" in html and "target 24 h, limit 48 h" in html
    # Escalation ladder with channels and contacts.
    assert "support@kaluari.com" in html
    assert "+254 728 999 222" in html
    assert "Call your Account Manager" in html
    # Uptime guarantee and credit table, as the document writes them.
    assert "99.8%" in html
    assert "between 98.0% (included) and 99.0% (included)" in html
    assert "less than 90.0%" in html
    assert "2025-01-01 00:00 (UTC+03:00)" in html


def test_another_organisations_contract_is_404(client, alice, acme_contract, globex_contract):
    client.force_login(alice)
    assert client.get(reverse("contract-detail", args=[globex_contract.pk])).status_code == 404
    # ... exactly like a contract that does not exist: nothing confirms it is there.
    assert client.get(reverse("contract-detail", args=[globex_contract.pk + 1000])).status_code == 404


def test_dashboard_lists_only_own_contracts(client, charlie, acme_contract, globex_contract):
    client.force_login(charlie)
    html = client.get(reverse("dashboard")).content.decode()
    assert "AI Assistant for Globex" in html
    assert "Cloud Backup for Acme" not in html


def test_staff_are_sent_to_the_admin(client, sam):
    client.force_login(sam)
    response = client.get(reverse("dashboard"))
    assert response.status_code == 302 and response.url == reverse("admin:index")


def test_logout_rejects_get_and_works_by_post(client, alice):
    client.force_login(alice)
    assert client.get(reverse("logout")).status_code == 405
    assert client.post(reverse("logout")).status_code == 302
    assert client.get(reverse("dashboard")).status_code == 302


# --- The terms in force, the version to come and the history -------------------------------------
def test_the_contract_page_shows_the_terms_in_force_the_upcoming_version_and_the_history(
    client, alice, charlie, acme_contract, globex_contract
):
    import re
    from datetime import UTC, date, datetime, timedelta
    from decimal import Decimal

    import time_machine

    from contracts.services import sla_version_draft, sla_version_publish

    sla = acme_contract.sla
    now = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
    v2 = sla_version_draft(sla=sla, effective_on=date(2026, 11, 10), now=now)
    v2.uptime_guarantee = Decimal("99.5")
    v2.change_summary = "A lower guarantee while storage moves."
    v2.save()
    sla_version_publish(version=v2, now=now)
    v3 = sla_version_draft(sla=sla, effective_on=date(2027, 1, 1), now=now)
    v3.priorities.filter(priority="P1").update(first_response=timedelta(minutes=30))
    sla_version_publish(version=v3, now=now + timedelta(days=1))
    v4 = sla_version_draft(sla=sla, effective_on=date(2027, 2, 1), now=now)  # a draft: never shown
    v4.uptime_guarantee = Decimal("12.3")
    v4.save()

    with time_machine.travel(datetime(2026, 12, 1, 9, 0, tzinfo=UTC), tick=False):
        client.force_login(alice)
        response = client.get(reverse("contract-detail", args=[acme_contract.pk]))
        assert response.status_code == 200
        html = response.content.decode()
        text = " ".join(re.sub(r"<[^>]+>", " ", html).split())
        # In force: version 2, its guarantee.
        assert "version 2 in force since 2026-11-10 00:00 (UTC+03:00)" in text
        assert "Monthly uptime guarantee: 99.5%" in text
        # Upcoming: version 3, its date and what changes.
        assert "New terms from 2027-01-01 00:00 (UTC+03:00): version 3" in text
        assert "Published 2026-11-03 12:00 (UTC+03:00)" in text
        assert (
            "What changes against version 2 Term Until then From 2027-01-01 00:00 (UTC+03:00) Support clocks "
            "P1 first response 15 min (24x7 (Africa/Nairobi)) 30 min (24x7 (Africa/Nairobi))"
        ) in text
        # History: every published version, the latest first, with what each changed.
        history = " ".join(re.sub(r"<[^>]+>", " ", html.split('id="history"')[1].split("</section>")[0]).split())
        assert re.findall(r'id="history-v(\d)"', html) == ["3", "2", "1"]
        assert (
            "3 upcoming 2026-11-03 12:00 (UTC+03:00) 2027-01-01 00:00 (UTC+03:00) Support clocks "
            "P1 first response: 15 min (24x7 (Africa/Nairobi)) → 30 min (24x7 (Africa/Nairobi))"
        ) in history
        assert (
            "2 in force 2026-11-02 12:00 (UTC+03:00) 2026-11-10 00:00 (UTC+03:00) Uptime guarantee and credits "
            "Monthly uptime guarantee: 99.8% → 99.5% A lower guarantee while storage moves."
        ) in history
        assert "1 superseded 2025-01-01 00:00 (UTC+03:00) 2025-01-01 00:00 (UTC+03:00) The first version." in history
        assert "12.3" not in html and "version 4" not in text
        # Another organisation's contract is still a 404, whatever its history.
        client.force_login(charlie)
        assert client.get(reverse("contract-detail", args=[acme_contract.pk])).status_code == 404


def test_a_contract_page_without_upcoming_terms_shows_the_first_version_alone(client, alice, acme_contract):
    client.force_login(alice)
    html = client.get(reverse("contract-detail", args=[acme_contract.pk])).content.decode()
    assert "New terms from" not in html
    assert 'id="history-v1"' in html and "The first version." in html
