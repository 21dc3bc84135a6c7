"""The daily housekeeping (beat's `housekeeping`, portal.core.housekeeping): what production keeps
growing and nothing else removes. The deployment is gunicorn, the workers and beat, no cron, so beat
runs it: expired sessions (Django purges none by itself), expired API tokens (knox removes one only
when it is presented), the bodies of emails sent more than OUTBOX_KEEP_BODIES_DAYS ago (the row
stays: its key keeps an email from going twice, its Message-ID threads a reply), and files under
MEDIA_ROOT that no row names (an attachment written by a transaction that was rolled back)."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pytest
import time_machine
from django.contrib.sessions.models import Session
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from knox.models import AuthToken

from portal.celery import app
from portal.core.api_tokens import token_create
from portal.core.outbox import Email, outbox_enqueue
from portal.models import OutboxMessage
from tickets.models import Attachment, InboundMessage

from .test_inbound import LATER, PNG, mail, take

pytestmark = pytest.mark.django_db


def _housekeeping() -> str:
    """The housekeeping as beat runs it: its entry of the schedule, run in this process."""
    entry = app.conf.beat_schedule["housekeeping"]
    app.loader.import_default_modules()
    return app.tasks[entry["task"]].apply().get()


def test_beat_runs_the_housekeeping_once_a_day_on_the_general_queue():
    entry = app.conf.beat_schedule["housekeeping"]
    assert entry["schedule"] == 24 * 3600 and 0 < entry["options"]["expires"] < entry["schedule"]
    from portal.celery import route

    assert route(entry["task"], (), {}, {}) is None  # not a clock: the general queue


def test_an_expired_session_is_removed_and_a_live_one_kept(client, alice, bob):
    client.force_login(alice)  # a sign-in writes a session row; the browser is closed, never logged out
    with time_machine.travel(timezone.now() + timedelta(hours=11)):
        Client().force_login(bob)  # a later sign-in, elsewhere: still live when alice's has expired
    assert Session.objects.count() == 2
    with time_machine.travel(timezone.now() + timedelta(hours=13)):
        _housekeeping()
        assert Session.objects.count() == 1
        assert Session.objects.get().expire_date > timezone.now()


def test_expired_api_tokens_are_removed_and_live_ones_kept(alice, bob, settings):
    expired = [token_create(user=alice, ttl=timedelta(days=90))[0].pk for _ in range(settings.API_TOKENS_PER_USER)]
    forever = token_create(user=bob, ttl=None)[0].pk
    later = token_create(user=bob, ttl=timedelta(days=120))[0].pk
    with time_machine.travel(timezone.now() + timedelta(days=91)):
        assert "5 expired API tokens" in _housekeeping()
    assert not AuthToken.objects.filter(pk__in=expired).exists()
    assert set(AuthToken.objects.values_list("pk", flat=True)) == {forever, later}


def _outbox_row(key: str, *, status: str, sent_days_ago: int | None) -> OutboxMessage:
    now = timezone.now()
    outbox_enqueue(email=Email(key=key, to="alice@acme.example", template="ticket_reply", context={"x": 1}))
    sent_at = now - timedelta(days=sent_days_ago) if sent_days_ago is not None else None
    OutboxMessage.objects.filter(key=key).update(
        status=status, sent_at=sent_at, subject=f"Re: {key}", body_text=f"Hello, {key}.\n", body_html="<p>Hello</p>"
    )
    return OutboxMessage.objects.get(key=key)


def test_a_sent_email_keeps_its_key_and_message_id_and_loses_its_bodies_after_the_days_set(client, ada, settings):
    assert settings.OUTBOX_KEEP_BODIES_DAYS == 180
    old = _outbox_row("old", status="sent", sent_days_ago=181)
    recent = _outbox_row("recent", status="sent", sent_days_ago=179)
    failed = _outbox_row("failed", status="failed", sent_days_ago=None)
    OutboxMessage.objects.filter(pk=failed.pk).update(created_at=timezone.now() - timedelta(days=400))
    assert "1 email bodies" in _housekeeping()
    old.refresh_from_db()
    assert (old.context, old.body_text, old.body_html) == ("", "", "")
    assert (old.key, old.subject, old.status, old.to) == ("old", "Re: old", "sent", "alice@acme.example")
    assert OutboxMessage.objects.filter(message_id=old.message_id).exists()  # a reply to it still threads
    for kept in (recent, failed):  # too recent; never sent (staff may retry it)
        kept.refresh_from_db()
        assert kept.body_text and kept.context
    # Its key still keeps the email from going twice.
    assert outbox_enqueue(email=Email(key="old", to="alice@acme.example", template="ticket_reply")) is False
    # Staff reading it in the outbox are told why its text is gone.
    client.force_login(ada)
    page = client.get(reverse("admin:portal_outboxmessage_change", args=[old.pk])).content.decode()
    assert "its text was removed 180 days after it was sent (OUTBOX_KEEP_BODIES_DAYS)" in page
    assert "Cannot be rendered" not in page
    page = client.get(reverse("admin:portal_outboxmessage_change", args=[recent.pk])).content.decode()
    assert "Hello, recent." in page and "was removed" not in page


def test_no_email_body_is_removed_when_the_days_are_zero(settings):
    settings.OUTBOX_KEEP_BODIES_DAYS = 0
    old = _outbox_row("old", status="sent", sent_days_ago=2000)
    _housekeeping()
    old.refresh_from_db()
    assert old.body_text == "Hello, old.\n"


def _age(path: Path, days: float) -> Path:
    moment = (timezone.now() - timedelta(days=days)).timestamp()
    os.utime(path, (moment, moment))
    return path


def fails(*args, **kwargs):  # anything after the files in the filing's transaction
    raise RuntimeError("the receipt could not be written")


def test_a_file_no_row_names_is_removed_once_it_is_a_day_old(settings, tmp_path, monkeypatch, acme_contract, alice):
    """An attachment's file is written as its row is inserted, in the transaction of its ticket: a
    filing that fails after it (here the receipt) is rolled back and the message held for staff,
    and the file stays, named by no row. The next day's housekeeping removes it; the files rows
    name, the files of a transaction that may still be running (under a day old) and files outside
    the folders uploads go to stay."""
    from tickets import notify

    settings.MEDIA_ROOT = str(tmp_path)
    with time_machine.travel(LATER, tick=False):
        filed = take(mail(files=[("kept.png", PNG, "image/png")]))
        assert filed.kind == "filed"
        monkeypatch.setattr(notify, "ticket_filed", fails)
        held = take(mail(message_id="<m2@acme.example>", files=[("screen.png", PNG, "image/png")]))
    assert held.kind == "held" and InboundMessage.objects.get(pk=held.inbound_id).ticket_id is None
    (named,) = Attachment.objects.all()
    files = set((tmp_path / "attachments").iterdir())
    (orphan,) = files - {tmp_path / named.file.name}
    assert orphan.read_bytes() == PNG  # the rolled-back filing's screenshot, named by no row
    for path in files:
        _age(path, 2)
    fresh = tmp_path / "attachments" / "in-flight.png"  # a transaction still running wrote it
    fresh.write_bytes(PNG)
    claim_orphan = tmp_path / "claims" / "gone.pdf"  # a claim's evidence whose claim was rolled back
    claim_orphan.parent.mkdir()
    claim_orphan.write_bytes(b"%PDF")
    _age(claim_orphan, 2)
    elsewhere = tmp_path / "exports" / "report.csv"  # no FileField writes there: never ours to remove
    elsewhere.parent.mkdir()
    elsewhere.write_text("a,b")
    _age(elsewhere, 30)
    assert "2 orphaned files" in _housekeeping()
    assert not orphan.exists() and not claim_orphan.exists()
    assert (tmp_path / named.file.name).exists() and fresh.exists() and elsewhere.exists()
    assert _housekeeping().endswith("0 orphaned files removed")  # safe to run twice
