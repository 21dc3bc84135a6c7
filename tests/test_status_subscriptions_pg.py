"""The subscription form sent twice at once for the same new address, on PostgreSQL (real row locks,
two connections): one subscriber, one confirmation email, never two."""

import threading
from datetime import UTC, datetime

import pytest
from django.db import connections

from contracts.models import StatusSubscriber, SubscriptionRequest
from contracts.subscribers.services import Requested, subscription_request
from portal.models import OutboxMessage

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
NOW = datetime(2026, 11, 10, 9, 0, tzinfo=UTC)


def test_two_requests_at_once_for_a_new_address_write_one_confirmation(backup):
    barrier, results = threading.Barrier(4), []

    def run(email):
        try:
            barrier.wait(timeout=10)
            results.append(subscription_request(email=email, services=[], all_services=True, source="198.51.100.7",
                                                now=NOW))  # fmt: skip
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(e,)) for e in ("eve@example.org", "Eve+a@example.org") * 2]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [Requested.HELD] * 3 + [Requested.SENT]
    assert StatusSubscriber.objects.count() == 1 and SubscriptionRequest.objects.count() == 4
    assert list(OutboxMessage.objects.values_list("to", flat=True)) in (["eve@example.org"], ["Eve+a@example.org"])
