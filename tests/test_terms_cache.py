"""SLA terms kept across requests while the terms revision holds (tickets.terms_cache,
contracts.terms_revision): one row read instead of nine queries, and never an old term after a
change, whichever way the change is made. Terms are changed in a draft (a published version's never
change) and in a calendar no published version uses; the revision is one for all terms."""

from datetime import time, timedelta

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from contracts import terms_revision
from contracts.models import (
    SLA,
    ClosedDate,
    EscalationDwell,
    EscalationLevel,
    PriorityTerm,
    SLAVersion,
    TermsRevision,
    WorkingCalendar,
    WorkingHours,
)
from contracts.services import sla_version_draft
from tickets import terms_cache
from tickets.terms_cache import TermsCache

pytestmark = pytest.mark.django_db


@pytest.fixture
def version():
    terms_cache.forget()
    return SLA.objects.get(template_key="kaluari-cloud-backup").versions.get(number=1)


def in_a_month():
    return (timezone.now() + timedelta(days=30)).date()


@pytest.fixture
def draft(version):
    return sla_version_draft(sla=version.sla, effective_on=in_a_month())


def load(version_id: int) -> tuple[SLAVersion, int]:
    """The version as a new request's TermsCache sees it, and the queries that took."""
    with CaptureQueriesContext(connection) as ctx:
        cache = TermsCache()
        loaded = cache.version(version_id)
        list(loaded.priorities.all())
    return loaded, len(ctx.captured_queries)


def first_response(version_id: int, priority: str = "P1") -> timedelta:
    return TermsCache().term(version_id, priority).first_response


def test_a_second_request_reads_only_the_revision(version):
    _, cold = load(version.pk)
    again, warm = load(version.pk)
    assert cold == 7  # the revision, the version with its SLA, and the prefetches of its terms
    assert warm == 1  # the revision row alone
    assert again.pk == version.pk and again.priorities.all()


@pytest.mark.parametrize(
    "edit",
    [
        pytest.param(lambda v: PriorityTerm.objects.filter(version=v, priority="P1").first().save(), id="save"),
        pytest.param(lambda v: v.escalation_levels.order_by("-level").first().delete(), id="delete"),
    ],
)
def test_every_save_or_delete_of_a_term_moves_the_revision(draft, edit):
    before = TermsRevision.objects.get().token
    edit(draft)
    assert TermsRevision.objects.get().token != before


def test_an_edited_term_is_served_at_once(draft):
    assert first_response(draft.pk) == timedelta(minutes=15)
    term = PriorityTerm.objects.get(version=draft, priority="P1")
    term.first_response = timedelta(minutes=10)
    term.save()
    assert first_response(draft.pk) == timedelta(minutes=10)


def test_calendar_hours_closed_dates_levels_and_dwells_are_watched(version, draft):
    term = PriorityTerm.objects.select_related("calendar").get(version=version, priority="P3")
    unused = WorkingCalendar.objects.create(name="Not in any terms yet", timezone="Africa/Nairobi")
    hours = WorkingHours.objects.create(calendar=unused, weekday=0, opens=time(8), closes=time(17))
    cases = [
        lambda: hours.save(),
        lambda: ClosedDate.objects.create(calendar=term.calendar, date=term.calendar.updated_at.date()),
        lambda: EscalationLevel.objects.filter(version=draft).first().save(),
        lambda: EscalationDwell.objects.filter(version=draft).first().save(),
        lambda: version.sla.save(),
        lambda: draft.save(),
    ]
    for change in cases:
        load(version.pk)
        change()
        _, queries = load(version.pk)
        assert queries == 7, "the change did not make the next request reload the terms"


def test_a_closed_date_added_closes_the_clock(version):
    term = TermsCache().term(version.pk, "P3")
    monday = term.calendar.updated_at.date() + timedelta(days=7 - term.calendar.updated_at.weekday())
    assert monday not in TermsCache().targets(version.pk, "P3").clock.holidays
    ClosedDate.objects.create(calendar_id=term.calendar_id, date=monday, reason="Staff day")
    assert monday in TermsCache().targets(version.pk, "P3").clock.holidays


def test_a_draft_copied_in_bulk_moves_the_revision(version):
    before = TermsRevision.objects.get().token
    draft = sla_version_draft(sla=version.sla, effective_on=in_a_month())
    assert TermsRevision.objects.get().token != before
    assert {p.priority for p in TermsCache().version(draft.pk).priorities.all()} == {"P1", "P2", "P3", "P4"}


def test_a_rolled_back_edit_leaves_no_trace(draft):
    load(draft.pk)
    with pytest.raises(RuntimeError), transaction.atomic():
        term = PriorityTerm.objects.get(version=draft, priority="P1")
        term.first_response = timedelta(minutes=5)
        term.save()
        assert first_response(draft.pk) == timedelta(minutes=5)  # this transaction sees its edit
        raise RuntimeError("abandon the edit")
    # The token went back to the committed one; what was read under the rolled-back token is
    # never served under it.
    assert first_response(draft.pk) == timedelta(minutes=15)


def test_without_a_revision_row_nothing_is_kept(version):
    TermsRevision.objects.all().delete()
    assert terms_revision.current() is None
    load(version.pk)
    _, queries = load(version.pk)
    assert queries == 7
    terms_revision.bump()  # the next change creates the row again
    assert terms_revision.current() is not None


def test_a_revision_read_with_other_rows_is_the_same_token_and_costs_no_query(draft):
    """The ticket page reads the token as a column of its ticket query (terms_revision.column())."""
    annotated = SLAVersion.objects.annotate(rev=terms_revision.column()).get(pk=draft.pk).rev
    assert str(annotated) == terms_revision.current()
    load(draft.pk)  # kept for the process under that token
    with CaptureQueriesContext(connection) as ctx:
        assert TermsCache(revision=annotated).term(draft.pk, "P1").first_response == timedelta(minutes=15)
    assert len(ctx.captured_queries) == 0
    # A token from before a change is not the process's any more: the terms are read again, new.
    PriorityTerm.objects.filter(version=draft, priority="P1").update(first_response=timedelta(minutes=20))
    terms_revision.bump()
    fresh = SLAVersion.objects.annotate(rev=terms_revision.column()).get(pk=draft.pk).rev
    assert fresh != annotated
    assert TermsCache(revision=fresh).term(draft.pk, "P1").first_response == timedelta(minutes=20)


def test_the_top_escalation_level_is_kept_until_a_level_changes(draft):
    """The queue's level filter offers 1..the highest level of any ladder: read once, then kept
    under the revision; a ladder that grows is offered at once."""
    assert terms_cache.top_escalation_level() == 4  # Kaluari's ladder: email, then three calls
    with CaptureQueriesContext(connection) as ctx:
        assert terms_cache.top_escalation_level() == 4
    assert len(ctx.captured_queries) == 1  # the revision row alone
    top = draft.escalation_levels.order_by("-level").first()
    EscalationLevel.objects.create(
        version=draft, level=5, channel=top.channel, instruction="Call the CTO", staff_role=top.staff_role
    )
    assert terms_cache.top_escalation_level() == 5
