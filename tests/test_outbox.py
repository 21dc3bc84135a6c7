"""The one email outbox: written with the change, sent once, retried with backoff, never lost."""

import dataclasses
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core import mail
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext

from portal.core.delivery import outbox_claim, outbox_deliver, outbox_send_due, outbox_send_key
from portal.core.outbox import Email, outbox_enqueue
from portal.core.snapshot import thaw
from portal.models import OutboxAttempt, OutboxMessage

NOW = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
pytestmark = pytest.mark.django_db


def reset_email(key="pw:1", to="alice@acme.example"):
    return Email(key=key, to=to, template="password_reset", context={"user": None, "reset_url": "https://x.test/r/abc"})


class BrokenBackend:
    """An SMTP server that refuses everything."""

    def __init__(self, *args, **kwargs):
        pass

    def open(self):
        pass

    def close(self):
        pass

    def send_messages(self, messages):
        raise ConnectionRefusedError("SMTP server said no")


@time_machine.travel(NOW, tick=False)
def test_enqueue_renders_once_and_fixes_the_message_id(django_capture_on_commit_callbacks, mailoutbox):
    with django_capture_on_commit_callbacks(execute=True):
        assert outbox_enqueue(email=reset_email()) is True
    row = OutboxMessage.objects.get(key="pw:1")
    assert row.subject == "Reset your SLA Portal password"
    assert "https://x.test/r/abc" in row.body_text
    assert '<a href="https://x.test/r/abc">' in row.body_html
    assert row.message_id.startswith("<") and row.message_id.endswith("@sla-portal.local>")
    # Sent after commit, with the stored Message-ID, as text and HTML.
    assert len(mailoutbox) == 1
    sent = mailoutbox[0]
    assert sent.to == ["alice@acme.example"]
    assert sent.extra_headers["Message-ID"] == row.message_id
    assert sent.alternatives[0][1] == "text/html"
    row.refresh_from_db()
    assert row.status == "sent" and row.sent_at == NOW and row.attempts == 1
    assert OutboxAttempt.objects.filter(message=row, ok=True).count() == 1


def test_enqueueing_a_key_twice_is_a_no_op(django_capture_on_commit_callbacks, mailoutbox):
    with django_capture_on_commit_callbacks(execute=True):
        assert outbox_enqueue(email=reset_email()) is True
        assert outbox_enqueue(email=reset_email(to="someone-else@acme.example")) is False
    assert OutboxMessage.objects.count() == 1
    assert [m.to for m in mailoutbox] == [["alice@acme.example"]]


def test_nothing_is_written_when_the_change_rolls_back(mailoutbox):
    from django.db import transaction

    with pytest.raises(RuntimeError), transaction.atomic():
        outbox_enqueue(email=reset_email())
        raise RuntimeError("the change failed")
    assert OutboxMessage.objects.count() == 0
    assert mailoutbox == []


def test_a_sent_row_is_never_sent_again(django_capture_on_commit_callbacks, mailoutbox):
    with django_capture_on_commit_callbacks(execute=True):
        outbox_enqueue(email=reset_email())
    assert outbox_send_key(key="pw:1") == 0
    with time_machine.travel(datetime.now(UTC) + timedelta(days=2)):
        assert outbox_send_due() == 0
    assert len(mailoutbox) == 1


def test_a_failure_backs_off_records_the_attempt_and_is_retried_by_the_sweep(settings, mailoutbox):
    with time_machine.travel(NOW, tick=False):
        outbox_enqueue(email=reset_email())
        settings.EMAIL_BACKEND = "tests.test_outbox.BrokenBackend"
        assert outbox_send_due() == 0
    row = OutboxMessage.objects.get()
    assert row.status == "pending" and row.attempts == 1
    assert row.next_attempt_at == NOW + timedelta(minutes=1)
    assert "ConnectionRefusedError: SMTP server said no" in row.last_error
    attempt = OutboxAttempt.objects.get()
    assert attempt.ok is False and "SMTP server said no" in attempt.error

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    with time_machine.travel(NOW + timedelta(seconds=59), tick=False):
        assert outbox_send_due() == 0  # still backing off
    with time_machine.travel(NOW + timedelta(minutes=1), tick=False):
        assert outbox_send_due() == 1
    row.refresh_from_db()
    assert row.status == "sent" and row.attempts == 2 and row.last_error == ""
    assert len(mailoutbox) == 1
    assert list(OutboxAttempt.objects.order_by("started_at").values_list("ok", flat=True)) == [False, True]


def test_it_gives_up_after_the_last_attempt_and_staff_can_requeue(settings):
    settings.OUTBOX_MAX_ATTEMPTS = 3
    settings.EMAIL_BACKEND = "tests.test_outbox.BrokenBackend"
    moment = NOW
    with time_machine.travel(moment, tick=False):
        outbox_enqueue(email=reset_email())
    for _ in range(3):
        with time_machine.travel(moment, tick=False):
            outbox_send_due()
        moment += timedelta(hours=2)
    row = OutboxMessage.objects.get()
    assert row.status == "failed" and row.attempts == 3
    with time_machine.travel(moment + timedelta(days=1), tick=False):
        assert outbox_send_due() == 0  # a failed row is not retried on its own

    from portal.core.delivery import outbox_retry_now

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    assert outbox_retry_now(ids=[row.id]) == 1
    assert outbox_send_due() == 1
    assert len(mail.outbox) == 1


def test_a_sender_that_died_mid_send_leaves_the_row_to_be_retried_after_its_lease(settings, mailoutbox):
    with time_machine.travel(NOW, tick=False):
        outbox_enqueue(email=reset_email())
        claimed = outbox_claim(now=NOW, limit=10)  # a worker takes the row ... and is killed
        assert [m.key for m in claimed] == ["pw:1"]
    row = OutboxMessage.objects.get()
    assert row.status == "sending"
    with time_machine.travel(NOW + settings.OUTBOX_LEASE - timedelta(seconds=1), tick=False):
        assert outbox_send_due() == 0  # the lease still holds: nobody else may send it
    with time_machine.travel(NOW + settings.OUTBOX_LEASE + timedelta(seconds=1), tick=False):
        assert outbox_send_due() == 1
    row.refresh_from_db()
    assert row.status == "sent" and row.attempts == 2
    # The retry carries the Message-ID written with the row, so a receiver can drop a duplicate.
    assert mailoutbox[0].extra_headers["Message-ID"] == row.message_id


def test_a_stale_sender_cannot_overwrite_a_newer_claim(settings, mailoutbox):
    with time_machine.travel(NOW, tick=False):
        outbox_enqueue(email=reset_email())
        stale = outbox_claim(now=NOW, limit=1)
    later = NOW + settings.OUTBOX_LEASE + timedelta(seconds=1)
    fresh = outbox_claim(now=later, limit=1)
    assert stale[0].claim_token != fresh[0].claim_token
    settings.EMAIL_BACKEND = "tests.test_outbox.BrokenBackend"
    outbox_deliver(messages=stale)  # the stale sender fails late: the row stays the fresh sender's
    assert OutboxMessage.objects.get().status == "sending"


def test_claims_are_disjoint(settings):
    with time_machine.travel(NOW, tick=False):
        for i in range(5):
            outbox_enqueue(email=reset_email(key=f"k{i}"))
        first = outbox_claim(now=NOW, limit=3)
        second = outbox_claim(now=NOW, limit=3)
    assert len(first) == 3 and len(second) == 2
    assert not {m.id for m in first} & {m.id for m in second}


def test_the_sweep_task_sends_what_was_never_handed_to_a_worker(mailoutbox):
    from portal.core.tasks import outbox_sweep

    # Written without its on-commit hook ever running (the broker was down, or the web process died).
    outbox_enqueue(email=reset_email(key="a"))
    outbox_enqueue(email=reset_email(key="b"))
    assert mailoutbox == []
    assert outbox_sweep.delay().get() == 2
    assert sorted(m.to[0] for m in mailoutbox) == ["alice@acme.example"] * 2


def test_real_smtp(smtp_settings, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        outbox_enqueue(email=reset_email())
    received = smtp_settings.wait_for(1)
    assert len(received) == 1
    assert received[0]["Message-ID"] == OutboxMessage.objects.get().message_id
    assert received[0]["Subject"] == "Reset your SLA Portal password"


# --- PostgreSQL: concurrency between processes ------------------------------------------------
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_writers_of_the_same_key_at_once_give_one_email(mailoutbox):
    barrier = threading.Barrier(2)
    results, errors = [], []

    def writer():
        from django.db import transaction

        try:
            with transaction.atomic():
                barrier.wait(timeout=10)
                results.append(outbox_enqueue(email=reset_email(key="same")))
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=writer) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert OutboxMessage.objects.filter(key="same").count() == 1
    # Both writers asked for a send after commit (eagerly, in their threads): one email went out.
    assert OutboxMessage.objects.get(key="same").status == "sent"
    assert len(mailoutbox) == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_sweeps_at_once_send_each_row_once(mailoutbox, monkeypatch):
    monkeypatch.setattr("portal.core.outbox._dispatch", lambda keys: None)  # the broker is down: rows wait
    for i in range(40):
        outbox_enqueue(email=reset_email(key=f"k{i}"))
    barrier = threading.Barrier(2)
    sent = []

    def sweep():
        try:
            barrier.wait(timeout=10)
            sent.append(outbox_send_due(batch=5))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=sweep) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(sent) == 40
    assert len(mailoutbox) == 40
    assert len({m.extra_headers["Message-ID"] for m in mailoutbox}) == 40


# --- A real worker process, through Redis -----------------------------------------------------
@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_sends_through_redis(real_worker, smtp_sink):
    outbox_enqueue(email=reset_email(key="via-redis"))  # autocommit: on_commit runs at once
    received = smtp_sink.wait_for(1, timeout=30)
    assert len(received) == 1
    # The sink has the message a moment before the worker records it as sent: wait for the row.
    deadline = time.monotonic() + 10
    while (row := OutboxMessage.objects.get(key="via-redis")).status != "sent" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert received[0]["Message-ID"] == row.message_id
    assert row.status == "sent"
    assert OutboxAttempt.objects.get(message=row).worker  # the worker recorded its attempt


def test_text_parts_are_not_html_escaped_but_the_html_part_is():
    from portal.core.delivery import render
    from portal.models import User

    subject, text, html = render(
        "password_reset", {"user": User(name="Rita & Dan <ops>"), "reset_url": "https://x.test/?a=1&b=2"}
    )
    assert "Hello Rita & Dan <ops>," in text and "https://x.test/?a=1&b=2" in text
    assert "Rita &amp; Dan &lt;ops&gt;" in html


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_batchs_many_new_rows_are_copied_each_at_the_moment_of_its_change(monkeypatch):
    """A batch's new rows (outbox_enqueue_many(known_new=True) in a portal.core.batch: the inbound
    poller's group, two emails a ticket) go through COPY from COPY_FROM rows on, each row with the
    moment of its own change, as the multi-row insert writes them (bench/RESULTS.md, session 11)."""
    from django.db import transaction

    from portal.core import batch, outbox

    monkeypatch.setattr("portal.core.outbox._dispatch", lambda keys: None)
    monkeypatch.setattr(outbox, "COPY_FROM", 3)
    with time_machine.travel(NOW, tick=False), transaction.atomic():
        with CaptureQueriesContext(connection) as ctx, batch.batch():
            for i in range(4):
                email = dataclasses.replace(
                    reset_email(f"b:{i}", f"p{i}@acme.example"), headers={"Reply-To": f"r+{i}@x.test"}
                )
                assert outbox.outbox_enqueue_many(emails=[email], now=NOW + timedelta(minutes=i), known_new=True) == 1
        assert any(q["sql"].startswith("COPY outbox_incoming") for q in ctx.captured_queries)
    rows = OutboxMessage.objects.filter(key__startswith="b:").order_by("key")
    assert [(r.to, r.next_attempt_at, r.headers, r.created_at, r.status) for r in rows] == [
        (f"p{i}@acme.example", NOW + timedelta(minutes=i), {"Reply-To": f"r+{i}@x.test"}, NOW, "pending")
        for i in range(4)
    ]
    assert thaw(rows[0].context) == {"user": None, "reset_url": "https://x.test/r/abc"}


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_many_rows_at_once_are_copied_as_bulk_create_would_write_them(monkeypatch):
    """A sweep's batch goes through COPY on PostgreSQL (portal.core.outbox._copy_rows): the same rows,
    defaults and unique keys as bulk_create; a key another writer holds is skipped."""
    from django.db import transaction

    from portal.core import outbox
    from portal.core.snapshot import freeze
    from portal.models import new_message_id

    monkeypatch.setattr("portal.core.outbox._dispatch", lambda keys: None)
    emails = [reset_email(key=f"many:{i}", to=f"p{i}@acme.example") for i in range(outbox.COPY_FROM + 10)]
    emails[150] = Email(**{**emails[150].__dict__, "headers": {"List-Unsubscribe": "<https://x.test/u/150/>"}})
    # Headers of its own (a reply address) and a Message-ID fixed by the caller ride the copy too.
    emails[9] = dataclasses.replace(emails[9], headers={"Reply-To": "r+9@x.test"}, message_id="<fixed-9@x.test>")
    with time_machine.travel(NOW, tick=False), transaction.atomic():
        assert outbox.outbox_enqueue_many(emails=emails[:7]) == 7  # below the threshold: bulk_create
        with CaptureQueriesContext(connection) as ctx:
            assert outbox.outbox_enqueue_many(emails=emails) == outbox.COPY_FROM + 3
        assert any(q["sql"].startswith("COPY outbox_incoming") for q in ctx.captured_queries)
        # Another writer's row for a key the copy brings: ON CONFLICT keeps the first.
        OutboxMessage.objects.create(
            key="late", to="other@acme.example", template="password_reset", next_attempt_at=NOW
        )
        outbox._copy_rows(
            [("late", new_message_id(), "password_reset", "p@acme.example", freeze({}), "{}", "[]", NOW)], NOW
        )
        assert outbox.outbox_enqueue_many(emails=emails) == 0  # every key is there now
    rows = OutboxMessage.objects.filter(key__startswith="many:")
    assert rows.count() == outbox.COPY_FROM + 10
    assert OutboxMessage.objects.get(key="late").to == "other@acme.example"
    assert OutboxMessage.objects.get(key="many:150").headers == {"List-Unsubscribe": "<https://x.test/u/150/>"}
    assert OutboxMessage.objects.get(key="many:151").headers == {}
    single, copied = rows.get(key="many:0"), rows.get(key="many:8")
    same = ["template", "status", "attempts", "next_attempt_at", "created_at", "subject", "body_text", "last_error",
            "lease_until", "sent_at", "claim_token"]  # fmt: skip
    assert [getattr(copied, f) for f in same] == [getattr(single, f) for f in same]
    assert thaw(copied.context) == thaw(single.context) == {"user": None, "reset_url": "https://x.test/r/abc"}
    assert copied.to == "p8@acme.example" and copied.message_id != single.message_id
    assert copied.headers == single.headers == {}
    assert (rows.get(key="many:9").headers, rows.get(key="many:9").message_id) == (
        {"Reply-To": "r+9@x.test"}, "<fixed-9@x.test>"
    )  # fmt: skip
