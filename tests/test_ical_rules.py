"""The iCal feed keeps the calendar rules (issue 20, item 9; RFC 5545, RFC 7986): SEQUENCE rises on
every change a calendar shows (a title, the times, the cancellation) and is never lowered for an
event already published; DTSTAMP is the moment the event last changed (the feed has no METHOD, the
notice's file keeps METHOD:PUBLISH); the feed answers conditional GETs (ETag, Last-Modified: 304)
and names its refresh interval. Acme's window of 11 October 2026, 20:00-22:00 UTC; clocks frozen."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.urls import reverse
from django.utils.http import http_date
from icalendar import Calendar

from contracts.maintenance.ical import organisation_ical_rotate, window_identity
from contracts.maintenance.services import window_cancel, window_publish
from contracts.models import MaintenanceWindow

from .test_maintenance_notices import update

pytestmark = pytest.mark.django_db

PUBLISHED = datetime(2026, 10, 1, 9, 0, tzinfo=UTC)
START = datetime(2026, 10, 11, 20, 0, tzinfo=UTC)


@pytest.fixture
def window(acme_contract):
    return window_publish(
        title="Storage upgrade", description="Disks swapped.", services=list(acme_contract.services.all()),
        starts_at=START, ends_at=START + timedelta(hours=2), now=PUBLISHED,
    )  # fmt: skip


@pytest.fixture
def url(acme_contract):
    return reverse("maintenance-ical", args=[organisation_ical_rotate(organisation=acme_contract.organisation)])


def get(client, url, at, **headers):
    with time_machine.travel(at, tick=False):
        return client.get(url, headers=headers)


def event_of(response, window):
    cal = Calendar.from_ical(response.content)
    (event,) = [e for e in cal.walk("VEVENT") if str(e["UID"]) == window_identity(window)[0]]
    return cal, event


def test_the_feed_names_its_refresh_interval_and_stamps_each_event_with_its_last_change(client, window, url):
    first = get(client, url, PUBLISHED + timedelta(hours=1))
    assert first.status_code == 200
    cal, event = event_of(first, window)
    assert b"REFRESH-INTERVAL;VALUE=DURATION:PT1H\r\n" in first.content
    assert b"X-PUBLISHED-TTL:PT1H\r\n" in first.content
    assert cal.decoded("REFRESH-INTERVAL") == timedelta(hours=1)
    assert "METHOD" not in cal  # a published feed is no scheduling message
    assert event["SEQUENCE"] == 1
    assert event.decoded("DTSTAMP") == event.decoded("LAST-MODIFIED") == PUBLISHED
    # Fetched a day later, nothing changed: the same bytes (DTSTAMP is no longer "now").
    assert get(client, url, PUBLISHED + timedelta(days=1)).content == first.content


def test_the_feed_answers_conditional_gets(client, window, url):
    first = get(client, url, PUBLISHED + timedelta(hours=1))
    etag, modified = first["ETag"], first["Last-Modified"]
    assert etag.startswith('"') and modified == http_date(PUBLISHED.timestamp())
    later = PUBLISHED + timedelta(days=1)
    same = get(client, url, later, if_none_match=etag)
    assert same.status_code == 304 and same.content == b"" and same["ETag"] == etag
    assert get(client, url, later, if_modified_since=modified).status_code == 304
    # A change: a new ETag and Last-Modified; the old validators get the whole feed.
    changed_at = PUBLISHED + timedelta(days=2)
    update(window, changed_at, title="Storage upgrade (phase 1)")
    fresh = get(client, url, changed_at + timedelta(minutes=1), if_none_match=etag)
    assert fresh.status_code == 200 and fresh["ETag"] != etag
    assert fresh["Last-Modified"] == http_date(changed_at.timestamp())
    assert get(client, url, changed_at + timedelta(minutes=1), if_modified_since=modified).status_code == 200


def test_sequence_rises_on_every_change_including_the_cancellation(client, window, url):
    steps = [
        (PUBLISHED + timedelta(days=1), lambda at: update(window, at, description="Disks and controllers swapped.")),
        (
            PUBLISHED + timedelta(days=2),
            lambda at: update(window, at, starts_at=START + timedelta(hours=1), ends_at=START + timedelta(hours=3)),
        ),  # fmt: skip
        (PUBLISHED + timedelta(days=3), lambda at: window_cancel(window=window, now=at)),
    ]
    seen = [1]
    for at, change in steps:
        change(at)
        _, event = event_of(get(client, url, at + timedelta(minutes=5)), window)
        seen.append(event["SEQUENCE"])
        assert event.decoded("DTSTAMP") == event.decoded("LAST-MODIFIED") == at
    assert seen == [1, 2, 3, 4]
    assert str(event["STATUS"]) == "CANCELLED" and event.decoded("DTSTART") == START + timedelta(hours=1)
    stored = MaintenanceWindow.objects.get(pk=window.pk)
    assert (stored.revision, stored.sequence) == (2, 4)  # the times changed once: one new notice revision
    # Cancelling again is no change: nothing rises.
    window_cancel(window=window, now=PUBLISHED + timedelta(days=4))
    assert MaintenanceWindow.objects.get(pk=window.pk).sequence == 4


def test_an_unchanged_save_keeps_the_sequence(window):
    update(window, PUBLISHED + timedelta(days=1))
    stored = MaintenanceWindow.objects.get(pk=window.pk)
    assert (stored.sequence, stored.changed_at) == (1, PUBLISHED)


def test_an_event_published_before_the_sequence_was_stored_is_never_lowered(window):
    """A window at its third revision, cancelled, as stored before `sequence` existed (the migration
    seeds it; a notice frozen before it carries none): SEQUENCE 4, as it was served."""
    MaintenanceWindow.objects.filter(pk=window.pk).update(revision=3, status="cancelled", sequence=1)
    assert window_identity(MaintenanceWindow.objects.get(pk=window.pk))[1] == 4
