"""Versioned SLA terms: the version in force at the time of an event, and publishing."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core import mail

from contracts.models import SLA
from contracts.selectors import version_in_force
from contracts.services import PublishError, sla_version_draft, sla_version_publish
from portal.models import OutboxMessage

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def kaluari():
    return SLA.objects.get(template_key="kaluari-cloud-backup")


def test_the_version_in_force_is_the_latest_published_effective_one(kaluari):
    v1 = kaluari.versions.get(number=1)
    v2 = sla_version_draft(sla=kaluari, effective_from=datetime(2026, 12, 1, tzinfo=UTC))
    # A draft is never in force, whatever its date.
    assert version_in_force(sla_id=kaluari.pk, at=datetime(2027, 1, 1, tzinfo=UTC)) == v1
    sla_version_publish(version=v2, now=NOW)
    assert version_in_force(sla_id=kaluari.pk, at=datetime(2026, 11, 30, 23, 59, tzinfo=UTC)) == v1
    assert version_in_force(sla_id=kaluari.pk, at=datetime(2026, 12, 1, tzinfo=UTC)) == v2
    assert version_in_force(sla_id=kaluari.pk, at=datetime(2024, 1, 1, tzinfo=UTC)) is None


def test_a_draft_copies_every_term(kaluari):
    v1 = kaluari.versions.get(number=1)
    v2 = sla_version_draft(sla=kaluari, effective_from=NOW)
    assert v2.number == 2 and v2.published_at is None
    assert v2.uptime_guarantee == v1.uptime_guarantee and v2.exclusion_causes == v1.exclusion_causes

    def terms(v):
        return (
            sorted(v.priorities.values_list("priority", "first_response", "resolution_target", "resolution_limit")),
            sorted(v.escalation_levels.values_list("level", "channel", "contact", "staff_role")),
            sorted(v.escalation_dwells.values_list("level", "priority", "dwell")),
            sorted(v.credit_tiers.values_list("percent", "lower", "upper")),
        )

    assert terms(v2) == terms(v1)


@time_machine.travel(NOW, tick=False)
def test_publishing_emails_each_contact_once_through_the_outbox(
    kaluari, acme_contract, globex_contract, alice, bob, charlie, django_capture_on_commit_callbacks
):
    draft = sla_version_draft(sla=kaluari, effective_from=NOW + timedelta(days=30))
    draft.change_summary = "P4 resolution limit is now 40 hours."
    draft.save()
    with django_capture_on_commit_callbacks(execute=True):
        assert sla_version_publish(version=draft) == 3  # Alice, Bob (Acme) and Charlie (Globex)
    keys = set(OutboxMessage.objects.values_list("key", flat=True))
    assert keys == {f"sla-version:{draft.pk}:contact:{u.pk}" for u in (alice, bob, charlie)}
    assert sorted(m.to[0] for m in mail.outbox) == sorted(u.email for u in (alice, bob, charlie))
    to_alice = next(m for m in mail.outbox if m.to == [alice.email])
    assert to_alice.subject == "Updated SLA terms: Kaluari Cloud Backup SLA (template) (version 2)"
    assert "P4 resolution limit is now 40 hours." in to_alice.body
    assert "2026-12-02 12:00 (UTC+03:00)" in to_alice.body  # effective moment in the contract's timezone
    assert "KAL-0001" in to_alice.body and "KLA-0001" not in to_alice.body  # only her own contracts
    with pytest.raises(PublishError):
        sla_version_publish(version=draft)
    assert OutboxMessage.objects.count() == 3


def test_a_version_without_priorities_cannot_be_published(kaluari):
    draft = sla_version_draft(sla=kaluari, effective_from=NOW)
    draft.priorities.all().delete()
    with pytest.raises(PublishError, match="no priority terms"):
        sla_version_publish(version=draft)
    draft.refresh_from_db()
    assert draft.published_at is None
