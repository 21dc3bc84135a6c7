"""The append-only audit log: who, when, from where, before and after, for the actions that matter."""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine

from contracts.models import SLA, Outage
from portal.models import AuditEntry
from tickets.services import ticket_change_priority, ticket_exclude, ticket_open

from .factories import StaffFactory

pytestmark = pytest.mark.django_db
NBO = ZoneInfo("Africa/Nairobi")


@pytest.fixture
def ticket(acme_contract, alice):
    with time_machine.travel(datetime(2026, 12, 11, 16, 0, tzinfo=NBO), tick=False):
        return ticket_open(user=alice, contract=acme_contract, service=acme_contract.services.get(), priority="P3",
                           subject="Restore fails", description="x")  # fmt: skip


def test_priority_change_and_exclusion_are_audited(ticket, sam):
    ticket_change_priority(ticket=ticket, actor=sam, priority="P1", reason="Production is down.")
    ticket_exclude(ticket=ticket, actor=sam, cause="unsupported_equipment", reason="Windows XP agent")
    entries = list(AuditEntry.objects.order_by("id").values_list("action", "actor_email", "before", "after"))
    assert entries == [
        ("ticket.priority_changed", sam.email, {"priority": "P3"}, {"priority": "P1", "reason": "Production is down."}),
        (
            "ticket.excluded",
            sam.email,
            {"cause": "", "reason": ""},
            {"cause": "unsupported_equipment", "reason": "Windows XP agent"},
        ),
    ]


def test_an_admin_action_records_where_it_came_from(client, acme_contract):
    sam = StaffFactory(email="sam@vendor.example")
    o = Outage.objects.create(
        title="Storage", starts_at=datetime(2026, 10, 1, tzinfo=NBO), ends_at=datetime(2026, 10, 1, 1, tzinfo=NBO)
    )
    from contracts.outages.services import outage_set_cause

    client.force_login(sam)
    # Through a request: the middleware hands the client's address to the audit log.
    from portal.core.audit import AuditContextMiddleware

    def view(request):
        outage_set_cause(outage=o, actor=sam, cause="ddos")
        return None

    request = (
        __import__("django.test", fromlist=["RequestFactory"]).RequestFactory().post("/", REMOTE_ADDR="203.0.113.9")
    )
    AuditContextMiddleware(view)(request)
    entry = AuditEntry.objects.get(action="outage.cause_changed")
    assert (entry.ip, entry.before, entry.after) == ("203.0.113.9", {"cause": "unplanned"}, {"cause": "ddos"})


def test_sla_terms_edited_in_the_admin_are_audited_with_before_and_after(client):
    """A draft's terms (a published version's never change: tests/test_sla_versions.py)."""
    from contracts.services import sla_version_draft

    ayo = StaffFactory(email="ayo@vendor.example", staff_role="account_manager")
    now = datetime(2026, 11, 2, 12, 0, tzinfo=NBO)
    version = sla_version_draft(
        sla=SLA.objects.get(template_key="kaluari-cloud-backup"), effective_on=datetime(2026, 12, 1).date(), now=now
    )
    url = f"/admin/contracts/slaversion/{version.pk}/change/"
    from tests.test_admin import get_change_form  # the admin form helper: what a browser would submit

    with time_machine.travel(now, tick=False):
        client.force_login(ayo)
        data = get_change_form(client, version)
        data["uptime_guarantee"] = "99.500"
        response = client.post(url, data)
    assert response.status_code == 302
    entry = AuditEntry.objects.get(action="sla_terms.edited")
    assert entry.before == {"uptime_guarantee": "99.800"} and entry.after == {"uptime_guarantee": "99.500"}
    assert entry.actor_email == ayo.email and entry.ip == "127.0.0.1"


def test_sla_terms_edit_records_what_changed_and_nothing_when_the_saving_fails(sam):
    from datetime import date

    from contracts.services import sla_terms_edit, sla_version_draft

    version = sla_version_draft(sla=SLA.objects.get(template_key="kaluari-cloud-backup"), effective_on=date(2027, 1, 1))
    edits = AuditEntry.objects.filter(action="sla_terms.edited")
    with sla_terms_edit(version=version, actor=sam, created=False):
        pass  # nothing changed: no entry
    assert not edits.exists()
    with pytest.raises(RuntimeError), sla_terms_edit(version=version, actor=sam, created=False):
        version.claim_window_days = 45
        version.save(update_fields=["claim_window_days"])
        raise RuntimeError("the inlines did not validate")
    version.refresh_from_db()
    assert version.claim_window_days != 45 and not edits.exists()  # rolled back, not recorded
    with sla_terms_edit(version=version, actor=sam, created=False):
        before, version.claim_window_days = version.claim_window_days, 45
        version.save(update_fields=["claim_window_days"])
    assert [(e.before, e.after) for e in edits] == [({"claim_window_days": before}, {"claim_window_days": 45})]


def test_the_log_cannot_be_edited_or_deleted_in_the_admin_or_the_orm(client, ticket, sam, sol, ada):
    ticket_change_priority(ticket=ticket, actor=sam, priority="P1", reason="Production is down.")
    entry = AuditEntry.objects.get()
    client.force_login(sol)  # security staff read the log; nobody edits it, a superuser neither (below)
    change = f"/admin/portal/auditentry/{entry.pk}/change/"
    page = client.get(change)
    assert page.status_code == 200 and b'name="_save"' not in page.content  # read-only view
    assert client.post(change, {"action": "forged"}).status_code == 403
    assert client.get(f"/admin/portal/auditentry/{entry.pk}/delete/").status_code == 403
    assert client.get("/admin/portal/auditentry/add/").status_code == 403
    response = client.post("/admin/portal/auditentry/", {"action": "delete_selected", "_selected_action": [entry.pk]})
    assert AuditEntry.objects.filter(pk=entry.pk).exists(), response.status_code
    client.force_login(ada)
    assert client.post(change, {"action": "forged"}).status_code == 403
    assert client.get(f"/admin/portal/auditentry/{entry.pk}/delete/").status_code == 403
    entry.action = "forged"
    with pytest.raises(PermissionError):
        entry.save()
    with pytest.raises(PermissionError):
        entry.delete()
    assert AuditEntry.objects.get().action == "ticket.priority_changed"


def test_claims_and_reopened_months_are_audited(acme_contract, alice, sam):
    from credits.services import claim_approve, claim_submit, month_reopen

    start = datetime(2026, 10, 10, 2, 0, tzinfo=NBO)
    o = Outage.objects.create(title="Storage", starts_at=start, ends_at=start + timedelta(minutes=500))
    o.services.set(acme_contract.services.all())
    with time_machine.travel(datetime(2026, 11, 3, tzinfo=NBO), tick=False):
        claim = claim_submit(contract=acme_contract, month=datetime(2026, 10, 1).date(), user=alice)
    month_reopen(monthly_uptime=claim.monthly_uptime, actor=sam, reason="cause corrected")
    from credits.closing import close_month

    close_month(month=claim.month, now=datetime(2026, 11, 4, tzinfo=NBO))
    claim_approve(claim=claim, actor=sam, amount=claim.eligible_amount - 1, reason="goodwill")
    assert list(AuditEntry.objects.order_by("id").values_list("action", flat=True)) == [
        "month.reopened", "month.rejudged", "claim.adjusted", "claim.approved",
    ]  # fmt: skip
