"""The two SLA templates the product ships (installed after every migrate, so present in the test
database), pinned to every figure of PRODUCT.md; their installer; and the demo data built on them."""

import re
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.apps import apps
from django.urls import reverse

from contracts.choices import Cause, Channel, CreditKind, Priority
from contracts.models import SLA, Contract, SLAVersion, WorkingCalendar
from contracts.selectors import version_with_terms
from contracts.sla_templates import CALENDARS, MODEL_NAMES, current_models, install
from portal.models import User
from portal.site import demo

from .test_dashboard import text_of

pytestmark = pytest.mark.django_db

H = lambda n: timedelta(hours=n)  # noqa: E731
M = lambda n: timedelta(minutes=n)  # noqa: E731
MON_FRI_8_17 = [(d, time(8), time(17)) for d in range(5)]


def template_version(key: str) -> SLAVersion:
    sla = SLA.objects.get(template_key=key)
    assert sla.is_template
    (version,) = sla.versions.all()  # a shipped template has exactly one version
    return version_with_terms(version_id=version.pk)


def hours_of(calendar: WorkingCalendar) -> list[tuple[int, time, time]]:
    return [(h.weekday, h.opens, h.closes) for h in calendar.hours.order_by("weekday", "opens")]


# --- Kaluari Cloud Backup -----------------------------------------------------------------------
@pytest.fixture
def kaluari():
    return template_version("kaluari-cloud-backup")


@pytest.fixture
def klart():
    return template_version("klart-ai")


def test_kaluari_uptime_credit_and_claim_terms(kaluari):
    assert kaluari.sla.vendor == "Kaluari Limited"
    assert kaluari.number == 1
    assert kaluari.is_published and kaluari.published_at <= datetime.now(UTC)
    assert kaluari.uptime_guarantee == Decimal("99.8")
    assert kaluari.timezone == "Africa/Nairobi"
    assert kaluari.credit_kind == CreditKind.REFUND
    assert kaluari.claim_window_days == 30
    assert kaluari.maintenance_notice == H(48)
    assert kaluari.maintenance_annual_cap == H(12)
    assert kaluari.escalation_ack_time is None  # the priority's first-response time applies


def test_kaluari_clocks(kaluari):
    by_priority = {p.priority: p for p in kaluari.priorities.all()}
    assert sorted(by_priority) == [Priority.P1, Priority.P2, Priority.P3, Priority.P4]
    for name in (Priority.P1, Priority.P2):  # 24x7
        cal = by_priority[name].calendar
        assert cal.always_open, name
        assert cal.timezone == "Africa/Nairobi"
        assert by_priority[name].resolution_clock == cal
    for name in (Priority.P3, Priority.P4):  # Nairobi business hours, Kenyan public holidays
        cal = by_priority[name].calendar
        assert not cal.always_open, name
        assert cal.timezone == "Africa/Nairobi"
        assert cal.holiday_country == "KE" and cal.holiday_subdivision == ""
        assert hours_of(cal) == MON_FRI_8_17
        assert by_priority[name].resolution_clock == cal
    assert kaluari.business_calendar == by_priority[Priority.P3].calendar


@pytest.mark.parametrize(
    ("priority", "first_response", "target", "limit", "meaning_words"),
    [
        (Priority.P1, M(15), H(1), H(1), ["production incident", "push, process or trigger backup within 12 hours"]),
        (Priority.P2, H(1), H(4), H(4), ["major incident", "backup agent cannot complete a backup job"]),
        (Priority.P3, H(4), H(12), H(24), ["medium-to-low impact", "only the restore process"]),
        (Priority.P4, H(8), H(24), H(48), ["general error", "minor interruption", "network connectivity"]),
    ],
)
def test_kaluari_priority_matrix(kaluari, priority, first_response, target, limit, meaning_words):
    term = kaluari.priorities.get(priority=priority)
    assert term.first_response == first_response
    assert term.resolution_target == target
    assert term.resolution_limit == limit
    for words in meaning_words:
        assert words in term.meaning.lower()


def test_kaluari_escalation_ladder(kaluari):
    levels = [(lv.level, lv.channel, lv.contact, lv.staff_role) for lv in kaluari.escalation_levels.order_by("level")]
    assert levels == [
        (1, Channel.EMAIL, "support@kaluari.com", "support_agent"),
        (2, Channel.PHONE, "+254 728 999 222", "support_lead"),
        # Blank contact: the organisation's own account / cloud solutions manager.
        (3, Channel.PHONE, "", "account_manager"),
        (4, Channel.PHONE, "", "cloud_solutions_manager"),
    ]
    instructions = {lv.level: lv.instruction.lower() for lv in kaluari.escalation_levels.all()}
    assert "email" in instructions[1] and "support" in instructions[1]
    assert "support line" in instructions[2]
    assert "account manager" in instructions[3]
    assert "cloud solutions manager" in instructions[4]


def test_kaluari_escalation_dwells_are_product_md_reading(kaluari):
    dwells = {(d.level, d.priority): d.dwell for d in kaluari.escalation_dwells.all()}
    expected = {
        1: (M(15), M(15), M(30), H(1)),
        2: (H(1), H(2), H(4), H(12)),
        3: (H(1), H(2), H(4), H(12)),
        4: (H(4), H(4), H(12), H(36)),
    }
    assert dwells == {
        (level, priority): dwell
        for level, row in expected.items()
        for priority, dwell in zip((Priority.P1, Priority.P2, Priority.P3, Priority.P4), row, strict=True)
    }


def test_kaluari_credit_tiers_as_written(kaluari):
    tiers = sorted(
        ((t.lower, t.lower_inclusive, t.upper, t.upper_inclusive, t.percent) for t in kaluari.credit_tiers.all()),
        key=lambda row: row[2],
        reverse=True,
    )
    assert tiers == [
        (Decimal("98.0"), True, Decimal("99.0"), True, Decimal("10")),
        (Decimal("95.0"), True, Decimal("98.0"), True, Decimal("25")),
        (None, True, Decimal("90.0"), False, Decimal("50")),
    ]


def test_kaluari_exclusions_are_the_thirteen_causes(kaluari):
    assert len(kaluari.exclusion_causes) == 13
    assert set(kaluari.exclusion_causes) == {
        Cause.MISUSE, Cause.UNAUTHORISED_CHANGE, Cause.UNSUPPORTED_EQUIPMENT, Cause.BEYOND_CONTROL,
        Cause.THIRD_PARTY, Cause.SUSPENSION, Cause.EXTERNAL_NETWORK, Cause.SCHEDULED_MAINTENANCE,
        Cause.FORCE_MAJEURE, Cause.TARGETED_ATTACK, Cause.DDOS, Cause.REQUEST_BURST, Cause.FAIR_USAGE,
    }  # fmt: skip
    assert Cause.UNPLANNED not in kaluari.exclusion_causes


# --- Klart AI -----------------------------------------------------------------------------------
def test_klart_uptime_credit_and_maintenance_terms(klart):
    assert klart.sla.vendor == "Klart AI"
    assert klart.is_published and klart.published_at <= datetime.now(UTC)
    assert klart.uptime_guarantee == Decimal("99.9")
    assert klart.credit_kind == CreditKind.ACCOUNT_CREDIT
    assert klart.maintenance_notice == H(48)
    assert klart.maintenance_annual_cap == H(12)
    assert not klart.credit_tiers.exists()  # "set per contract"
    assert set(klart.exclusion_causes) == {Cause.CUSTOMER_MODIFICATION, Cause.FORCE_MAJEURE}
    assert len(klart.exclusion_causes) == 2


def test_klart_one_priority_free_pair_on_working_days(klart):
    (term,) = klart.priorities.all()
    assert term.priority == Priority.STANDARD
    assert term.first_response == H(4)
    assert term.resolution_target == term.resolution_limit == H(24)
    # First response: 4 working hours, Monday to Friday, public holidays excluded.
    cal = term.calendar
    assert not cal.always_open
    assert cal.holiday_country != ""
    assert {weekday for weekday, _, _ in hours_of(cal)} == {0, 1, 2, 3, 4}
    assert cal.timezone == klart.timezone
    # Resolution too runs Monday to Friday, public holidays excluded.
    res = term.resolution_clock
    assert not res.always_open
    assert res.holiday_country == cal.holiday_country
    assert {weekday for weekday, _, _ in hours_of(res)} == {0, 1, 2, 3, 4}
    assert res.timezone == klart.timezone
    # docs/decisions.md: Stockholm, Swedish holidays; 08:00-17:00 for the acknowledgement, all day
    # on working days for the resolution.
    assert klart.timezone == "Europe/Stockholm"
    assert cal.holiday_country == "SE"
    assert hours_of(cal) == MON_FRI_8_17
    assert hours_of(res) == [(d, time(0), time(0)) for d in range(5)]  # 00:00-24:00


@pytest.mark.parametrize("key", ["kaluari-cloud-backup", "klart-ai"])
def test_offpeak_window_is_22_to_06_local(key):
    version = template_version(key)
    assert (version.offpeak_start, version.offpeak_end) == (time(22), time(6))


def test_klart_escalation_is_acknowledged_within_four_working_hours(klart):
    assert klart.escalation_ack_time == H(4)
    assert klart.escalation_ack_calendar == klart.priorities.get().calendar
    # One rung, email (its support address: tickets come in there), with no dwell: nothing escalates.
    assert list(klart.escalation_levels.values_list("level", "channel", "contact")) == [
        (1, "email", "support@klart.ai")
    ]
    assert not klart.escalation_dwells.exists()


def test_email_tickets_are_p3_on_kaluari_and_the_one_priority_on_klart(klart):
    assert template_version("kaluari-cloud-backup").email_priority == "P3"
    assert klart.email_priority == ""  # blank: its least urgent (its only) priority


# --- The installer ------------------------------------------------------------------------------
def row_counts(models) -> dict[str, int]:
    return {name: model.objects.count() for name, model in models.items()}


def test_install_again_creates_nothing():
    models = current_models()
    before = row_counts(models)
    # The migrate that built the test database installed every shipped calendar.
    assert set(WorkingCalendar.objects.values_list("name", flat=True)) >= {c["name"] for c in CALENDARS.values()}
    assert install(models) == []
    assert row_counts(models) == before


def test_staff_edits_survive_a_reinstall():
    """Staff change a template as they change any terms: a new version, published (its first
    version never changes), and the closed dates of its calendar."""
    from contracts.models import ClosedDate
    from contracts.services import sla_version_draft, sla_version_publish

    version = SLAVersion.objects.get(sla__template_key="kaluari-cloud-backup")
    now = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)
    v2 = sla_version_draft(sla=version.sla, effective_on=datetime(2026, 4, 1).date(), now=now)
    v2.uptime_guarantee = Decimal("99.5")
    v2.save()
    v2.credit_tiers.filter(percent=Decimal("50")).update(percent=Decimal("40"))
    v2.escalation_levels.filter(level=2).update(contact="+254 700 000 000")
    v2.priorities.filter(priority=Priority.P4).delete()
    sla_version_publish(version=v2, now=now)
    version.sla.summary = "Edited by staff."
    version.sla.save()
    business = version.business_calendar
    ClosedDate.objects.create(calendar=business, date=datetime(2026, 12, 24).date(), reason="Christmas Eve")
    before = row_counts(current_models())

    assert install(current_models()) == []

    v2.refresh_from_db()
    assert v2.uptime_guarantee == Decimal("99.5")
    assert v2.sla.summary == "Edited by staff."
    assert sorted(t.percent for t in v2.credit_tiers.all()) == [Decimal("10"), Decimal("25"), Decimal("40")]
    assert v2.escalation_levels.get(level=2).contact == "+254 700 000 000"
    assert not v2.priorities.filter(priority=Priority.P4).exists()
    assert SLAVersion.objects.get(pk=version.pk).uptime_guarantee == Decimal("99.8")  # version 1 as shipped
    business.refresh_from_db()
    assert business.closed_dates.get().reason == "Christmas Eve"
    assert hours_of(business) == MON_FRI_8_17
    assert row_counts(current_models()) == before


def test_renamed_shipped_calendar_is_not_installed_again():
    """A calendar is a staff-editable row like any other: renaming it must not make the next
    migrate ship a second copy under the old name. (Published terms use this one, so its name is
    frozen now; it was renamed before that, or in a database where no published version uses it.)"""
    cal = WorkingCalendar.objects.get(name=CALENDARS["nairobi-24x7"]["name"])
    WorkingCalendar.objects.filter(pk=cal.pk).update(name="Round the clock (Nairobi)")
    before = row_counts(current_models())
    assert install(current_models()) == []
    assert row_counts(current_models()) == before
    assert not WorkingCalendar.objects.filter(name=CALENDARS["nairobi-24x7"]["name"]).exists()


def test_install_recreates_a_missing_template():
    # A published version is never deleted, nor the SLA holding it: here the template was unmarked
    # and renamed (the shipped calendars it used are still there, and are used again).
    SLA.objects.filter(template_key="klart-ai").update(template_key="", name="Klart AI SLA (2024 copy)")
    created = install(current_models())
    assert [s.template_key for s in created] == ["klart-ai"]
    assert template_version("klart-ai").priorities.get().first_response == H(4)


# --- The demo data ------------------------------------------------------------------------------
FROZEN = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)
DEMO_APPS = ("portal", "contracts", "tickets", "credits")


@pytest.fixture
def fast_hasher(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def frozen():
    with time_machine.travel(FROZEN, tick=False):
        yield


def all_counts() -> dict[str, int]:
    """Rows of every model of the project's apps, many-to-many tables included."""
    return {
        model._meta.label: model._default_manager.count()
        for model in apps.get_models(include_auto_created=True)
        if model._meta.app_label in DEMO_APPS
    }


def customers() -> list[tuple[str, str]]:
    """(email, contract reference) of every demo customer."""
    return [(email, spec["contract"]["reference"]) for spec in demo.ORGANISATIONS for email, _, _ in spec["users"]]


def test_seed_demo_twice_changes_nothing(fast_hasher, frozen):
    empty = all_counts()
    demo.seed_demo()
    first = all_counts()
    hashes = dict(User.objects.values_list("email", "password"))

    demo.seed_demo()

    assert all_counts() == first
    assert dict(User.objects.values_list("email", "password")) == hashes
    # The first run did create the demo: staff, an admin, four customers, two contracts.
    assert first["portal.User"] - empty["portal.User"] == len(demo.STAFF) + 1 + len(customers())
    assert first["contracts.Contract"] - empty["contracts.Contract"] == 2
    assert first["contracts.Organisation"] - empty["contracts.Organisation"] == 2
    assert first["contracts.SLA"] - empty["contracts.SLA"] == 1  # Globex's own copy of Klart's terms
    assert first["contracts.CreditTier"] - empty["contracts.CreditTier"] == 3


def test_seed_demo_contracts_use_the_shipped_templates(fast_hasher, frozen, client):
    demo.seed_demo()
    acme = Contract.objects.get(reference="KAL-0001")
    assert acme.sla.template_key == "kaluari-cloud-backup"
    # Customers read the SLA's name; "(template)" is the admin's word for staff choosing terms.
    assert (acme.sla.name, str(acme.sla)) == ("Kaluari Cloud Backup SLA", "Kaluari Cloud Backup SLA (template)")
    client.force_login(User.objects.get(email="alice@acme.example"))
    for url in (reverse("dashboard"), reverse("contract-detail", args=[acme.pk])):
        page = client.get(url).content.decode()
        assert "Kaluari Cloud Backup SLA" in page and "(template)" not in page, url
    # Alice, the admin, is the notification contact; both may open tickets.
    assert sorted(acme.contacts.values_list("email", flat=True)) == ["alice@acme.example"]
    assert sorted(acme.support_contacts.values_list("email", flat=True)) == ["alice@acme.example", "bob@acme.example"]
    globex = Contract.objects.get(reference="KLA-0001")
    assert not globex.sla.is_template
    version = globex.sla.versions.get()
    assert version.is_published and version.uptime_guarantee == Decimal("99.9")
    tiers = sorted(
        version.credit_tiers.values_list("lower", "lower_inclusive", "upper", "upper_inclusive", "percent"),
        key=lambda row: row[4],
    )
    assert tiers == [
        (Decimal("99.0"), True, Decimal("99.9"), False, Decimal("10")),
        (Decimal("95.0"), True, Decimal("99.0"), False, Decimal("25")),
        (None, True, Decimal("95.0"), False, Decimal("50")),
    ]
    assert version.priorities.get().first_response == H(4)
    # Klart's one priority is "Standard" to its customers: "STD" is the database's code.
    client.force_login(User.objects.get(email="charlie@globex.example"))
    for url in (reverse("dashboard"), reverse("contract-detail", args=[globex.pk])):
        assert not re.search(r"\bSTD\b", text_of(client.get(url))), url
    assert "Standard: moves up after" in text_of(client.get(url))


def test_demo_staff_log_in_with_the_demo_password(client, fast_hasher, frozen):
    demo.seed_demo()
    for email in [email for email, *_ in demo.STAFF] + [demo.ADMIN[0]]:
        client.logout()
        response = client.post(reverse("login"), {"username": email, "password": demo.DEMO_PASSWORD})
        assert response.status_code == 302, email
        assert client.get(reverse("dashboard")).url == reverse("admin:index")
        assert client.get(reverse("admin:index")).status_code == 200, email


@pytest.mark.parametrize(("email", "reference"), customers())
def test_demo_customer_logs_in_and_sees_only_their_contract(client, fast_hasher, frozen, email, reference):
    demo.seed_demo()
    response = client.post(reverse("login"), {"username": email, "password": demo.DEMO_PASSWORD})
    assert response.status_code == 302 and response.url == reverse("dashboard")
    own = Contract.objects.get(reference=reference)
    other = Contract.objects.exclude(reference=reference).get(reference__in=["KAL-0001", "KLA-0001"])
    page = client.get(reverse("contract-detail", args=[own.pk]))
    assert page.status_code == 200
    assert own.name in page.content.decode()
    assert client.get(reverse("contract-detail", args=[other.pk])).status_code == 404


def test_demo_password_is_refused_when_wrong(client, fast_hasher, frozen):
    demo.seed_demo()
    response = client.post(reverse("login"), {"username": "alice@acme.example", "password": demo.DEMO_PASSWORD + "x"})
    assert response.status_code == 200


def test_model_names_cover_every_contracts_template_model():
    # The installer counts on MODEL_NAMES to reach every table a template writes.
    assert set(current_models()) == set(MODEL_NAMES)


# --- The post-migrate installer -----------------------------------------------------------------
def test_the_installer_waits_for_a_migration_to_the_head(monkeypatch):
    """`migrate contracts zero` (or back to an older migration) left no tables, or older ones, for
    the code's models: the installer read them and the command failed after unapplying. It runs
    only after a migration that applied and left every table and column the models have."""
    from types import SimpleNamespace

    from contracts import sla_templates
    from portal.core.migrate_hooks import models_migrated

    calls = []
    monkeypatch.setattr(sla_templates, "install", lambda models: calls.append(models))
    migration = SimpleNamespace(app_label="contracts", name="0004_x")
    sla_templates.install_after_migrate(None, plan=[(migration, False), (migration, True)])
    assert calls == []
    sla_templates.install_after_migrate(None, plan=[(migration, False)])
    assert len(calls) == 1

    def model(table, *columns):
        return SimpleNamespace(_meta=SimpleNamespace(db_table=table, concrete_fields=[SimpleNamespace(column=c) for c in columns]))  # fmt: skip

    assert models_migrated([], current_models().values(), "default")
    assert not models_migrated([], [model("contracts_sla", "id", "template_key_gone")], "default")
    assert not models_migrated([], [model("contracts_gone", "id")], "default")
