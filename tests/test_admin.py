"""The Django admin as staff: editing SLA terms (validation and contract lint), publishing a new
version (one email per contact, sent on commit), and every changelist loading."""

import re
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser

import pytest
import time_machine
from django.contrib import admin
from django.contrib.messages import ERROR, SUCCESS, WARNING
from django.urls import reverse

from contracts.models import SLAVersion
from contracts.services import sla_version_draft
from portal.models import OutboxMessage

from .factories import ContractFactory

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
def staff_client(client, ada):
    # Editing a published version's terms and publishing are a superuser's (tests/test_roles.py).
    client.force_login(ada)
    return client


@pytest.fixture
def kaluari():
    return SLAVersion.objects.get(sla__template_key="kaluari-cloud-backup")


@pytest.fixture
def frozen():
    with time_machine.travel(FROZEN, tick=False):
        yield


# --- The change page and its contract lint ------------------------------------------------------
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


def test_unchanged_form_saves_and_changes_nothing(staff_client, kaluari):
    # The helper submits what a browser would: the round trip is clean.
    before = version_snapshot(kaluari)
    data = get_change_form(staff_client, kaluari)
    assert int(data["priorities-TOTAL_FORMS"][0]) == 4
    assert int(data["credit_tiers-TOTAL_FORMS"][0]) == 3
    assert len(data["exclusion_causes"]) == 13
    response = staff_client.post(change_url(kaluari), data)
    assert response.status_code == 302, response.context and response.context["errors"]
    assert version_snapshot(kaluari) == before


def test_tier_upside_down_is_refused(staff_client, kaluari):
    before = version_snapshot(kaluari)
    data = get_change_form(staff_client, kaluari)
    row = inline_index(data, "credit_tiers", "percent", "10.000")  # [98.0, 99.0] -> 10%
    data[f"credit_tiers-{row}-lower"] = ["99.5"]
    data["uptime_guarantee"] = ["99.7"]  # a valid change in the same submission: not saved either
    response = staff_client.post(change_url(kaluari), data)
    assert response.status_code == 200
    form = inline_formset(response, "credit_tiers").forms[row]
    assert form.errors == {"lower": ["The lower bound is above the upper bound."]}
    assert "The lower bound is above the upper bound." in response.content.decode()
    assert version_snapshot(kaluari) == before


def test_negative_duration_is_refused(staff_client, kaluari):
    before = version_snapshot(kaluari)
    data = get_change_form(staff_client, kaluari)
    row = inline_index(data, "priorities", "priority", "P1")
    data[f"priorities-{row}-first_response"] = ["-1:00:00"]
    response = staff_client.post(change_url(kaluari), data)
    assert response.status_code == 200
    form = inline_formset(response, "priorities").forms[row]
    assert form.errors == {"first_response": ["A duration cannot be negative."]}
    assert "A duration cannot be negative." in response.content.decode()
    assert version_snapshot(kaluari) == before


def test_negative_maintenance_notice_is_refused(staff_client, kaluari):
    before = version_snapshot(kaluari)
    data = get_change_form(staff_client, kaluari)
    data["maintenance_notice"] = ["-2 00:00:00"]
    response = staff_client.post(change_url(kaluari), data)
    assert response.status_code == 200
    assert response.context["adminform"].form.errors == {"maintenance_notice": ["A duration cannot be negative."]}
    assert version_snapshot(kaluari) == before


@pytest.mark.parametrize("value", ["101", "-0.5"])
def test_guarantee_outside_0_100_is_refused(staff_client, kaluari, value):
    before = version_snapshot(kaluari)
    data = get_change_form(staff_client, kaluari)
    data["uptime_guarantee"] = [value]
    response = staff_client.post(change_url(kaluari), data)
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert list(errors) == ["uptime_guarantee"]
    assert "Ensure this value is" in errors["uptime_guarantee"][0]
    assert version_snapshot(kaluari) == before


def test_tier_percent_above_100_is_refused(staff_client, kaluari):
    before = version_snapshot(kaluari)
    data = get_change_form(staff_client, kaluari)
    row = inline_index(data, "credit_tiers", "percent", "50.000")
    data[f"credit_tiers-{row}-percent"] = ["150"]
    response = staff_client.post(change_url(kaluari), data)
    assert response.status_code == 200
    assert list(inline_formset(response, "credit_tiers").forms[row].errors) == ["percent"]
    assert version_snapshot(kaluari) == before


def test_valid_save_with_target_after_limit_warns(staff_client, kaluari):
    data = get_change_form(staff_client, kaluari)
    row = inline_index(data, "priorities", "priority", "P3")
    data[f"priorities-{row}-resolution_target"] = ["1 02:00:00"]  # 26 h; the limit is 24 h
    response = staff_client.post(change_url(kaluari), data, follow=True)
    assert response.redirect_chain[0][1] == 302
    assert kaluari.priorities.get(priority="P3").resolution_target == timedelta(hours=26)
    warnings = [text for level, text in messages_of(response) if level == WARNING]
    assert "P3: the resolution target (1 day, 2:00:00) is after its limit (1 day, 0:00:00)." in warnings
    assert len(warnings) == 4  # ... beside the table's two gaps and one overlap
    assert any(level == SUCCESS for level, _ in messages_of(response))


# --- Publishing a version ------------------------------------------------------------------------
def publish(client, *versions):
    return client.post(
        reverse("admin:contracts_slaversion_changelist"),
        {"action": "publish", "_selected_action": [str(v.pk) for v in versions]},
        follow=True,
    )


@pytest.fixture
def draft(kaluari, acme_contract, globex_contract, alice, frozen):
    # Alice is a contact of two contracts on the SLA: she is still emailed once.
    ContractFactory(
        organisation=acme_contract.organisation, reference="KAL-0002", name="Archive for Acme", contacts=[alice]
    )
    return sla_version_draft(sla=kaluari.sla, effective_from=FROZEN + timedelta(days=30))


def test_publish_queues_one_email_per_contact_and_sends_on_commit(
    staff_client, draft, alice, bob, charlie, mailoutbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = publish(staff_client, draft)
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
    assert to_alice.subject == "Updated SLA terms: Kaluari Cloud Backup SLA (template) (version 2)"
    assert "KAL-0001" in to_alice.body and "KAL-0002" in to_alice.body
    assert to_alice.extra_headers["Message-ID"] == rows.get(to=alice.email).message_id
    to_charlie = next(m for m in mailoutbox if m.to == [charlie.email])
    assert "KLA-0001" in to_charlie.body and "KAL-0001" not in to_charlie.body


def test_publishing_again_is_refused_and_sends_nothing(
    staff_client, draft, mailoutbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        publish(staff_client, draft)
    assert len(mailoutbox) == 3
    rows_before = OutboxMessage.objects.count()

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = publish(staff_client, draft)
    assert (ERROR, f"{draft} is already published.") in messages_of(response)
    assert not any(level == SUCCESS for level, _ in messages_of(response))
    assert callbacks == []
    assert OutboxMessage.objects.count() == rows_before
    assert len(mailoutbox) == 3


def test_publishing_the_published_template_is_refused(
    staff_client, kaluari, acme_contract, mailoutbox, django_capture_on_commit_callbacks, frozen
):
    published_at = kaluari.published_at
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = publish(staff_client, kaluari)
    assert messages_of(response) == [(ERROR, f"{kaluari} is already published.")]
    assert callbacks == []
    assert not OutboxMessage.objects.exists()
    assert mailoutbox == []
    kaluari.refresh_from_db()
    assert kaluari.published_at == published_at


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
def test_changelist_loads(staff_client, acme_contract, globex_contract, model, model_admin):
    url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
    assert staff_client.get(url).status_code == 200
    if model_admin.search_fields:
        assert staff_client.get(url, {"q": "acme"}).status_code == 200
