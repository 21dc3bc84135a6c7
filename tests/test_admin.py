"""The Django admin as staff: editing a draft of SLA terms (validation, contract lint, its effective
date), published terms read-only and refused, a new draft from a chosen date, publishing a version
after a confirmation of what changes and who is told (one email per contact, sent on commit), and
every changelist loading."""

import re
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from html.parser import HTMLParser

import pytest
import time_machine
from django.contrib import admin
from django.contrib.messages import ERROR, SUCCESS, WARNING
from django.urls import reverse
from django.utils.text import capfirst

from contracts.models import SLAVersion
from contracts.services import sla_version_draft
from portal.models import OutboxMessage

from .factories import ContractFactory, StaffFactory

pytestmark = pytest.mark.django_db

FROZEN = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)


# --- Helpers: a change form as a browser would submit it -----------------------------------------
class FormFields(HTMLParser):
    """The fields of one <form> (by id), as a browser submits them: inputs (checkboxes and radios
    only when checked), selects with their selected options, textareas. Disabled fields, buttons
    and the inline formsets' empty templates (__prefix__) are left out."""

    SKIPPED_TYPES = {"submit", "button", "reset", "image", "file"}

    def __init__(self, form_id: str):
        super().__init__(convert_charrefs=True)
        self.form_id = form_id
        self.in_form = False
        self.found = False
        self.fields: dict[str, list[str]] = defaultdict(list)
        self._select = None
        self._option = None
        self._textarea = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form":
            self.in_form = a.get("id") == self.form_id
            self.found |= self.in_form
            return
        if not self.in_form or "disabled" in a:
            return
        name = a.get("name")
        if tag == "input" and name:
            kind = (a.get("type") or "text").lower()
            if kind in self.SKIPPED_TYPES or (kind in ("checkbox", "radio") and "checked" not in a):
                return
            self._add(name, a.get("value") or ("on" if kind in ("checkbox", "radio") else ""))
        elif tag == "select" and name:
            self._select = {"name": name, "multiple": "multiple" in a, "options": []}
        elif tag == "option" and self._select is not None:
            self._option = {"value": a.get("value"), "selected": "selected" in a, "text": ""}
            self._select["options"].append(self._option)
        elif tag == "textarea" and name:
            self._textarea = {"name": name, "text": ""}

    def handle_data(self, data):
        if self._option is not None:
            self._option["text"] += data
        if self._textarea is not None:
            self._textarea["text"] += data

    def handle_endtag(self, tag):
        if tag == "form":
            self.in_form = False
        elif tag == "option":
            self._option = None
        elif tag == "select" and self._select is not None:
            options = self._select["options"]
            chosen = [o for o in options if o["selected"]]
            if not chosen and options and not self._select["multiple"]:
                chosen = options[:1]  # a browser submits the first option of a single select
            for o in chosen:
                self._add(self._select["name"], o["value"] if o["value"] is not None else o["text"].strip())
            self._select = None
        elif tag == "textarea" and self._textarea is not None:
            text = self._textarea["text"]
            self._add(self._textarea["name"], text[1:] if text.startswith("\n") else text)  # HTML drops it
            self._textarea = None

    def _add(self, name, value):
        if "__prefix__" not in name:
            self.fields[name].append(value)


def form_data(html: str, form_id: str) -> dict[str, list[str]]:
    parser = FormFields(form_id)
    parser.feed(html)
    parser.close()
    assert parser.found, f"no <form id={form_id!r}> on the page"
    return dict(parser.fields)


def inline_index(data: dict, prefix: str, field: str, value: str) -> int:
    """The row number of the inline form whose `field` is `value`."""
    total = int(data[f"{prefix}-TOTAL_FORMS"][0])
    (index,) = [i for i in range(total) if data.get(f"{prefix}-{i}-{field}") == [value]]
    return index


def change_url(version) -> str:
    return reverse("admin:contracts_slaversion_change", args=[version.pk])


def get_change_form(client, version) -> dict[str, list[str]]:
    response = client.get(change_url(version))
    assert response.status_code == 200
    return form_data(response.content.decode(), "slaversion_form")


def inline_formset(response, prefix: str):
    (found,) = [f.formset for f in response.context["inline_admin_formsets"] if f.formset.prefix == prefix]
    return found


def messages_of(response) -> list[tuple[int, str]]:
    return [(m.level, m.message) for m in response.context["messages"]]


def version_snapshot(version: SLAVersion) -> dict:
    """The version and its matrices, to show that nothing was saved."""
    version = SLAVersion.objects.get(pk=version.pk)
    return {
        "version": {f.name: getattr(version, f.attname) for f in SLAVersion._meta.concrete_fields},
        "priorities": sorted(
            version.priorities.values_list("priority", "first_response", "resolution_target", "resolution_limit")
        ),
        "levels": sorted(version.escalation_levels.values_list("level", "channel", "contact")),
        "dwells": sorted(version.escalation_dwells.values_list("level", "priority", "dwell")),
        "tiers": sorted(
            version.credit_tiers.values_list("lower", "lower_inclusive", "upper", "upper_inclusive", "percent"), key=str
        ),
    }


# --- Fixtures ------------------------------------------------------------------------------------
@pytest.fixture(autouse=True)
def fast_hasher(settings):
    # The users here only ever log in with force_login: skip the slow password hashing.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def staff_client(client, sam):
    """A support agent: reads SLA terms."""
    client.force_login(sam)
    return client


@pytest.fixture
def ayo(db):
    return StaffFactory(email="ayo@vendor.example", name="Ayo Account", staff_role="account_manager")


@pytest.fixture
def manager_client(client, ayo):
    """An account manager: keeps SLA drafts (new draft, edit an unpublished version), never publishes."""
    client.force_login(ayo)
    return client


@pytest.fixture
def superuser(db):
    return StaffFactory(email="admin@vendor.example", name="Ada Admin", is_superuser=True, staff_role="")


@pytest.fixture
def admin_client_(client, superuser):
    """A superuser: publishes SLA terms."""
    client.force_login(superuser)
    return client


@pytest.fixture
def kaluari():
    return SLAVersion.objects.get(sla__template_key="kaluari-cloud-backup")


@pytest.fixture
def frozen():
    with time_machine.travel(FROZEN, tick=False):
        yield


@pytest.fixture
def kaluari_draft(kaluari, frozen):
    """Version 2 of the Kaluari terms, a draft from 1 April (Nairobi time)."""
    return sla_version_draft(sla=kaluari.sla, effective_on=date(2026, 4, 1))


def test_every_timezone_staff_type_offers_the_zone_names(admin_client_, kaluari_draft, superuser):
    """A draft SLA version's, a new working calendar's and a person's: the same field as the customer's."""
    for url in (
        change_url(kaluari_draft),
        reverse("admin:contracts_workingcalendar_add"),
        reverse("admin:portal_user_change", args=[superuser.pk]),
    ):
        html = admin_client_.get(url).content.decode()
        assert 'list="id_timezone_zones"' in html and '<option value="Europe/Stockholm">' in html, url
        [field] = re.findall(r'<input[^>]*name="timezone"[^>]*>', html)
        assert 'class="vTextField"' in field, url


# --- A draft's change page and its contract lint ----------------------------------------------------
def num(value: str) -> str:
    """A pattern for a number however many trailing zeros it is shown with (90, 90.0, 90.000)."""
    whole, _, frac = value.partition(".")
    return re.escape(whole) + r"\." + re.escape(frac) + "0*" if frac else re.escape(whole) + r"(?:\.0*)?"


def test_change_page_shows_contract_lint(staff_client, kaluari):
    html = staff_client.get(change_url(kaluari)).content.decode()
    field = re.search(r"<label>Contract lint:</label>\s*<div class=\"readonly\">(.*?)</div>", html, re.S)
    assert field, "no Contract lint field on the page"
    items = re.findall(r"<li>(.*?)</li>", field.group(1))
    assert len(items) == 3, items
    gap1, gap2, overlap = (num("90"), num("95")), (num("99"), num("99.8")), (num("98"), num("98"))
    assert re.match(r"Credit table gap: uptime in \[{}, {}\) ".format(*gap1), items[0]), items[0]
    assert re.match(r"Credit table gap: uptime in \({}, {}\) ".format(*gap2), items[1]), items[1]
    assert re.match(r"Credit table overlap: uptime in \[{}, {}\] ".format(*overlap), items[2]), items[2]


def test_unchanged_form_saves_and_changes_nothing(manager_client, kaluari_draft):
    # The helper submits what a browser would: the round trip is clean.
    before = version_snapshot(kaluari_draft)
    data = get_change_form(manager_client, kaluari_draft)
    assert data["effective_on"] == ["01/04/2026"]  # the admin's locale (en-GB); ISO dates are taken too
    assert int(data["priorities-TOTAL_FORMS"][0]) == 4
    assert int(data["credit_tiers-TOTAL_FORMS"][0]) == 3
    assert len(data["exclusion_causes"]) == 13
    response = manager_client.post(change_url(kaluari_draft), data)
    assert response.status_code == 302, response.context and response.context["errors"]
    assert version_snapshot(kaluari_draft) == before


def test_tier_upside_down_is_refused(manager_client, kaluari_draft):
    before = version_snapshot(kaluari_draft)
    data = get_change_form(manager_client, kaluari_draft)
    row = inline_index(data, "credit_tiers", "percent", "10.000")  # [98.0, 99.0] -> 10%
    data[f"credit_tiers-{row}-lower"] = ["99.5"]
    data["uptime_guarantee"] = ["99.7"]  # a valid change in the same submission: not saved either
    response = manager_client.post(change_url(kaluari_draft), data)
    assert response.status_code == 200
    form = inline_formset(response, "credit_tiers").forms[row]
    assert form.errors == {"lower": ["The lower bound is above the upper bound."]}
    assert "The lower bound is above the upper bound." in response.content.decode()
    assert version_snapshot(kaluari_draft) == before


def test_negative_duration_is_refused(manager_client, kaluari_draft):
    before = version_snapshot(kaluari_draft)
    data = get_change_form(manager_client, kaluari_draft)
    row = inline_index(data, "priorities", "priority", "P1")
    data[f"priorities-{row}-first_response"] = ["-1:00:00"]
    response = manager_client.post(change_url(kaluari_draft), data)
    assert response.status_code == 200
    form = inline_formset(response, "priorities").forms[row]
    assert form.errors == {"first_response": ["A duration cannot be negative."]}
    assert "A duration cannot be negative." in response.content.decode()
    assert version_snapshot(kaluari_draft) == before


def test_negative_maintenance_notice_is_refused(manager_client, kaluari_draft):
    before = version_snapshot(kaluari_draft)
    data = get_change_form(manager_client, kaluari_draft)
    data["maintenance_notice"] = ["-2 00:00:00"]
    response = manager_client.post(change_url(kaluari_draft), data)
    assert response.status_code == 200
    assert response.context["adminform"].form.errors == {"maintenance_notice": ["A duration cannot be negative."]}
    assert version_snapshot(kaluari_draft) == before


YEAR_BOUND = "At most a year (365 days, e.g. 365 00:00:00); a longer duration cannot be a promise."


@pytest.mark.parametrize("value", ["999999999 00:00:00", "3650000 00:00:00", "366 00:00:00"])
@pytest.mark.parametrize(("prefix", "key", "value_of", "field"), [
    ("priorities", "priority", "P3", "first_response"),
    ("priorities", "priority", "P4", "resolution_limit"),
    ("escalation_dwells", None, None, "dwell"),
])  # fmt: skip
def test_a_clock_longer_than_a_year_is_a_field_error(
    manager_client, kaluari_draft, prefix, key, value_of, field, value
):
    """999,999,999 days was a 500 (it does not fit the database); 10,000 years was saved, and every
    ticket filed under it a 500 (its deadline falls after year 9999)."""
    before = version_snapshot(kaluari_draft)
    data = get_change_form(manager_client, kaluari_draft)
    row = inline_index(data, prefix, key, value_of) if key else 0
    data[f"{prefix}-{row}-{field}"] = [value]
    response = manager_client.post(change_url(kaluari_draft), data)
    assert response.status_code == 200
    assert inline_formset(response, prefix).forms[row].errors == {field: [YEAR_BOUND]}
    assert version_snapshot(kaluari_draft) == before


@pytest.mark.parametrize(("field", "value", "error"), [
    ("maintenance_notice", "400 00:00:00", YEAR_BOUND),
    ("maintenance_annual_cap", "3650000 00:00:00", YEAR_BOUND),
    ("escalation_ack_time", "999999999 00:00:00", YEAR_BOUND),
    ("claim_window_days", "366", "At most 365 days after the month's end."),
])  # fmt: skip
def test_terms_longer_than_a_year_are_field_errors(manager_client, kaluari_draft, field, value, error):
    before = version_snapshot(kaluari_draft)
    data = get_change_form(manager_client, kaluari_draft)
    data[field] = [value]
    data["escalation_ack_calendar"] = data["business_calendar"]  # an acknowledgement time needs one
    response = manager_client.post(change_url(kaluari_draft), data)
    assert response.status_code == 200
    assert response.context["adminform"].form.errors == {field: [error]}
    assert version_snapshot(kaluari_draft) == before


def test_a_year_is_still_a_term(manager_client, kaluari_draft):
    data = get_change_form(manager_client, kaluari_draft)
    data["claim_window_days"], data["maintenance_notice"] = ["365"], ["365 00:00:00"]
    assert manager_client.post(change_url(kaluari_draft), data).status_code == 302
    kaluari_draft.refresh_from_db()
    assert (kaluari_draft.claim_window_days, kaluari_draft.maintenance_notice) == (365, timedelta(days=365))


@pytest.mark.parametrize("value", ["101", "-0.5"])
def test_guarantee_outside_0_100_is_refused(manager_client, kaluari_draft, value):
    before = version_snapshot(kaluari_draft)
    data = get_change_form(manager_client, kaluari_draft)
    data["uptime_guarantee"] = [value]
    response = manager_client.post(change_url(kaluari_draft), data)
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert list(errors) == ["uptime_guarantee"]
    assert "Ensure this value is" in errors["uptime_guarantee"][0]
    assert version_snapshot(kaluari_draft) == before


def test_tier_percent_above_100_is_refused(manager_client, kaluari_draft):
    before = version_snapshot(kaluari_draft)
    data = get_change_form(manager_client, kaluari_draft)
    row = inline_index(data, "credit_tiers", "percent", "50.000")
    data[f"credit_tiers-{row}-percent"] = ["150"]
    response = manager_client.post(change_url(kaluari_draft), data)
    assert response.status_code == 200
    assert list(inline_formset(response, "credit_tiers").forms[row].errors) == ["percent"]
    assert version_snapshot(kaluari_draft) == before


def test_valid_save_with_target_after_limit_warns(manager_client, kaluari_draft):
    data = get_change_form(manager_client, kaluari_draft)
    row = inline_index(data, "priorities", "priority", "P3")
    data[f"priorities-{row}-resolution_target"] = ["1 02:00:00"]  # 26 h; the limit is 24 h
    response = manager_client.post(change_url(kaluari_draft), data, follow=True)
    assert response.redirect_chain[0][1] == 302
    assert kaluari_draft.priorities.get(priority="P3").resolution_target == timedelta(hours=26)
    warnings = [text for level, text in messages_of(response) if level == WARNING]
    assert "P3: the resolution target (26 h) is after its limit (24 h)." in warnings
    assert len(warnings) == 4  # ... beside the table's two gaps and one overlap
    assert any(level == SUCCESS for level, _ in messages_of(response))


@pytest.mark.parametrize(
    ("day", "error"),
    [
        ("2026-03-10", "must be in the future: 00:00 of 2026-03-10 (Africa/Nairobi) has passed"),  # today
        ("2026-03-01", "must be in the future: 00:00 of 2026-03-01 (Africa/Nairobi) has passed"),
        ("2026-13-01", "Enter a valid date."),
    ],
)
def test_a_drafts_effective_date_is_never_in_the_past(manager_client, kaluari_draft, day, error):
    before = version_snapshot(kaluari_draft)
    data = get_change_form(manager_client, kaluari_draft)
    data["effective_on"] = [day]
    response = manager_client.post(change_url(kaluari_draft), data)
    assert response.status_code == 200
    (message,) = response.context["adminform"].form.errors["effective_on"]
    assert error in message
    assert version_snapshot(kaluari_draft) == before


def test_a_drafts_effective_date_is_midnight_in_its_timezone(manager_client, kaluari_draft):
    data = get_change_form(manager_client, kaluari_draft)
    data["effective_on"] = ["2026-05-04"]
    data["timezone"] = ["Europe/Stockholm"]  # summer time: 00:00 is 22:00 UTC the day before
    assert manager_client.post(change_url(kaluari_draft), data).status_code == 302
    kaluari_draft.refresh_from_db()
    assert kaluari_draft.effective_from == datetime(2026, 5, 3, 22, 0, tzinfo=UTC)


# --- A published version: read-only for everyone, refused in every way ----------------------------------
def published_page(client, version) -> str:
    response = client.get(change_url(version))
    assert response.status_code == 200
    return response.content.decode()


def test_a_published_version_is_read_only_even_for_a_superuser(admin_client_, kaluari):
    html = published_page(admin_client_, kaluari)
    assert 'name="_save"' not in html and 'name="uptime_guarantee"' not in html
    assert "Published terms never change" in html
    assert 'name="priorities-0-first_response"' not in html  # the inlines are read-only too
    assert 'name="credit_tiers-0-DELETE"' not in html
    assert 'class="deletelink"' not in html
    assert 'value="new_draft"' in html and 'value="publish"' not in html  # "New draft…", never "Publish…"


def test_a_change_post_to_a_published_version_is_refused(admin_client_, manager_client, kaluari, kaluari_draft):
    """The page a manager got for a draft, posted to the published version (terms and inlines)."""
    before = version_snapshot(kaluari)
    data = get_change_form(manager_client, kaluari_draft)
    data["uptime_guarantee"] = ["50"]
    row = inline_index(data, "credit_tiers", "percent", "50.000")
    data[f"credit_tiers-{row}-percent"] = ["5"]
    for client in (manager_client, admin_client_):
        assert client.post(change_url(kaluari), data).status_code == 403
    assert version_snapshot(kaluari) == before


def test_an_inline_post_to_a_published_version_is_refused(admin_client_, kaluari):
    before = version_snapshot(kaluari)
    term = kaluari.priorities.get(priority="P1")
    data = {
        "priorities-TOTAL_FORMS": ["1"], "priorities-INITIAL_FORMS": ["1"],
        "priorities-0-id": [str(term.pk)], "priorities-0-version": [str(kaluari.pk)],
        "priorities-0-first_response": ["9:00:00"], "priorities-0-DELETE": ["on"],
    }  # fmt: skip
    assert admin_client_.post(change_url(kaluari), data).status_code == 403
    assert version_snapshot(kaluari) == before


def test_a_published_version_is_not_deleted(admin_client_, kaluari):
    delete = reverse("admin:contracts_slaversion_delete", args=[kaluari.pk])
    assert admin_client_.get(delete).status_code == 403
    assert admin_client_.post(delete, {"post": "yes"}).status_code == 403
    changelist = reverse("admin:contracts_slaversion_changelist")
    selected = {"action": "delete_selected", "_selected_action": [str(kaluari.pk)]}
    assert "Cannot delete SLA version" in admin_client_.post(changelist, selected).content.decode()
    assert admin_client_.post(changelist, {**selected, "post": "yes"}).status_code == 403
    # Nor the SLA that holds it (a superuser may delete an SLA with only drafts).
    sla_delete = reverse("admin:contracts_sla_delete", args=[kaluari.sla_id])
    assert "Cannot delete SLA" in admin_client_.get(sla_delete).content.decode()
    assert admin_client_.post(sla_delete, {"post": "yes"}).status_code == 403
    assert SLAVersion.objects.filter(pk=kaluari.pk).exists()


def test_a_lead_keeps_a_draft_calendars_closed_dates_and_only_a_manager_shapes_its_clock(client, ayo, lena):
    from datetime import time

    from contracts.models import WorkingCalendar, WorkingHours

    calendar = WorkingCalendar.objects.create(name="New hours", timezone="Africa/Nairobi")
    WorkingHours.objects.create(calendar=calendar, weekday=0, opens=time(8), closes=time(17))
    url = reverse("admin:contracts_workingcalendar_change", args=[calendar.pk])
    client.force_login(lena)  # a support lead: closed dates only
    html = client.get(url).content.decode()
    assert 'name="timezone"' not in html and 'name="hours-0-opens"' not in html and "closed_dates-TOTAL_FORMS" in html
    client.force_login(ayo)
    html = client.get(url).content.decode()
    assert 'name="timezone"' in html and 'name="hours-0-opens"' in html


def test_a_calendar_of_published_terms_keeps_its_clock_and_takes_closed_dates(
    client, superuser, kaluari, acme_contract, alice, django_capture_on_commit_callbacks
):
    """Kaluari's business hours: the timezone and hours posted are not taken (read-only); the closed
    date is saved, audited and the open tickets on the calendar recomputed."""
    from contracts.models import WorkingCalendar
    from portal.models import AuditEntry
    from tickets.models import Ticket
    from tickets.services import ticket_open

    monday_1400 = datetime(2026, 12, 7, 11, 0, tzinfo=UTC)
    with time_machine.travel(monday_1400, tick=False), django_capture_on_commit_callbacks(execute=True):
        ticket = ticket_open(
            user=alice, contract=acme_contract, service=acme_contract.services.get(), priority="P3",
            subject="Restores are slow", description="Since Friday.",
        )  # fmt: skip
    assert ticket.first_response_due == datetime(2026, 12, 8, 6, 0, tzinfo=UTC)  # Tuesday 09:00 Nairobi
    calendar = kaluari.business_calendar
    url = reverse("admin:contracts_workingcalendar_change", args=[calendar.pk])
    with time_machine.travel(monday_1400, tick=False):
        client.force_login(superuser)  # signed in on the frozen day: a session from today would have expired
        html = client.get(url).content.decode()
    assert "Published SLA versions use this calendar" in html
    assert 'name="timezone"' not in html and 'name="hours-0-opens"' not in html
    data = form_data(html, "workingcalendar_form")
    data.update({
        "timezone": ["UTC"], "hours-TOTAL_FORMS": ["6"], "hours-5-weekday": ["5"], "hours-5-opens": ["09:00"],
        "hours-5-closes": ["12:00"], "hours-5-calendar": [str(calendar.pk)],
        "closed_dates-TOTAL_FORMS": ["1"], "closed_dates-0-date": ["2026-12-08"],
        "closed_dates-0-reason": ["Staff day"], "closed_dates-0-calendar": [str(calendar.pk)],
    })  # fmt: skip
    with time_machine.travel(monday_1400, tick=False), django_capture_on_commit_callbacks(execute=True):
        response = client.post(url, data)
    assert response.status_code == 302, response.content.decode()[:3000]
    calendar = WorkingCalendar.objects.get(pk=calendar.pk)
    assert calendar.timezone == "Africa/Nairobi" and sorted(calendar.hours.values_list("weekday", flat=True)) == [
        0,
        1,
        2,
        3,
        4,
    ]
    assert list(calendar.closed_dates.values_list("date", "reason")) == [(date(2026, 12, 8), "Staff day")]
    entry = AuditEntry.objects.get(action="calendar.closed_dates_edited")
    assert (entry.before, entry.after) == ({"closed_dates": {}}, {"closed_dates": {"2026-12-08": "Staff day"}})
    assert entry.actor_email == "admin@vendor.example"
    assert Ticket.objects.get(pk=ticket.pk).first_response_due == datetime(2026, 12, 9, 6, 0, tzinfo=UTC)


def test_a_lead_cannot_rename_the_support_hours_customers_read_in_published_terms(client, lena, alice, acme_contract):
    """Kaluari v1's P3/P4 clock reads "Mon-Fri 08:00-17:00" on the contract page: a lead's rename to
    "Mon-Sat 07:00-20:00" is not taken (the name is read-only), so the published terms read the same."""
    from contracts.models import WorkingCalendar

    old = "Kenya business hours (Mon-Fri 08:00-17:00, Africa/Nairobi)"
    calendar = WorkingCalendar.objects.get(name=old)
    url = reverse("admin:contracts_workingcalendar_change", args=[calendar.pk])
    client.force_login(lena)
    html = client.get(url).content.decode()
    assert 'name="name"' not in html and "its name (the support hours customers read)" in html
    data = form_data(html, "workingcalendar_form")
    data["name"] = ["Kenya business hours (Mon-Sat 07:00-20:00, Africa/Nairobi)"]
    assert client.post(url, data).status_code == 302
    assert WorkingCalendar.objects.get(pk=calendar.pk).name == old
    client.force_login(alice)
    page = client.get(reverse("contract-detail", args=[acme_contract.pk])).content.decode()
    assert old in page and "Mon-Sat 07:00-20:00" not in page


# --- A new draft: a date to choose ------------------------------------------------------------------
def action(client, name: str, *versions, **data):
    return client.post(
        reverse("admin:contracts_slaversion_changelist"),
        {"action": name, "_selected_action": [str(v.pk) for v in versions], **data},
    )


def test_a_new_draft_asks_for_its_effective_date(manager_client, kaluari, frozen):
    page = action(manager_client, "new_draft", kaluari)
    assert page.status_code == 200
    html = page.content.decode()
    assert 'name="effective_on"' in html and "00:00 of the date you choose, Africa/Nairobi time" in html
    assert not SLAVersion.objects.filter(published_at=None).exists()  # nothing made by asking

    response = action(manager_client, "new_draft", kaluari, apply="yes", effective_on="2026-04-01")
    draft = SLAVersion.objects.get(published_at=None)
    assert response.status_code == 302 and response["Location"] == change_url(draft)
    assert (draft.number, draft.effective_from) == (2, datetime(2026, 3, 31, 21, 0, tzinfo=UTC))  # 00:00 Nairobi


@pytest.mark.parametrize(
    ("day", "error"),
    [
        ("2026-03-10", "00:00 of 2026-03-10 (Africa/Nairobi) has passed"),
        ("2025-01-01", "00:00 of 2025-01-01 (Africa/Nairobi) has passed"),
        ("", "This field is required."),
        ("soon", "Enter a valid date."),
        ("0001-01-01", "Enter a date in the years 2000 to 2099."),  # its midnight in Nairobi was a 500
        ("9999-12-31", "Enter a date in the years 2000 to 2099."),
    ],
)
def test_a_new_draft_in_the_past_is_a_400(manager_client, kaluari, frozen, day, error):
    response = action(manager_client, "new_draft", kaluari, apply="yes", effective_on=day)
    assert response.status_code == 400
    assert error in response.content.decode()
    assert not SLAVersion.objects.filter(published_at=None).exists()


# --- Publishing a version: a confirmation first ----------------------------------------------------------
def publish(client, *versions, confirm=True):
    """The "Publish…" action; confirmed (`confirm`) as a person does: the confirmation page first, then
    its form, with the fingerprints of the terms it showed."""
    changelist = reverse("admin:contracts_slaversion_changelist")
    data = {"action": "publish", "_selected_action": [str(v.pk) for v in versions]}
    if confirm:
        page = client.post(changelist, data).content.decode()
        data.update({"apply": "yes", **dict(re.findall(r'name="(terms-\d+)" value="([0-9a-f]+)"', page))})
    return client.post(changelist, data, follow=True)


@pytest.fixture
def draft(kaluari, acme_contract, globex_contract, alice, frozen):
    # Alice is a contact of two contracts on the SLA: she is still emailed once.
    ContractFactory(
        organisation=acme_contract.organisation, reference="KAL-0002", name="Archive for Acme", contacts=[alice]
    )
    draft = sla_version_draft(sla=kaluari.sla, effective_on=date(2026, 4, 9))
    draft.uptime_guarantee = Decimal("99.5")
    draft.save()
    draft.priorities.filter(priority="P1").update(first_response=timedelta(minutes=30))
    return draft


def test_publish_shows_what_changes_and_who_is_told_before_anything_is_sent(
    admin_client_, draft, alice, bob, charlie, mailoutbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = publish(admin_client_, draft, confirm=False)
    assert response.status_code == 200 and callbacks == []
    html = response.content.decode()
    assert "Takes effect</strong> 2026-04-09 00:00 (UTC+03:00) (Africa/Nairobi), after version 1" in html
    assert re.search(r"Monthly uptime guarantee</th><td>99.8%</td><td><strong>99.5%</strong>", html)
    assert re.search(r"P1 first response</th><td>15 min \(24x7 \(Africa/Nairobi\)\)</td><td><strong>30 min", html)
    assert "Who is told (3 contacts, one email each)" in html
    assert "Alice Achieng &lt;alice@acme.example&gt;: KAL-0001 Cloud Backup for Acme (Acme Savings); KAL-0002" in html
    assert "charlie@globex.example" in html and 'name="apply" value="yes"' in html
    draft.refresh_from_db()
    assert draft.published_at is None
    assert not OutboxMessage.objects.exists() and mailoutbox == []


def test_publish_needs_the_publish_permission(manager_client, draft):
    response = publish(manager_client, draft)
    draft.refresh_from_db()
    assert draft.published_at is None
    assert not OutboxMessage.objects.exists()
    assert response.status_code == 200  # the changelist, where the action is not offered


def test_publish_queues_one_email_per_contact_and_sends_on_commit(
    admin_client_, draft, alice, bob, charlie, mailoutbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = publish(admin_client_, draft)
        # Queued in the transaction of the publish; nothing sent before it commits.
        rows = OutboxMessage.objects.filter(key__startswith=f"sla-version:{draft.pk}:")
        assert sorted(rows.values_list("key", "to")) == sorted(
            (f"sla-version:{draft.pk}:contact:{u.pk}", u.email) for u in (alice, bob, charlie)
        )
        assert set(rows.values_list("status", flat=True)) == {OutboxMessage.Status.PENDING}
        assert mailoutbox == []
    assert len(callbacks) == 1

    assert (SUCCESS, f"{draft} published; 3 contact(s) notified.") in messages_of(response)
    draft.refresh_from_db()
    assert draft.published_at == FROZEN
    assert sorted(m.to[0] for m in mailoutbox) == sorted(u.email for u in (alice, bob, charlie))
    assert set(rows.values_list("status", flat=True)) == {OutboxMessage.Status.SENT}
    to_alice = next(m for m in mailoutbox if m.to == [alice.email])
    assert to_alice.subject == "Updated SLA terms from 2026-04-09: Kaluari Cloud Backup SLA (version 2): 2 changes"
    assert "- Monthly uptime guarantee: 99.8% → 99.5%" in to_alice.body
    assert "- P1 first response: 15 min (24x7 (Africa/Nairobi)) → 30 min (24x7 (Africa/Nairobi))" in to_alice.body
    assert "KAL-0001" in to_alice.body and "KAL-0002" in to_alice.body
    assert to_alice.extra_headers["Message-ID"] == rows.get(to=alice.email).message_id
    to_charlie = next(m for m in mailoutbox if m.to == [charlie.email])
    assert "KLA-0001" in to_charlie.body and "KAL-0001" not in to_charlie.body
    assert "- Monthly uptime guarantee: 99.8% → 99.5%" in to_charlie.body


def test_publishing_again_is_refused_and_sends_nothing(
    admin_client_, draft, mailoutbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        publish(admin_client_, draft)
    assert len(mailoutbox) == 3
    rows_before = OutboxMessage.objects.count()

    for confirm in (False, True):
        with django_capture_on_commit_callbacks(execute=True) as callbacks:
            response = publish(admin_client_, draft, confirm=confirm)
        assert (ERROR, f"{draft} is already published.") in messages_of(response)
        assert not any(level == SUCCESS for level, _ in messages_of(response))
        assert callbacks == []
    assert OutboxMessage.objects.count() == rows_before
    assert len(mailoutbox) == 3


def test_publishing_the_published_template_is_refused(
    admin_client_, kaluari, acme_contract, mailoutbox, django_capture_on_commit_callbacks, frozen
):
    published_at = kaluari.published_at
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = publish(admin_client_, kaluari, confirm=False)
    assert messages_of(response) == [(ERROR, f"{kaluari} is already published.")]
    assert callbacks == []
    assert not OutboxMessage.objects.exists()
    assert mailoutbox == []
    kaluari.refresh_from_db()
    assert kaluari.published_at == published_at


def test_a_draft_whose_date_has_passed_cannot_be_confirmed(admin_client_, draft, mailoutbox):
    with time_machine.travel(datetime(2026, 4, 9, 6, 0, tzinfo=UTC), tick=False):
        page = publish(admin_client_, draft, confirm=False).content.decode()
        assert "00:00 of 2026-04-09 (Africa/Nairobi) has passed" in page and 'value="Publish and email' not in page
        response = publish(admin_client_, draft)
    assert any(level == ERROR and "has passed" in text for level, text in messages_of(response))
    draft.refresh_from_db()
    assert draft.published_at is None and mailoutbox == []


def test_a_draft_edited_after_the_confirmation_page_is_shown_again_not_published_unseen(
    admin_client_, draft, ayo, mailoutbox, django_capture_on_commit_callbacks
):
    """Ada (superuser) reads "99.8% -> 99.5%" on the confirmation page; meanwhile Ayo saves the draft
    with 95.0%. Her "Publish and email" publishes nothing and emails no one: the page comes again
    with the terms as they are now, and only its own confirmation publishes them."""
    from django.test import Client

    changelist = reverse("admin:contracts_slaversion_changelist")
    chosen = {"action": "publish", "_selected_action": [str(draft.pk)]}
    page = admin_client_.post(changelist, chosen).content.decode()
    assert re.search(r"Monthly uptime guarantee</th><td>99.8%</td><td><strong>99.5%</strong>", page)
    seen = dict(re.findall(r'name="(terms-\d+)" value="([0-9a-f]+)"', page))
    assert list(seen) == [f"terms-{draft.pk}"]

    manager = Client()
    manager.force_login(ayo)
    data = get_change_form(manager, draft)
    data["uptime_guarantee"] = ["95.0"]
    assert manager.post(change_url(draft), data).status_code == 302

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        again = admin_client_.post(changelist, {**chosen, "apply": "yes", **seen})
    assert again.status_code == 200 and callbacks == [] and mailoutbox == []
    assert (ERROR, f"{draft} was not published: the draft changed since you looked: review it again.") in [
        (m.level, m.message) for m in again.context["messages"]
    ]
    draft.refresh_from_db()
    assert draft.published_at is None and not OutboxMessage.objects.exists()
    html = again.content.decode()
    assert re.search(r"Monthly uptime guarantee</th><td>99.8%</td><td><strong>95.0%</strong>", html)
    fresh = dict(re.findall(r'name="(terms-\d+)" value="([0-9a-f]+)"', html))
    assert fresh != seen

    with django_capture_on_commit_callbacks(execute=True):
        admin_client_.post(changelist, {**chosen, "apply": "yes", **fresh})
    draft.refresh_from_db()
    assert draft.published_at == FROZEN and draft.uptime_guarantee == Decimal("95.0")
    assert "- Monthly uptime guarantee: 99.8% → 95.0%" in next(m.body for m in mailoutbox)


def test_a_confirmation_without_the_terms_it_showed_publishes_nothing(admin_client_, draft, mailoutbox):
    response = admin_client_.post(
        reverse("admin:contracts_slaversion_changelist"),
        {"action": "publish", "_selected_action": [str(draft.pk)], "apply": "yes"},
    )
    assert response.status_code == 200 and "review it again" in response.content.decode()
    draft.refresh_from_db()
    assert draft.published_at is None and mailoutbox == []


# --- Every changelist loads ----------------------------------------------------------------------
APPS = ("contracts", "portal")


def registered(apps=APPS):
    return sorted(
        ((m, model_admin) for m, model_admin in admin.site._registry.items() if m._meta.app_label in apps),
        key=lambda pair: pair[0]._meta.label,
    )


def test_the_registry_covers_the_contracts_and_portal_models():
    labels = {m._meta.label for m, _ in registered()}
    assert {"contracts.SLAVersion", "contracts.Contract", "contracts.WorkingCalendar", "portal.User"} <= labels
    assert "portal.OutboxMessage" in labels


@pytest.mark.parametrize(("model", "model_admin"), registered(), ids=[m._meta.label for m, _ in registered()])
def test_changelist_loads(admin_client_, acme_contract, globex_contract, model, model_admin):
    # A superuser opens every list (who else may: tests/test_roles.py).
    url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
    assert admin_client_.get(url).status_code == 200
    if model_admin.search_fields:
        assert admin_client_.get(url, {"q": "acme"}).status_code == 200


def heading(html: str) -> str:
    return re.search(r"<h1>(.*?)</h1>", html).group(1)


@pytest.mark.parametrize(
    ("model", "model_admin"),
    registered(("contracts", "portal", "tickets", "credits")),
    ids=[m._meta.label for m, _ in registered(("contracts", "portal", "tickets", "credits"))],
)
def test_a_list_is_titled_by_its_name_not_by_the_admins_instruction(admin_client_, model, model_admin):
    url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
    html = admin_client_.get(url).content.decode()
    # Its own title where it has one (the ticket queue, the claims' and the months' reviews), else its name.
    name = OWN_TITLES.get(model._meta.label, capfirst(model._meta.verbose_name_plural))
    assert heading(html) == name and f"<title>{name} |" in html


OWN_TITLES = {
    "tickets.Ticket": "Ticket queue",
    "credits.Claim": "Service-credit claims: the review queue",
    "credits.MonthlyUptime": "Monthly uptime: closed months per contract",
}


def test_a_popup_list_still_says_what_to_choose(admin_client_, acme_contract):
    url = reverse("admin:contracts_service_changelist")
    html = admin_client_.get(url, {"_popup": "1", "_to_field": "id"}).content.decode()
    assert heading(html) == "Select service"
