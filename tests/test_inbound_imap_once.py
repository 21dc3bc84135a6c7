"""Exactly once through the IMAP mailbox: the beat task reads a real Dovecot (tests/dovecot.py) and
hands every message to the real ingest service. A message is one ticket however it is read: twice,
after a crash between the commit and the move, by two pollers at once, or after the mailbox got a
new UIDVALIDITY (restored, migrated) and every UID changed. Alice is a support contact of Acme,
whose Kaluari contract's level-1 address is support@kaluari.com."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import pytest
import time_machine
from django.db import connection

from portal.domain.mail_urls import imap_url
from portal.models import SweepHeartbeat
from tickets import mailbox_poll, tasks
from tickets.inbound import route
from tickets.inbound.service import ingest
from tickets.models import InboundMessage, Ticket

pytestmark = [pytest.mark.dovecot, pytest.mark.django_db]

RECEIVED = '"03-Nov-2026 07:00:00 +0000"'  # 10:00 in Nairobi, a Tuesday
NOW = datetime(2026, 11, 3, 9, 0, tzinfo=UTC)


def message(n: int) -> bytes:
    return (
        f"Return-Path: <alice@acme.example>\r\nFrom: Alice <alice@acme.example>\r\nTo: support@kaluari.com\r\n"
        f"Subject: Restore of job {n} fails\r\nMessage-ID: <restore-{n}@acme.example>\r\n"
        f"Date: Mon, 1 Jan 2001 00:00:00 +0000\r\n\r\nThe restore of job {n} fails.\r\n"
    ).encode()


@pytest.fixture
def mailbox(dovecot, settings, acme_contract, alice):
    settings.INBOUND_IMAP = imap_url(dovecot.url())
    settings.INBOUND_IMAP_PROCESSED_FOLDER = "Processed"
    with time_machine.travel(NOW, tick=False):
        yield dovecot


def poll(dovecot, ingest=ingest):
    return mailbox_poll.poll(config=imap_url(dovecot.url()), processed_folder="Processed", batch=200, ingest=ingest)


def test_the_beat_task_files_new_messages_on_the_clock_of_their_internaldate(mailbox):
    mailbox.append(message(1), internaldate=RECEIVED)
    mailbox.append(message(2), internaldate=RECEIVED)

    assert tasks.poll_mailbox() == "filed 2; moved 2"

    tickets = list(Ticket.objects.order_by("id"))
    assert [t.subject for t in tickets] == ["Restore of job 1 fails", "Restore of job 2 fails"]
    assert {t.filed_at for t in tickets} == {datetime(2026, 11, 3, 7, 0, tzinfo=UTC)}
    rows = list(InboundMessage.objects.order_by("id"))
    uidvalidity = mailbox_uidvalidity(mailbox)
    assert [(r.source, r.source_ref) for r in rows] == [
        ("imap", f"INBOX:{uidvalidity}:1"),
        ("imap", f"INBOX:{uidvalidity}:2"),
    ]
    assert [bytes(r.raw) for r in rows] == [message(1), message(2)]
    assert mailbox.count("INBOX") == 0 and mailbox.count("Processed") == 2
    beat = SweepHeartbeat.objects.get(name="inbound-imap")
    assert (beat.last_finished_at, beat.last_result) == (NOW, "filed 2; moved 2")


def test_a_held_message_is_moved_like_any_taken_one(mailbox):
    stranger = message(1).replace(b"alice@acme.example", b"mallory@elsewhere.example")
    mailbox.append(stranger, internaldate=RECEIVED)
    assert tasks.poll_mailbox() == "held 1; moved 1"
    assert not Ticket.objects.exists() and InboundMessage.objects.get().outcome == "held"
    assert mailbox.count("INBOX") == 0 and mailbox.count("Processed") == 1


def test_the_same_message_delivered_twice_is_one_ticket(mailbox):
    mailbox.append(message(1), internaldate=RECEIVED)
    mailbox.append(message(1), internaldate=RECEIVED)
    assert tasks.poll_mailbox() == "duplicate 1, filed 1; moved 2"
    assert Ticket.objects.count() == 1 and InboundMessage.objects.count() == 1
    assert mailbox.count("INBOX") == 0


def test_a_crash_between_the_commit_and_the_move_is_absorbed_on_the_next_run(mailbox, monkeypatch):
    mailbox.append(message(1), internaldate=RECEIVED)

    def crash(self, uids, folder, chunks=None):
        raise SystemExit("killed before the move")

    with monkeypatch.context() as m:
        m.setattr(mailbox_poll.BaseMailBox, "move", crash)
        with pytest.raises(SystemExit):
            tasks.poll_mailbox()
    assert Ticket.objects.count() == 1 and mailbox.count("INBOX") == 1  # committed, not moved

    assert tasks.poll_mailbox() == "duplicate 1; moved 1"
    assert Ticket.objects.count() == 1 and mailbox.count("INBOX") == 0 and mailbox.count("Processed") == 1


def test_two_pollers_at_once_take_each_message_once(mailbox):
    """The worst interleaving, made deterministic: the second poller runs whole after the first
    fetched the messages and before it hands the first one over; then the first goes on with
    messages already filed and moved under it."""
    for n in (1, 2):
        mailbox.append(message(n), internaldate=RECEIVED)
    seconds = []

    def first_ingest(raw, **kwargs):
        if not seconds:
            seconds.append(str(poll(mailbox)))
        return ingest(raw, **kwargs)

    first = poll(mailbox, ingest=first_ingest)

    assert seconds == ["filed 2; moved 2"] and str(first) == "duplicate 2; moved 2"
    assert Ticket.objects.count() == 2 and InboundMessage.objects.count() == 2
    assert mailbox.count("INBOX") == 0 and mailbox.count("Processed") == 2


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_pollers_in_two_threads_file_each_message_once(dovecot, acme_contract, alice):
    """Two runs at once for real: both have fetched every message before either hands one over."""
    for n in range(1, 6):
        dovecot.append(message(n), internaldate=RECEIVED)
    both_fetched, local, results, errors = threading.Barrier(2), threading.local(), [], []

    def ingest_once_both_fetched(raw, **kwargs):
        if not getattr(local, "waited", False):
            local.waited = True
            both_fetched.wait(timeout=20)
        return ingest(raw, **kwargs)

    def run():
        try:
            results.append(poll(dovecot, ingest=ingest_once_both_fetched))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors
    assert sum(r.outcomes["filed"] for r in results) == 5 and sum(r.outcomes["duplicate"] for r in results) == 5
    assert Ticket.objects.count() == 5 and InboundMessage.objects.count() == 5
    assert dovecot.count("INBOX") == 0 and dovecot.count("Processed") == 5


def test_a_message_failing_in_its_group_is_tried_alone_and_the_others_are_filed(mailbox, monkeypatch):
    """The poller takes a fetched group in one transaction, a savepoint each: a database error in
    one message rolls back its savepoint only; it is tried again alone and stays in the inbox."""
    for n in (1, 2, 3):
        mailbox.append(message(n), internaldate=RECEIVED)
    real_route = route.route

    def failing(row, msg, env, **kwargs):
        if "job 2 " in env.subject:
            with connection.cursor() as cursor:
                cursor.execute("SELECT * FROM no_such_table")  # a real database error
        return real_route(row, msg, env, **kwargs)

    with monkeypatch.context() as m:
        m.setattr(route, "route", failing)
        with pytest.raises(mailbox_poll.MailboxStalled, match="filed 2; moved 2; left in the inbox 1"):
            tasks.poll_mailbox()
    assert sorted(Ticket.objects.values_list("subject", flat=True)) == [
        "Restore of job 1 fails",
        "Restore of job 3 fails",
    ]
    assert InboundMessage.objects.count() == 2
    assert mailbox.count("INBOX") == 1 and mailbox.count("Processed") == 2

    assert tasks.poll_mailbox() == "filed 1; moved 1"
    assert Ticket.objects.count() == 3 and mailbox.count("INBOX") == 0


def test_a_message_whose_effect_fails_has_its_group_taken_again_with_savepoints(mailbox, monkeypatch, caplog):
    """The group is taken whole first, without a savepoint a message; a message whose effect fails
    there (not a database error: the service would keep it, held for staff, in its savepoint's
    place) rolls the whole group back, and the group is taken again with savepoints: that message
    is held, the others filed, each once, and every message moved."""
    for n in (1, 2, 3):
        mailbox.append(message(n), internaldate=RECEIVED)
    real_route, calls = route.route, []

    def failing(row, msg, env, **kwargs):
        calls.append(env.subject)
        if "job 2 " in env.subject:
            raise ValueError("a message the routing cannot take")
        return real_route(row, msg, env, **kwargs)

    monkeypatch.setattr(route, "route", failing)
    assert tasks.poll_mailbox() == "filed 2, held 1; moved 3"

    assert "message 2 failed (Undone) in a group of 3; taken again, a savepoint a message" in caplog.text
    assert calls == [f"Restore of job {n} fails" for n in (1, 2, 1, 2, 3)]  # the first try stopped at 2
    assert sorted(Ticket.objects.values_list("subject", flat=True)) == [
        "Restore of job 1 fails",
        "Restore of job 3 fails",
    ]
    held = InboundMessage.objects.get(outcome="held")
    assert held.subject == "Restore of job 2 fails" and "could not be processed (ValueError)" in held.reason
    assert InboundMessage.objects.count() == 3 and mailbox.count("INBOX") == 0 and mailbox.count("Processed") == 3


def test_a_group_whose_rows_fail_together_is_taken_one_by_one(mailbox, monkeypatch, caplog):
    """A group's messages' rows are inserted together before its commit: when one is taken by a
    concurrent writer after the group read what was stored (here: the read misses it), the group's
    transaction fails and every message is taken alone; none is lost, none is filed twice."""
    from tickets.inbound.group import Group

    ingest(message(2), received_at=NOW, source="pipe")
    for n in (1, 2, 3):
        mailbox.append(message(n), internaldate=RECEIVED)
    monkeypatch.setattr(Group, "stored", lambda self, digest: None)

    assert tasks.poll_mailbox() == "duplicate 1, filed 2; moved 3"

    assert "a group of 3 was not committed; taken one by one" in caplog.text
    assert sorted(Ticket.objects.values_list("subject", flat=True)) == [f"Restore of job {n} fails" for n in (1, 2, 3)]
    assert InboundMessage.objects.count() == 3 and mailbox.count("INBOX") == 0


def test_a_new_uidvalidity_reads_every_message_again_and_files_none_twice(mailbox):
    mailbox.append(message(1), internaldate=RECEIVED)
    mailbox.append(message(2), internaldate=RECEIVED)
    with pytest.raises(mailbox_poll.MailboxStalled):
        poll(mailbox, ingest=lambda raw, **kw: ingest(raw, **kw) if b"job 1 " in raw else 1 / 0)
    before = mailbox_uidvalidity(mailbox)
    # The mailbox is restored from a backup: new UIDVALIDITY, UIDs from 1 again, both messages back.
    mailbox.recreate("INBOX")
    mailbox.append(message(1), internaldate=RECEIVED)
    mailbox.append(message(2), internaldate=RECEIVED)
    after = mailbox_uidvalidity(mailbox)
    assert after != before

    assert tasks.poll_mailbox() == "duplicate 1, filed 1; moved 2"
    assert Ticket.objects.count() == 2
    assert sorted(InboundMessage.objects.values_list("source_ref", flat=True)) == [
        f"INBOX:{before}:1",
        f"INBOX:{after}:2",
    ]


@pytest.fixture
def imap_env(dovecot, monkeypatch):
    """The worker process reads INBOUND_IMAP_URL from its environment, as in production."""
    monkeypatch.setenv("INBOUND_IMAP_URL", dovecot.url())
    return dovecot


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_polls_the_mailbox_through_redis(imap_env, acme_contract, alice, real_worker):
    imap_env.append(message(1), internaldate=RECEIVED)
    tasks.poll_mailbox.delay()  # what beat sends every minute
    deadline = time.monotonic() + 30
    while imap_env.count("Processed") < 1 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert imap_env.count("INBOX") == 0 and imap_env.count("Processed") == 1
    ticket = Ticket.objects.get()
    assert (ticket.created_by, ticket.filed_at) == (alice, datetime(2026, 11, 3, 7, 0, tzinfo=UTC))
    deadline = time.monotonic() + 10
    while not SweepHeartbeat.objects.filter(name="inbound-imap", runs=1).exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert SweepHeartbeat.objects.get(name="inbound-imap").last_result == "filed 1; moved 1"


def mailbox_uidvalidity(dovecot) -> int:
    with dovecot.client() as imap:
        imap.select("INBOX", readonly=True)
        return int(imap.response("UIDVALIDITY")[1][0])
