"""SLA terms kept across requests while the terms revision holds (tickets.terms_cache,
contracts.terms_revision): one row read instead of nine queries, and never an old term after a
change, whichever way the change is made."""

from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from contracts import terms_revision
from contracts.models import (
    SLA,
    ClosedDate,
    EscalationDwell,
    EscalationLevel,
    PriorityTerm,
    SLAVersion,
    TermsRevision,
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
def test_every_save_or_delete_of_a_term_moves_the_revision(version, edit):
    before = TermsRevision.objects.get().token
    edit(version)
    assert TermsRevision.objects.get().token != before


def test_an_edited_term_is_served_at_once(version):
    assert first_response(version.pk) == timedelta(minutes=15)
    term = PriorityTerm.objects.get(version=version, priority="P1")
    term.first_response = timedelta(minutes=10)
    term.save()
    assert first_response(version.pk) == timedelta(minutes=10)


def test_calendar_hours_closed_dates_levels_and_dwells_are_watched(version):
    term = PriorityTerm.objects.select_related("calendar").get(version=version, priority="P3")
    cases = [
        lambda: WorkingHours.objects.filter(calendar=term.calendar).first().save(),
        lambda: ClosedDate.objects.create(calendar=term.calendar, date=term.calendar.updated_at.date()),
        lambda: EscalationLevel.objects.filter(version=version).first().save(),
        lambda: EscalationDwell.objects.filter(version=version).first().save(),
        lambda: version.sla.save(),
        lambda: version.save(),
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
    draft = sla_version_draft(sla=version.sla, effective_from=version.effective_from + timedelta(days=400))
    assert TermsRevision.objects.get().token != before
    assert {p.priority for p in TermsCache().version(draft.pk).priorities.all()} == {"P1", "P2", "P3", "P4"}


def test_a_rolled_back_edit_leaves_no_trace(version):
    load(version.pk)
    with pytest.raises(RuntimeError), transaction.atomic():
        term = PriorityTerm.objects.get(version=version, priority="P1")
        term.first_response = timedelta(minutes=5)
        term.save()
        assert first_response(version.pk) == timedelta(minutes=5)  # this transaction sees its edit
        raise RuntimeError("abandon the edit")
    # The token went back to the committed one; what was read under the rolled-back token is
    # never served under it.
    assert first_response(version.pk) == timedelta(minutes=15)


def test_without_a_revision_row_nothing_is_kept(version):
    TermsRevision.objects.all().delete()
    assert terms_revision.current() is None
    load(version.pk)
    _, queries = load(version.pk)
    assert queries == 7
    terms_revision.bump()  # the next change creates the row again
    assert terms_revision.current() is not None


def test_a_revision_read_with_other_rows_is_the_same_token_and_costs_no_query(version):
    """The ticket page reads the token as a column of its ticket query (terms_revision.column())."""
    annotated = SLAVersion.objects.annotate(rev=terms_revision.column()).get(pk=version.pk).rev
    assert str(annotated) == terms_revision.current()
    load(version.pk)  # kept for the process under that token
    with CaptureQueriesContext(connection) as ctx:
        assert TermsCache(revision=annotated).term(version.pk, "P1").first_response == timedelta(minutes=15)
    assert len(ctx.captured_queries) == 0
    # A token from before a change is not the process's any more: the terms are read again, new.
    PriorityTerm.objects.filter(version=version, priority="P1").update(first_response=timedelta(minutes=20))
    terms_revision.bump()
    fresh = SLAVersion.objects.annotate(rev=terms_revision.column()).get(pk=version.pk).rev
    assert fresh != annotated
    assert TermsCache(revision=fresh).term(version.pk, "P1").first_response == timedelta(minutes=20)
