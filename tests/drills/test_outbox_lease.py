"""The bug drill 1 found, pinned in-process: a batch is claimed with one lease but sent row by row;
behind a slow SMTP server the lease of its last rows ran out, a sweep claimed them again, and both
senders sent them. A row is now sent only while it is still the sender's with most of a lease
ahead of it: the batch's lease is renewed before its first row, and again for the rows left when
it runs low."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from portal.core import delivery
from portal.core.delivery import outbox_claim, outbox_deliver
from portal.core.outbox import Email, outbox_enqueue
from portal.models import OutboxMessage

pytestmark = [pytest.mark.drill, pytest.mark.django_db]
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def email(key):
    return Email(key=key, to=f"{key}@example.com", template="password_reset",
                 context={"user": None, "reset_url": "https://x.test/r/abc"})  # fmt: skip


def test_rows_claimed_again_while_a_slow_batch_was_sent_go_out_once(settings, mailoutbox):
    with time_machine.travel(NOW, tick=False):
        for key in ("a", "b", "c"):
            outbox_enqueue(email=email(key))
        slow = outbox_claim(now=NOW, limit=3)  # one sender takes the batch ...
    later = NOW + settings.OUTBOX_LEASE + timedelta(seconds=1)
    with time_machine.travel(later, tick=False):
        # ... and is still on its first row when the lease runs out: a sweep takes the batch.
        sweep = outbox_claim(now=later, limit=3)
        assert len(sweep) == 3
        assert outbox_deliver(messages=sweep) == 3
        assert outbox_deliver(messages=slow) == 0  # the slow sender's rows are no longer its own
    assert sorted(m.to[0] for m in mailoutbox) == ["a@example.com", "b@example.com", "c@example.com"]
    assert set(OutboxMessage.objects.values_list("status", flat=True)) == {"sent"}


def test_a_batch_slower_than_its_lease_renews_it_and_sends_none_another_sender_took(settings, monkeypatch, mailoutbox):
    with time_machine.travel(NOW, tick=False):
        for key in ("a", "b", "c"):
            outbox_enqueue(email=email(key))
        batch = outbox_claim(now=NOW, limit=3)
    clock, taken = {"now": NOW}, []
    real_sent = delivery._sent

    def sent_then_stall(msg, *args):
        real_sent(msg, *args)
        if msg.key == "a":  # the server takes longer than a lease over "a"; meanwhile a sweep takes "c"
            clock["now"] = NOW + settings.OUTBOX_LEASE + timedelta(seconds=1)
            taken.extend(outbox_claim(now=clock["now"], limit=1, keys=["c"]))

    monkeypatch.setattr(delivery, "_sent", sent_then_stall)
    assert outbox_deliver(messages=batch, now_fn=lambda: clock["now"]) == 2
    assert [m.to[0] for m in mailoutbox] == ["a@example.com", "b@example.com"]
    rows = {m.key: m for m in OutboxMessage.objects.all()}
    assert (rows["a"].status, rows["b"].status) == ("sent", "sent")
    assert rows["c"].status == "sending" and rows["c"].claim_token == taken[0].claim_token  # the sweep's to send
    assert outbox_deliver(messages=taken) == 1
    assert sorted(m.to[0] for m in mailoutbox) == ["a@example.com", "b@example.com", "c@example.com"]
