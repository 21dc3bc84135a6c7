"""The customer's claim pages: the list, filing through a preview of the month's figures, the
refusals (not ended, late, twice, someone else's contract or ticket) as field errors with status
400 and nothing stored, one claim with its decision and evidence, and its files. Alice and Bob at
Acme, Charlie at Globex, Sam on support; clocks frozen; emails asserted."""

import base64
import re
from datetime import date, datetime, timedelta
from decimal import Decimal
from html import unescape
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from contracts.models import Outage
from credits.closing import close_month
from credits.models import Claim, ClaimAttachment, ClaimEvent, MonthlyUptime
from credits.services import claim_reject, claim_submit
from portal.models import OutboxMessage
from tickets.attachments import validate_upload
from tickets.services import ticket_open

from .factories import ContractFactory

NBO = ZoneInfo("Africa/Nairobi")
OCT = date(2026, 10, 1)
NOV_3 = datetime(2026, 11, 3, 10, 0, tzinfo=NBO)
NEW = reverse("claim-new")
LIST = reverse("claim-list")
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)
pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


@pytest.fixture
def bad_october(acme_contract):
    """500 minutes down on the 10th: 98.880% of October, the 10% tier, KES 15,000.00."""
    start = datetime(2026, 10, 10, 2, 0, tzinfo=NBO)
    o = Outage.objects.create(title="Storage down", starts_at=start, ends_at=start + timedelta(minutes=500))
    o.services.set(acme_contract.services.all())
    return acme_contract


@pytest.fixture
def closed_october(bad_october):
    close_month(month=OCT, now=datetime(2026, 11, 1, 1, 0, tzinfo=NBO))
    return bad_october


def stored() -> dict:
    """Every table filing a claim writes to."""
    models = (Claim, ClaimAttachment, ClaimEvent, OutboxMessage)
    return {m.__name__: m.objects.count() for m in models}


def login(client, user):
    client.force_login(user)
    return client


def text_of(response) -> str:
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", response.content.decode())).split())


def field_errors(response, field) -> list[str]:
    return list(response.context["form"].errors.get(field, []))


def preview(client, contract, month="2026-10"):
    return client.post(NEW, {"contract": contract.pk, "month": month, "action": "preview"})


def submit(client, contract, month="2026-10", **extra):
    return client.post(NEW, {"contract": contract.pk, "month": month, "action": "submit", "note": "", **extra})


def acme_ticket(contract, user, subject="Backups fail"):
    return ticket_open(
        user=user,
        contract=contract,
        service=contract.services.get(),
        priority="P1",
        subject=subject,
        description="Nothing backs up.",
    )


# --- The form -----------------------------------------------------------------------------------
def test_the_form_offers_the_months_still_claimable(client, alice, acme_contract):
    with time_machine.travel(NOV_3, tick=False):
        response = login(client, alice).get(NEW, {"contract": acme_contract.pk, "month": "2026-10"})
    html = response.content.decode()
    assert response.status_code == 200
    options = re.findall(r'<option value="(\d{4}-\d{2})"( selected)?>([^<]+)</option>', html)
    # October only: September's claims closed on 31 October; November has not ended.
    assert options == [("2026-10", " selected", "October 2026")]
    assert "Preview the credit" in html and "File the claim" not in html


def test_a_month_typed_into_the_url_stays_chosen(client, alice, acme_contract):
    with time_machine.travel(NOV_3, tick=False):
        html = login(client, alice).get(NEW, {"month": "2026-05"}).content.decode()
    assert '<option value="2026-05" selected>May 2026 (not on the list)</option>' in html


def test_the_preview_shows_the_months_figures_and_stores_nothing(client, alice, bob, closed_october, mailoutbox):
    before = stored()
    with time_machine.travel(NOV_3, tick=False):
        response = preview(login(client, alice), closed_october)
    assert response.status_code == 200
    page = text_of(response)
    assert "Cloud Backup for Acme, October 2026" in page
    assert "Uptime 98.880% against a guarantee of 99.8%" in page
    assert "Credit tier 10.0% of the month's invoice" in page
    assert "Eligible credit KES 15,000.00 (refund of the month's invoice)" in page
    assert "File the claim" in page
    assert stored() == before and not mailoutbox


def test_the_preview_closes_a_month_the_hourly_run_has_not_reached(client, alice, bad_october):
    with time_machine.travel(NOV_3, tick=False):
        response = preview(login(client, alice), bad_october)
    assert "Uptime 98.880%" in text_of(response)
    assert MonthlyUptime.objects.get(contract=bad_october, month=OCT).tier_percent == Decimal("10")
    assert not Claim.objects.exists()


def test_filing_stores_one_claim_with_its_evidence_and_emails_the_contacts(
    client, alice, bob, closed_october, mailoutbox, django_capture_on_commit_callbacks
):
    with time_machine.travel(NOV_3, tick=False):
        ticket = acme_ticket(closed_october, bob)
        mailoutbox.clear()
        login(client, alice)
        with django_capture_on_commit_callbacks(execute=True):
            response = submit(
                client,
                closed_october,
                note="Backups failed all morning on the 10th.",
                tickets=[ticket.pk],
                attachments=[SimpleUploadedFile("failed jobs.png", PNG, content_type="application/octet-stream")],
            )
    claim = Claim.objects.get()
    assert response.status_code == 302 and response.url == reverse("claim-detail", args=[claim.pk])
    assert (claim.month, claim.submitted_by, claim.note) == (OCT, alice, "Backups failed all morning on the 10th.")
    assert (claim.eligible_amount, claim.currency, claim.credit_kind) == (Decimal("15000.00"), "KES", "refund")
    assert list(claim.tickets.all()) == [ticket]
    attachment = claim.attachments.get()
    assert (attachment.original_name, attachment.content_type) == (
        "failed jobs.png",
        "image/png",
    )  # the content decides
    received = {m.to[0]: m for m in mailoutbox if "claim" in m.subject}
    assert set(received) == {alice.email, bob.email}
    assert received[bob.email].subject == "Service-credit claim received: KAL-0001, October 2026"
    assert "Eligible credit: KES 15,000.00 (10.0% of the month's invoice" in received[bob.email].body


def test_a_month_that_has_not_ended_is_refused_with_when_claims_open(client, alice, acme_contract):
    before = stored()
    with time_machine.travel(NOV_3, tick=False):
        login(client, alice)
        for response in (preview(client, acme_contract, "2026-11"), submit(client, acme_contract, "2026-11")):
            assert response.status_code == 400
            assert field_errors(response, "month") == [
                "November 2026 has not ended yet: claims open at 2026-12-01 00:00 (UTC+03:00)."
            ]
            assert "Month: November 2026 has not ended yet: claims open at" in text_of(response)  # the summary
    assert stored() == before and not MonthlyUptime.objects.exists()


def test_a_late_claim_is_refused_with_the_moment_it_was_due(client, alice, bad_october):
    with time_machine.travel(datetime(2026, 12, 1, 0, 0, tzinfo=NBO), tick=False):
        login(client, alice)
        for response in (preview(client, bad_october), submit(client, bad_october)):
            assert response.status_code == 400
            assert field_errors(response, "month") == [
                "Claims for October 2026 closed at 2026-12-01 00:00 (UTC+03:00) (30 days after the month's end)."
            ]
    assert not Claim.objects.exists()


def test_a_second_claim_for_the_month_is_refused(client, alice, bob, closed_october):
    with time_machine.travel(NOV_3, tick=False):
        claim_submit(contract=closed_october, month=OCT, user=alice)
        before = stored()
        login(client, bob)
        for response in (preview(client, closed_october), submit(client, closed_october)):
            assert response.status_code == 400
            assert field_errors(response, "month") == ["A claim for October 2026 was already filed for this contract."]
        # Claimed: no longer offered.
        assert "October 2026" not in client.get(NEW, {"contract": closed_october.pk}).content.decode()
    assert stored() == before


def test_a_malformed_month_is_a_field_error(client, alice, acme_contract):
    with time_machine.travel(NOV_3, tick=False):
        response = preview(login(client, alice), acme_contract, "2026-13")
    assert response.status_code == 400
    assert field_errors(response, "month") == ["Enter the month as YYYY-MM, e.g. 2026-10."]


def test_another_organisations_contract_is_refused(client, charlie, closed_october, globex_contract):
    with time_machine.travel(NOV_3, tick=False):
        login(client, charlie)
        for response in (preview(client, closed_october), submit(client, closed_october)):
            assert response.status_code == 400
            assert field_errors(response, "contract") == ["Choose one of your organisation's contracts."]
    assert not Claim.objects.exists()


def test_a_ticket_of_another_organisation_is_refused(client, alice, charlie, closed_october, globex_contract):
    with time_machine.travel(NOV_3, tick=False):
        theirs = acme_ticket(globex_contract, charlie, subject="Globex only")
        before = stored()
        response = submit(login(client, alice), closed_october, tickets=[theirs.pk])
    assert response.status_code == 400
    assert field_errors(response, "tickets") == ["Link only your organisation's tickets."]
    assert "Globex only" not in response.content.decode()  # never offered either
    assert "Uptime 98.880%" in text_of(response)  # the month is fine: its figures stay on the page
    assert stored() == before


def test_a_refused_file_keeps_the_figures_and_stores_nothing(client, alice, closed_october):
    exe = SimpleUploadedFile("report.png", b"MZ\x90\x00" + b"\x00" * 200, content_type="image/png")
    with time_machine.travel(NOV_3, tick=False):
        response = submit(login(client, alice), closed_october, attachments=[exe])
    assert response.status_code == 400
    assert field_errors(response, "attachments") == [
        "“report.png” is an executable file, which is not accepted: images (PNG, JPEG, GIF, WebP), PDF, ZIP/GZip, "
        "or text (.txt, .log, .csv, .json, .xml, .yaml, .yml, .conf, .ini)."
    ]
    assert "Eligible credit KES 15,000.00" in text_of(response)
    assert not Claim.objects.exists() and not ClaimAttachment.objects.exists()


def test_a_month_after_the_contract_ended_is_refused(client, alice, acme_contract):
    acme_contract.ends_on = date(2026, 9, 30)
    acme_contract.save()
    with time_machine.travel(NOV_3, tick=False):
        response = preview(login(client, alice), acme_contract)
    assert response.status_code == 400
    assert field_errors(response, "month") == ["The contract had ended before October 2026."]


def test_with_several_contracts_the_months_follow_the_chosen_one(client, alice, acme, closed_october):
    other = ContractFactory(organisation=acme, reference="KAL-0002", name="Archive for Acme")
    with time_machine.travel(NOV_3, tick=False):
        claim_submit(contract=closed_october, month=OCT, user=alice)
        login(client, alice)
        mine = client.get(NEW, {"contract": closed_october.pk}).content.decode()
        refreshed = client.post(NEW, {"contract": other.pk, "action": "refresh"}).content.decode()
    assert '<option value="2026-10">' not in mine
    assert '<option value="2026-10">October 2026</option>' in refreshed
    assert "Show this contract's months" in refreshed


# --- The list and one claim ---------------------------------------------------------------------
@pytest.fixture
def claim(closed_october, alice, bob):
    log = SimpleUploadedFile("log.txt", b"backup job 17 failed\n")
    log.checked_type = validate_upload(log)  # what the form and the API do before the service
    with time_machine.travel(NOV_3, tick=False):
        ticket = acme_ticket(closed_october, bob)
        return claim_submit(
            contract=closed_october, month=OCT, user=alice, note="Backups failed.", tickets=[ticket], files=[log]
        )


def test_the_list_shows_the_organisations_claims_and_the_months_still_open(
    client, bob, claim, charlie, globex_contract
):
    with time_machine.travel(NOV_3, tick=False):
        page = text_of(login(client, bob).get(LIST))
    assert f"Claim {claim.pk} Cloud Backup for Acme (KAL-0001) October 2026 Awaiting review KES 15,000.00 —" in page
    assert "No month is open for a claim right now." in page
    with time_machine.travel(NOV_3, tick=False):
        theirs = text_of(login(client, charlie).get(LIST))
    assert f"Claim {claim.pk}" not in theirs and "Your organisation has filed no claims yet." in theirs
    # Globex's own October is still claimable, not closed yet.
    assert (
        "October 2026 (AI Assistant for Globex) : The month's figures are computed when you file. Claims close"
        in theirs
    )


def test_staff_are_sent_to_the_admin(client, sam):
    with time_machine.travel(NOV_3, tick=False):
        assert login(client, sam).get(LIST).url == reverse("admin:index")


def test_one_claim_shows_its_figures_evidence_and_decision(client, alice, sam, claim):
    url = reverse("claim-detail", args=[claim.pk])
    with time_machine.travel(NOV_3, tick=False):
        page = text_of(login(client, alice).get(url))
    assert "Claim" in page and "Awaiting review" in page
    assert "Uptime 98.880% against a guarantee of 99.8%" in page and "Eligible credit KES 15,000.00" in page
    assert "Filed 2026-11-03 10:00 (UTC+03:00) by Alice Achieng" in page
    assert "log.txt" in page and "Backups fail" in page
    attachment = claim.attachments.get()
    with time_machine.travel(NOV_3 + timedelta(days=2), tick=False):
        claim_reject(claim=claim, actor=sam, reason="The outage was caused by unsupported equipment.")
        response = login(client, alice).get(url)
    page = text_of(response)
    assert "Decision Rejected on 2026-11-05 10:00 (UTC+03:00)" in page
    assert "Reason The outage was caused by unsupported equipment." in page
    assert f'href="{reverse("claim-attachment", args=[claim.pk, attachment.pk])}"' in response.content.decode()


def test_charlie_gets_404_for_acmes_claim_and_its_files(client, charlie, claim):
    attachment = claim.attachments.get()
    with time_machine.travel(NOV_3, tick=False):
        login(client, charlie)
        assert client.get(reverse("claim-detail", args=[claim.pk])).status_code == 404
        assert client.get(reverse("claim-attachment", args=[claim.pk, attachment.pk])).status_code == 404


def test_a_claim_file_downloads_as_an_attachment_never_as_a_page(client, bob, ayo, claim):
    attachment = claim.attachments.get()
    with time_machine.travel(NOV_3, tick=False):
        response = login(client, bob).get(reverse("claim-attachment", args=[claim.pk, attachment.pk]))
        assert client.get(reverse("claim-attachment", args=[claim.pk + 1, attachment.pk])).status_code == 404
    assert response.status_code == 200
    assert response["Content-Disposition"] == 'attachment; filename="log.txt"'
    assert response["Content-Type"] == "text/plain"
    assert response["X-Content-Type-Options"] == "nosniff"
    client.force_login(ayo)  # the staff's download, from the claim's admin page, the same way
    staff = client.get(reverse("admin:credits_claim_attachment", args=[claim.pk, attachment.pk]))
    assert (
        staff["Content-Disposition"] == 'attachment; filename="log.txt"'
        and staff["X-Content-Type-Options"] == "nosniff"
    )
    assert staff["Content-Security-Policy"] == "default-src 'none'; sandbox"
    assert b"".join(response.streaming_content) == b"backup job 17 failed\n"


def test_the_read_only_pages_reject_post(client, alice, claim):
    attachment = claim.attachments.get()
    with time_machine.travel(NOV_3, tick=False):
        login(client, alice)
        for url in (
            LIST,
            reverse("claim-detail", args=[claim.pk]),
            reverse("claim-attachment", args=[claim.pk, attachment.pk]),
        ):
            assert client.post(url).status_code == 405


def test_anonymous_is_sent_to_login(client, claim):
    for url in (LIST, NEW, reverse("claim-detail", args=[claim.pk])):
        response = client.get(url)
        assert response.status_code == 302 and response.url.startswith(reverse("login"))
