"""Proven in a real browser: new SLA terms from draft to the customer's contract page.

A superuser opens a draft of the Kaluari terms, presses "Publish…", reads on the confirmation page
what changes against the version in force and who is told, and confirms; Alice then finds the
upcoming version, its changes and the history of the terms on her contract page. Screenshots:
/tmp/sla-publish.png (the confirmation) and /tmp/sla-history.png (the history), besides
var/screenshots/. Each page passes axe-core and the CSP. The live server runs on the real clock: the
versions are dated from timezone.now()."""

import re
import shutil
from datetime import timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from contracts.models import SLA
from contracts.services import sla_version_draft, sla_version_publish
from portal.domain.formats import in_tz
from portal.models import OutboxMessage

from .factories import ContractFactory, StaffFactory
from .test_browser import assert_accessible, text

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

NBO = ZoneInfo("Africa/Nairobi")


def visit(page, screenshot, name: str, copy_to: str | None = None):
    page.wait_for_load_state("load")
    path = screenshot(page, name)
    if copy_to:
        shutil.copy(path, copy_to)
    assert_accessible(page, name)


def test_staff_publish_new_terms_after_a_confirmation_and_alice_sees_them(
    logged_in_page, screenshot, acme, alice, bob, globex, charlie
):
    now = timezone.now()
    today = now.astimezone(NBO).date()
    kaluari = SLA.objects.get(template_key="kaluari-cloud-backup")
    backup = ContractFactory(
        organisation=acme, reference="KAL-0001", name="Cloud Backup for Acme", contacts=[alice, bob],
        starts_on=today.replace(day=1) - timedelta(days=200),
    )  # fmt: skip
    ContractFactory(organisation=globex, reference="KAL-0002", name="Restore for Globex", contacts=[charlie])
    # Version 2, in force since the 1st of a month ago: a higher guarantee.
    past = now - timedelta(days=60)
    v2_on = (today - timedelta(days=30)).replace(day=1)
    v2 = sla_version_draft(sla=kaluari, effective_on=v2_on, now=past)
    v2.uptime_guarantee = Decimal("99.9")
    v2.change_summary = "A higher guarantee now that backups are replicated to a second site."
    v2.save()
    sla_version_publish(version=v2, now=past)
    # Version 3, the draft to publish: from the 1st of the month after next.
    v3_on = (today.replace(day=1) + timedelta(days=40)).replace(day=1)
    v3 = sla_version_draft(sla=kaluari, effective_on=v3_on)
    v3.change_summary = "Faster first response for production incidents; a longer notice of maintenance."
    v3.maintenance_notice = timedelta(hours=72)
    v3.save()
    v3.priorities.filter(priority="P1").update(first_response=timedelta(minutes=10))
    v3.credit_tiers.filter(percent=Decimal("50")).update(percent=Decimal("60"))
    admin = StaffFactory(email="admin@vendor.example", name="Ada Admin", is_superuser=True, staff_role="")

    # The superuser: the draft's page, "Publish…", the confirmation.
    page = logged_in_page(admin)
    page.wait_for_url(re.compile(r"/admin/$"))
    page.goto(f"/admin/contracts/slaversion/{v3.pk}/change/")
    assert "A draft: customers see nothing of it until it is published." in text(page.locator("#content"))
    screenshot(page, "39-sla-draft")  # not axe: Django's tabular inlines label their cells by column only
    page.get_by_role("button", name="Publish…").click()
    page.wait_for_url(re.compile(r"/admin/contracts/slaversion/$"))
    assert page.get_by_role("heading", level=1).inner_text() == "Publish SLA terms"
    section = text(page.locator(f"#publish-{v3.pk}"))
    effective = in_tz(v3.effective_from, "Africa/Nairobi")
    assert f"Takes effect {effective} (Africa/Nairobi), after version 2" in section
    assert "Monthly uptime guarantee" not in section  # the same as version 2's
    assert "P1 first response 15 min (24x7 (Africa/Nairobi)) 10 min (24x7 (Africa/Nairobi))" in section
    assert "Credit for monthly uptime less than 90.0% 50.0% of the invoice 60.0% of the invoice" in section
    assert "Notice before maintenance 48 h 72 h" in section
    assert "Who is told (3 contacts, one email each)" in section
    assert "Alice" in section and "charlie@globex.example" in section
    assert not OutboxMessage.objects.filter(key__startswith=f"sla-version:{v3.pk}:").exists()  # none by looking
    visit(page, screenshot, "40-sla-publish-confirmation", copy_to="/tmp/sla-publish.png")
    page.get_by_role("button", name="Publish and email 1 version").click()
    page.wait_for_load_state("load")
    assert f"{v3} published; 3 contact(s) notified." in text(page.locator(".messagelist"))
    v3.refresh_from_db()
    assert v3.published_at is not None
    assert OutboxMessage.objects.filter(key__startswith=f"sla-version:{v3.pk}:").count() == 3

    # Alice: her contract page, the terms in force, the version to come and the history.
    page = logged_in_page(alice)
    page.goto(f"/contracts/{backup.pk}/")
    page.wait_for_load_state("load")
    head = text(page.locator("main p.muted").first)
    assert f"version 2 in force since {in_tz(v2.effective_from, 'Africa/Nairobi')}" in head
    upcoming = text(page.locator("#upcoming-v3"))
    assert f"New terms from {effective}: version 3" in upcoming
    assert "P1 first response 15 min (24x7 (Africa/Nairobi)) 10 min (24x7 (Africa/Nairobi))" in upcoming
    history = page.locator("#history")
    rows = [text(r) for r in history.locator("tbody tr").all()]
    assert [r.split()[:2] for r in rows] == [["3", "upcoming"], ["2", "in"], ["1", "superseded"]]
    assert "Monthly uptime guarantee: 99.8% → 99.9%" in rows[1] and "replicated to a second site" in rows[1]
    assert "The first version." in rows[2]
    visit(page, screenshot, "41-contract-history")
    history.scroll_into_view_if_needed()
    history.screenshot(path="/tmp/sla-history.png")
