"""The bug bounty: security.txt and vulnerability reports seen only by security staff."""

import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core import mail
from django.utils import timezone

from tickets.models import Ticket

from .factories import StaffFactory

pytestmark = pytest.mark.django_db
STO = ZoneInfo("Europe/Stockholm")


def test_security_txt_follows_rfc_9116(client, settings):
    settings.SECURITY_TXT_EXPIRES = "2027-11-22T12:00:00Z"
    with time_machine.travel(datetime(2026, 11, 22, 12, 0, tzinfo=ZoneInfo("UTC")), tick=False):
        response = client.get("/.well-known/security.txt")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/plain")
    fields = dict(line.split(": ", 1) for line in response.content.decode().splitlines() if ": " in line)
    body = response.content.decode()
    assert "Contact: http://127.0.0.1:8000/security/report/" in body
    assert "Contact: mailto:security@vendor.example" in body
    assert fields["Expires"] == "2027-11-22T12:00:00Z"
    assert fields["Policy"] == "http://127.0.0.1:8000/security/policy/"
    assert fields["Preferred-Languages"] == "en"
    assert fields["Canonical"] == "http://127.0.0.1:8000/.well-known/security.txt"


def security_txt_expires(client) -> str:
    lines = client.get("/.well-known/security.txt").content.decode().splitlines()
    return next(line.removeprefix("Expires: ") for line in lines if line.startswith("Expires: "))


def test_security_txt_expires_when_configured_whenever_it_is_asked(client, settings):
    """Its Expires was a year from each request: a promise that nobody renewed, never expiring."""
    settings.SECURITY_TXT_EXPIRES = "2027-06-30T02:00:00+02:00"
    for now in (datetime(2026, 11, 22, 12, 0, tzinfo=STO), datetime(2027, 3, 1, 8, 30, tzinfo=STO)):
        with time_machine.travel(now, tick=False):
            assert security_txt_expires(client) == "2027-06-30T00:00:00Z"  # in UTC, as RFC 9116 writes it


def test_the_embedded_default_expires_within_a_year():

    from portal.site.security_views import expires_at

    assert timedelta(days=300) < expires_at() - timezone.now() <= timedelta(days=365)


@pytest.mark.parametrize(
    ("expires", "level", "check_id"),
    [
        ("2027-03-01T00:00:00Z", None, None),  # 99 days ahead
        ("2026-12-22T12:00:00Z", "WARNING", "portal.W001"),  # 30 days
        ("2026-11-23T12:00:00+01:00", "WARNING", "portal.W001"),
        ("2026-11-22T12:00:00Z", "ERROR", "portal.E002"),  # passed
        ("2020-01-01T00:00:00Z", "ERROR", "portal.E002"),
        ("2028-01-01T00:00:00Z", "WARNING", "portal.W002"),  # over a year ahead
        ("2027-06-30", "ERROR", "portal.E001"),  # a date, not a date-time
        ("2027-06-30T00:00:00", "ERROR", "portal.E001"),  # no offset
        ("2027-13-30T00:00:00Z", "ERROR", "portal.E001"),
        ("", "ERROR", "portal.E001"),
    ],
)
def test_a_system_check_warns_30_days_ahead_and_errors_once_it_passed(settings, expires, level, check_id):
    from django.core import checks

    settings.SECURITY_TXT_EXPIRES = expires
    with time_machine.travel(datetime(2026, 11, 22, 12, 0, tzinfo=ZoneInfo("UTC")), tick=False):
        found = [m for m in checks.run_checks(tags=[checks.Tags.security]) if m.id.startswith("portal.")]
    if level is None:
        assert found == []
    else:
        [message] = found
        assert (message.id, message.is_serious(), "SECURITY_TXT_EXPIRES" in message.msg) == (
            check_id, level == "ERROR", True
        )  # fmt: skip


def test_a_report_without_login_creates_a_security_ticket_and_a_receipt(
    client, alice, django_capture_on_commit_callbacks
):
    security = StaffFactory(email="sol@vendor.example", staff_role="security")
    at = datetime(2026, 12, 11, 15, 0, tzinfo=STO)  # a Friday afternoon
    with time_machine.travel(at, tick=False), django_capture_on_commit_callbacks(execute=True):
        response = client.post("/security/report/", {
            "name": "Eve Researcher", "email": "eve@research.example",
            "summary": "Stored XSS in ticket subject", "details": "<script>alert(1)</script> in the subject field",
        })  # fmt: skip
    assert response.status_code == 302 and response.url == "/security/report/done/"
    ticket = Ticket.objects.get()
    assert ticket.kind == "security" and ticket.organisation.slug == "security-reports"
    # Klart's pledge: acknowledged within 4 business hours: Friday 15:00-17:00, Monday 08:00-10:00.
    assert ticket.first_response_due.astimezone(STO).replace(tzinfo=None) == datetime(2026, 12, 14, 10, 0)
    by_to = {m.to[0]: m for m in mail.outbox}
    assert (
        "Our security team will acknowledge it by 2026-12-14 10:00 (UTC+01:00)." in by_to["eve@research.example"].body
    )
    assert by_to[security.email].subject == f"[#{ticket.pk}] New vulnerability report"  # none of its words
    # The reporter's record can never log in.
    assert not ticket.created_by.is_active and not ticket.created_by.has_usable_password()
    # Customers never see it, not even in their own lists.
    client.force_login(alice)
    assert "Stored XSS" not in client.get("/tickets/").content.decode()


def test_only_security_staff_see_reports_in_the_admin(client):
    from tickets.security import security_report_submit

    security_report_submit(email="eve@research.example", name="Eve", summary="SQL injection", details="...")
    sam = StaffFactory(email="sam@vendor.example", staff_role="support_agent")
    sol = StaffFactory(email="sol@vendor.example", staff_role="security")
    client.force_login(sam)
    assert "SQL injection" not in client.get("/admin/tickets/ticket/").content.decode()
    client.force_login(sol)
    assert "SQL injection" in client.get("/admin/tickets/ticket/").content.decode()


def test_a_report_is_assigned_to_security_staff_only(client):
    """Only security staff see a report: assigned to anyone else, it was a ticket its assignee
    could not open. The form offers security staff alone; the service refuses the rest."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Permission
    from django.urls import reverse

    from portal.core.roles import security_staff, sees_security
    from tickets.security import security_report_submit
    from tickets.services import TicketError, ticket_assign

    report = security_report_submit(email="eve@research.example", name="Eve", summary="SQL injection", details="...")
    sam = StaffFactory(email="sam@vendor.example", staff_role="support_agent")
    sol = StaffFactory(email="sol@vendor.example", staff_role="security")
    sec2 = StaffFactory(email="sec2@vendor.example", staff_role="security")
    boss = StaffFactory(email="boss@vendor.example", staff_role="support_lead", is_superuser=True)
    client.force_login(sol)
    page = client.get(reverse("admin:tickets_ticket_change", args=[report.pk]))
    offered = {u.email for u in page.context["op_forms"]["assign"].fields["assignee"].queryset}
    assert offered == {"sol@vendor.example", "sec2@vendor.example"}  # not the superuser without the role
    # Whom the form offers and who sees reports are one rule (portal.core.roles, asked two ways).
    granted = StaffFactory(email="named@vendor.example", staff_role="", is_superuser=True)
    granted.user_permissions.add(Permission.objects.get(codename="view_security_report"))
    staff = get_user_model().objects.filter(is_staff=True)
    assert {u.email for u in staff if sees_security(u)} == {u.email for u in security_staff(staff)} == {
        "sol@vendor.example", "sec2@vendor.example", "named@vendor.example"
    }  # fmt: skip
    refused = client.post(reverse("admin:tickets_ticket_assign", args=[report.pk]), {"assignee": sam.pk})
    assert refused.status_code == 400
    report.refresh_from_db()
    assert report.assignee is None
    assert (
        client.post(reverse("admin:tickets_ticket_assign", args=[report.pk]), {"assignee": sec2.pk}).status_code == 302
    )
    report.refresh_from_db()
    assert report.assignee == sec2
    for outsider in (sam, boss):
        with pytest.raises(TicketError, match="security staff only"):
            ticket_assign(ticket=report, actor=sol, assignee=outsider)
    report.refresh_from_db()
    assert report.assignee == sec2
    # The page says so, and a support ticket is assigned to any staff member, as before.
    assert "A vulnerability report is assigned to security staff only." in refused.content.decode()


def test_a_bad_report_is_refused_with_field_messages_and_nothing_stored(client):
    response = client.post("/security/report/", {"email": "not-an-email", "summary": "x" * 500, "details": ""})
    assert response.status_code == 400
    html = response.content.decode()
    assert "Enter a valid email address." in html
    assert re.search(r"Ensure this value has at most 200 characters", html)
    assert "This field is required." in html
    assert not Ticket.objects.exists()


def test_the_form_escapes_what_it_echoes(client):
    response = client.post(
        "/security/report/", {"email": "x", "summary": "<img src=x onerror=alert(1)>", "details": ""}
    )
    assert b"<img src=x onerror" not in response.content
    assert b"&lt;img src=x onerror=alert(1)&gt;" in response.content
