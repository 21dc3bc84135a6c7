"""The inbound IMAP mailbox (tickets.mailbox_poll, tickets.tasks.poll_mailbox) against a real
Dovecot started by the test (tests/dovecot.py): what the poller hands to the ingest service, when
it moves a message, and what a failure leaves behind. tests/test_inbound_imap_once.py runs the
real ingest service through it (duplicates, a crash, two pollers, a new UIDVALIDITY)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from imap_tools.errors import MailboxFolderCreateError, MailboxLoginError

from portal.core.heartbeat import health
from portal.domain.mail_urls import imap_url
from portal.models import SweepHeartbeat
from tickets import mailbox_poll, tasks

pytestmark = pytest.mark.dovecot


def message(n: int, *, sender: str = "alice@acme.example") -> bytes:
    return (
        f"From: Alice <{sender}>\r\nTo: support@kaluari.com\r\nSubject: Restore fails {n}\r\n"
        f"Message-ID: <restore-{n}@acme.example>\r\nDate: Sun, 6 Dec 2026 03:00:00 +0000\r\n\r\n"
        f"The restore of job {n} fails.\r\n"
    ).encode()


@dataclass(frozen=True)
class Outcome:
    kind: str
    taken: bool = True


class Recorder:
    """Stands in for the ingest service: records each call; `fail` names subjects it cannot store."""

    def __init__(self, fail=()):
        self.calls, self.fail = [], set(fail)

    def __call__(self, raw, *, received_at, source, source_ref):
        self.calls.append({"raw": raw, "received_at": received_at, "source": source, "source_ref": source_ref})
        if any(f.encode() in raw for f in self.fail):
            raise ConnectionError("database unreachable")
        return Outcome("filed")


def run(dovecot, ingest, **kwargs):
    config = imap_url(dovecot.url())
    return mailbox_poll.poll(config=config, processed_folder="Processed", batch=kwargs.pop("batch", 200), ingest=ingest)


def test_each_message_is_handed_over_with_its_internaldate_and_place_then_moved(dovecot):
    dovecot.append(message(1), internaldate='"06-Dec-2026 03:14:15 +0100"')
    dovecot.append(message(2), internaldate='" 5-Dec-2026 23:59:59 -0500"')
    ingest = Recorder()

    result = run(dovecot, ingest)

    assert [c["raw"] for c in ingest.calls] == [message(1), message(2)]  # the bytes as stored, oldest first
    assert [c["received_at"] for c in ingest.calls] == [
        datetime(2026, 12, 6, 2, 14, 15, tzinfo=UTC),  # the server's receipt time, never the Date: header
        datetime(2026, 12, 6, 4, 59, 59, tzinfo=UTC),
    ]
    assert {c["source"] for c in ingest.calls} == {"imap"}
    uidvalidity = ingest.calls[0]["source_ref"].split(":")[1]
    assert [c["source_ref"] for c in ingest.calls] == [f"INBOX:{uidvalidity}:1", f"INBOX:{uidvalidity}:2"]
    assert dovecot.count("INBOX") == 0 and dovecot.count("Processed") == 2
    assert str(result) == "filed 2; moved 2"
    # Nothing new: the next run hands nothing over.
    assert str(run(dovecot, ingest)) == "nothing new; moved 0" and len(ingest.calls) == 2


def test_a_message_that_could_not_be_stored_stays_in_the_inbox_for_the_next_run(dovecot):
    for n in (1, 2, 3):
        dovecot.append(message(n))

    with pytest.raises(mailbox_poll.MailboxStalled, match="filed 2; moved 2; left in the inbox 1"):
        run(dovecot, Recorder(fail=["Restore fails 2"]))
    assert dovecot.count("INBOX") == 1 and dovecot.count("Processed") == 2

    again = Recorder()
    assert str(run(dovecot, again)) == "filed 1; moved 1"
    assert [c["raw"] for c in again.calls] == [message(2)]
    assert dovecot.count("INBOX") == 0 and dovecot.count("Processed") == 3


def test_a_batch_takes_the_oldest_and_leaves_the_rest_for_the_next_minute(dovecot):
    for n in (1, 2, 3):
        dovecot.append(message(n))
    ingest = Recorder()
    run(dovecot, ingest, batch=2)
    assert [c["raw"] for c in ingest.calls] == [message(1), message(2)] and dovecot.count("INBOX") == 1


def test_large_messages_are_fetched_in_groups(dovecot, monkeypatch):
    monkeypatch.setattr(mailbox_poll, "FETCH_GROUP_BYTES", 400)
    sizes = []
    fetch = mailbox_poll._fetch
    monkeypatch.setattr(mailbox_poll, "_fetch", lambda mb, uids: sizes.append(len(uids)) or fetch(mb, uids))
    for n in range(5):
        dovecot.append(message(n) + b"x" * 150)
    ingest = Recorder()
    run(dovecot, ingest)
    assert sizes == [1, 1, 1, 1, 1] and len(ingest.calls) == 5 and dovecot.count("Processed") == 5


def test_the_message_is_not_marked_seen_by_reading_it(dovecot):
    dovecot.append(message(1))
    with pytest.raises(mailbox_poll.MailboxStalled):
        run(dovecot, Recorder(fail=["Restore fails 1"]))
    with dovecot.client() as imap:
        imap.select("INBOX", readonly=True)
        typ, data = imap.uid("FETCH", "1:*", "(FLAGS)")
    assert b"\\Seen" not in data[0]


# --- The beat task and its heartbeat ----------------------------------------------------------------
@pytest.mark.django_db
def test_without_a_mailbox_the_task_records_that_it_is_off(settings):
    settings.INBOUND_IMAP = None
    assert tasks.poll_mailbox() == "off: no mailbox to poll (INBOUND_IMAP_URL is not set)"
    assert (
        SweepHeartbeat.objects.get(name="inbound-imap").last_result
        == "off: no mailbox to poll (INBOUND_IMAP_URL is not set)"
    )


@pytest.mark.django_db
def test_a_mailbox_that_cannot_be_read_goes_stale_on_healthz(dovecot, settings, client):
    settings.INBOUND_IMAP = imap_url(dovecot.url())
    start = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)
    with time_machine.travel(start, tick=False):
        tasks.poll_mailbox()  # reachable: on time
    assert health(start + timedelta(minutes=3))["sweeps"]["inbound-imap"]["healthy"]

    settings.INBOUND_IMAP = imap_url(dovecot.url(password="wrong"))
    for minute in range(1, 6):
        with time_machine.travel(start + timedelta(minutes=minute), tick=False), pytest.raises(MailboxLoginError):
            tasks.poll_mailbox()
    report = health(start + timedelta(minutes=5))
    assert not report["sweeps"]["inbound-imap"]["healthy"] and report["status"] == "unhealthy"
    assert SweepHeartbeat.objects.get(name="inbound-imap").last_finished_at == start


def test_two_pollers_creating_the_processed_folder_at_once_both_go_on(dovecot):
    """Both found it missing; the other made it first, so this one's CREATE fails: it goes on (CI saw
    the second of two pollers fail so). A CREATE that fails with the folder still missing fails."""
    config = imap_url(dovecot.url())
    with mailbox_poll.connect(config, timeout=10) as mailbox:
        answers = iter([False, True])  # missing when asked, there after the failed create
        real_exists = mailbox.folder.exists
        mailbox.folder.exists = lambda folder: next(answers)
        mailbox.folder.create("Processed")  # the other poller's
        mailbox_poll._ensure_folder(mailbox, "Processed")  # no error
        mailbox.folder.exists = lambda folder: False
        with pytest.raises(MailboxFolderCreateError):
            mailbox_poll._ensure_folder(mailbox, "Processed")  # it says it failed and nothing is there
        assert real_exists("Processed")
