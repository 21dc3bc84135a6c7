"""A month's claim window is that of the terms that judged it (in force at its end), whatever is
published later. Before, every place read the terms in force now: October closed below the guarantee
under Kaluari v1 (30 days) and Alice was invited to claim until 1 December; a v2 with a 10-day window,
effective 10 November, then refused her claim on 15 November ("closed at 2026-11-11"), and the
reminder of 24 November still told her the window closed on 1 December."""

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core import mail

from contracts.choices import Cause
from contracts.models import SLA
from contracts.outages.services import outage_record
from contracts.services import sla_version_draft, sla_version_publish
from credits.closing import close_due, close_month
from credits.models import MonthlyUptime
from credits.notices import claim_reminders_send
from credits.selectors import claimable_months
from credits.services import claim_submit

pytestmark = pytest.mark.django_db
NBO = ZoneInfo("Africa/Nairobi")
OCT, NOV = date(2026, 10, 1), date(2026, 11, 1)
DEC_1 = datetime(2026, 12, 1, tzinfo=NBO)


def october_below_then_v2(contract, callbacks, **changes):
    """October closed below the guarantee under v1 (Nairobi, 30 days), then a v2 with `changes`
    published on 5 November, effective 10 November."""
    outage_record(
        title="Storage down", services=contract.services.all(),
        starts_at=datetime(2026, 10, 10, 8, 0, tzinfo=NBO), ends_at=datetime(2026, 10, 10, 16, 0, tzinfo=NBO),
        cause=Cause.UNPLANNED, actor=None, now=datetime(2026, 10, 10, 17, 0, tzinfo=NBO),
    )  # fmt: skip
    closed_at = datetime(2026, 11, 1, 1, 0, tzinfo=NBO)
    with time_machine.travel(closed_at, tick=False), callbacks(execute=True):
        close_due(now=closed_at)
    october = MonthlyUptime.objects.get(contract=contract, month=OCT)
    assert october.uptime_percent < october.guarantee
    assert october.claim_reminder_at == DEC_1 - timedelta(days=7)
    publish_at = datetime(2026, 11, 5, 9, 0, tzinfo=NBO)
    draft = sla_version_draft(
        sla=SLA.objects.get(template_key="kaluari-cloud-backup"), effective_on=date(2026, 11, 10), now=publish_at
    )
    for name, value in changes.items():
        setattr(draft, name, value)
    draft.save()
    sla_version_publish(version=draft, now=publish_at)
    return contract


@pytest.fixture
def october_below_then_a_shorter_window(acme_contract, django_capture_on_commit_callbacks):
    return october_below_then_v2(acme_contract, django_capture_on_commit_callbacks, claim_window_days=10)


def test_a_month_closed_under_a_30_day_window_is_claimable_for_30_days(october_below_then_a_shorter_window, alice):
    contract = october_below_then_a_shorter_window
    (invitation,) = [m for m in mail.outbox if m.to == [alice.email] and "claim" in m.subject]
    assert "2026-12-01 00:00 (UTC+03:00)." in invitation.body
    at = datetime(2026, 11, 30, 23, 0, tzinfo=NBO)
    assert claimable_months(contracts=[contract], now=at) == {contract.pk: [OCT]}
    claim = claim_submit(contract=contract, month=OCT, user=alice, now=at)
    assert claim.month == OCT
    assert claimable_months(contracts=[contract], now=DEC_1) == {contract.pk: [NOV]}  # October's closed


def test_the_reminder_comes_a_week_before_the_months_own_window_closes(
    october_below_then_a_shorter_window, alice, django_capture_on_commit_callbacks
):
    at = datetime(2026, 11, 24, 1, 0, tzinfo=NBO)
    mail.outbox.clear()
    with time_machine.travel(at, tick=False), django_capture_on_commit_callbacks(execute=True):
        assert claim_reminders_send(now=at) == 2  # Alice and Bob, the contract's people
    (reminder,) = [m for m in mail.outbox if m.to == [alice.email] and m.subject.startswith("Reminder")]
    assert "2026-12-01 00:00 (UTC+03:00)." in reminder.body
    assert claim_submit(contract=october_below_then_a_shorter_window, month=OCT, user=alice, now=at).month == OCT


def test_a_month_judged_by_the_shorter_window_closes_after_ten_days(october_below_then_a_shorter_window):
    contract = october_below_then_a_shorter_window
    december = datetime(2026, 12, 10, 23, 0, tzinfo=NBO)
    assert claimable_months(contracts=[contract], now=december) == {contract.pk: [NOV]}
    assert claimable_months(contracts=[contract], now=december + timedelta(hours=1)) == {contract.pk: []}


def test_a_month_judged_in_another_zone_is_offered_while_it_may_be_claimed(
    acme_contract, django_capture_on_commit_callbacks
):
    """The list stopped at a month closed by today's terms' zone (Kiritimati, UTC+14), though the
    month's own terms (Nairobi) let a claim be filed for 10 more hours."""
    from datetime import UTC

    from credits.services import claim_check

    # v2 in Kiritimati (UTC+14); October stays judged by v1 (Nairobi, 30 days).
    october_below_then_v2(acme_contract, django_capture_on_commit_callbacks, timezone="Pacific/Kiritimati")
    now = datetime(2026, 11, 30, 15, 0, tzinfo=UTC)  # 18:00 in Nairobi: October's window closes at 24:00
    claim_check(contract=acme_contract, month=OCT, now=now)  # accepted: the claim may be filed
    assert OCT in claimable_months(contracts=[acme_contract], now=now)[acme_contract.pk]


def test_terms_in_a_zone_further_east_do_not_close_the_month_before_it_ends(acme_contract):
    """v2 in Auckland (UTC+13) takes effect on 1 December there, 30 November 11:00 UTC. November is
    judged by v1 (Nairobi), whose November ends at 21:00 UTC: the month-end run at 12:00 UTC closed it
    with ten hours still to come, and what they held was never counted."""
    from datetime import UTC

    from credits.figures import contract_month_figures
    from credits.services import ClaimError, claim_check
    from portal.domain.dates import local_midnight

    sla = SLA.objects.get(template_key="kaluari-cloud-backup")
    published = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
    with time_machine.travel(published, tick=False):
        draft = sla_version_draft(sla=sla, effective_on=date(2026, 12, 2), now=published)
        draft.timezone = "Pacific/Auckland"
        draft.effective_from = local_midnight(date(2026, 12, 1), "Pacific/Auckland")  # as the admin sets it
        draft.save()
        sla_version_publish(version=draft, now=published)
    nairobi_end = datetime(2026, 12, 1, tzinfo=NBO)
    noon = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    assert close_month(month=NOV, now=noon) == 0
    assert not MonthlyUptime.objects.filter(contract=acme_contract, month=NOV).exists()
    with pytest.raises(ClaimError, match="has not ended yet: claims open at 2026-12-01 00:00"):
        claim_check(contract=acme_contract, month=NOV, now=noon)
    live = contract_month_figures(contract=acme_contract, month=NOV, now=noon)  # as it stands
    assert (live.timezone, live.period_end) == ("Africa/Nairobi", nairobi_end)

    outage_record(
        title="Storage down", services=acme_contract.services.all(), starts_at=noon + timedelta(hours=1),
        ends_at=noon + timedelta(hours=2), cause=Cause.UNPLANNED, actor=None, now=noon + timedelta(hours=3),
    )  # fmt: skip
    assert close_month(month=NOV, now=nairobi_end) == 1
    november = MonthlyUptime.objects.get(contract=acme_contract, month=NOV)
    assert (november.sla_version.number, november.period_end) == (1, nairobi_end)
    assert november.down_minutes == 60  # the hour after the run that closed too early
    # December is v2's, in Auckland, and starts where November ended: the hours between the two
    # midnights (30 Nov 11:00-21:00 UTC) are November's alone, the outage's hour counted once.
    assert close_month(month=date(2026, 12, 1), now=datetime(2027, 1, 1, tzinfo=NBO)) == 1
    december = MonthlyUptime.objects.get(contract=acme_contract, month=date(2026, 12, 1))
    assert (december.sla_version_id, december.period_start) == (draft.pk, nairobi_end)
    assert december.down_minutes == 0
    assert december.period_end == local_midnight(date(2027, 1, 1), "Pacific/Auckland")


def test_an_outage_at_a_zone_change_is_downtime_of_one_month_only(acme_contract):
    """v1 (Nairobi) judges November, v2 (Auckland, from 1 December there) December: the hours
    between the two midnights belong to November alone (PRODUCT.md: never counted twice)."""
    from portal.domain.dates import local_midnight

    sla = SLA.objects.get(template_key="kaluari-cloud-backup")
    published = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
    with time_machine.travel(published, tick=False):
        draft = sla_version_draft(sla=sla, effective_on=date(2026, 12, 2), now=published)
        draft.timezone = "Pacific/Auckland"
        draft.effective_from = local_midnight(date(2026, 12, 1), "Pacific/Auckland")  # 30 Nov 11:00 UTC
        draft.save()
        sla_version_publish(version=draft, now=published)
    start = datetime(2026, 11, 30, 13, 0, tzinfo=UTC)  # 16:00 Nairobi (November), 02:00 Auckland (December)
    outage_record(
        title="Storage down", services=acme_contract.services.all(), starts_at=start,
        ends_at=start + timedelta(hours=1), cause=Cause.UNPLANNED, actor=None, now=start + timedelta(hours=2),
    )  # fmt: skip
    close_month(month=date(2026, 11, 1), now=datetime(2026, 12, 1, 1, tzinfo=NBO))
    close_month(month=date(2026, 12, 1), now=datetime(2027, 1, 1, 1, tzinfo=NBO))
    november = MonthlyUptime.objects.get(contract=acme_contract, month=date(2026, 11, 1))
    december = MonthlyUptime.objects.get(contract=acme_contract, month=date(2026, 12, 1))
    # The hour is downtime once.
    assert november.down_minutes + december.down_minutes == 60, (november.down_minutes, december.down_minutes)
    # The periods meet: one month's end is the next one's start.
    assert november.period_end <= december.period_start, (november.period_end, december.period_start)
