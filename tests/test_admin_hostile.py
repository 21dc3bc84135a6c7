"""Hostile query strings and ids against every page of the staff site, as a superuser (who passes
every permission check, so that the input, not a refusal, is what is tested): the answer is a page
(200), a redirect (302), a 400 that says what was refused, or a 404; never a 500.

- Every list (each ModelAdmin registered on the site, the installed apps' too): each of its filters'
  parameters, the search `q`, the ordering `o`, the page `p`, `all`, its date hierarchy's year,
  month and day, the lookups our pages link to it with, and lookups nobody offers (`id__regex`,
  `pk__in`, a relation's field), each set to every value of a fixed hostile corpus; then hypothesis
  combines several at once.
- Every admin URL that takes an object's id (change, history, delete, the ticket and claim
  operations, the attachment downloads, view-on-site) with hostile ids.
- The staff pages (dashboard, compliance report, its export and a contract's page) with hostile
  query parameters.
- The maintenance window's preview and save, and the outage form, with the years 0001 and 9999 and
  a service id beyond the integer range.

Clocks frozen at 2026-11-03 10:00 in Nairobi."""

from __future__ import annotations

import itertools
import re
from datetime import UTC, date, datetime, timedelta
from urllib.parse import quote
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.contrib import admin
from django.test import Client, RequestFactory
from django.urls import URLPattern, URLResolver, reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contracts.maintenance.services import window_publish
from contracts.models import MaintenanceWindow, Outage
from contracts.outages.services import outage_record
from credits.closing import close_month
from credits.services import claim_submit
from portal.core.audit import audit
from portal.models import User
from tickets.models import Ticket
from tickets.services import ticket_open

from .factories import ServiceFactory

pytestmark = pytest.mark.django_db

NBO = ZoneInfo("Africa/Nairobi")
NOW = datetime(2026, 11, 3, 10, 0, tzinfo=NBO)
BIG = "1" * 25
CORPUS = [
    "²", "1²", "١٢", BIG, "-" + BIG, "-1", "0", "", "\x01\x1f\x7f", "x" * 3000, "0001-01-01", "9999-12-31", "9999",
    "' OR '1'='1", "[", "\\",
]  # fmt: skip
FEW = ["²", BIG, "["]  # for the parameters every list refuses or Django checks alone
ANSWERS = (200, 302, 400, 404)
# Lookups no list offers: Django's admin took any lookup on a model's own fields.
UNOFFERED = ["id__regex", "pk__in", "id__gt", "nosuch", "nosuch__field", "pk__year", "organisation__name__regex"]


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture
def world(ada, sam, alice, acme_contract, globex_contract):
    """A row or two in the lists, so that their columns and filters run on data."""
    service = acme_contract.services.get()
    with time_machine.travel(datetime(2026, 10, 20, 9, 0, tzinfo=NBO), tick=False):
        ticket_open(
            user=alice, contract=acme_contract, service=service, priority="P3", subject="Backups fail", description="x"
        )
    outage_record(
        actor=ada, title="Storage down", services=[service],
        starts_at=datetime(2026, 10, 10, 8, 0, tzinfo=UTC), ends_at=datetime(2026, 10, 10, 9, 0, tzinfo=UTC),
    )  # fmt: skip
    window_publish(
        title="Disks", description="Swap.", services=[service], actor=ada,
        starts_at=datetime(2026, 11, 10, 20, 0, tzinfo=UTC), ends_at=datetime(2026, 11, 10, 22, 0, tzinfo=UTC),
    )  # fmt: skip
    close_month(month=date(2026, 10, 1), now=NOW)
    claim_submit(user=alice, contract=acme_contract, month=date(2026, 10, 1), note="Down on the 10th.")
    audit(actor=ada, action="test.seen", target=acme_contract, before={}, after={"x": 1})
    return {"service": service, "contract": acme_contract}


@pytest.fixture
def superuser(world, ada) -> Client:
    client = Client()
    client.force_login(ada)
    return client


def get(client: Client, url: str, params: dict | None = None):
    try:
        return client.get(url, params or {})
    except Exception as exc:  # the test client raises what a 500 would have been
        raise AssertionError(f"{url} {params!r}: {exc!r}") from exc


def assert_answered(response, url, params=None) -> None:
    """An answer other than a 500; a 400 page says why. `_to_field` (Django's popups set it) is
    Django's suspicious operation: its plain 400, logged as a security event."""
    assert response.status_code in ANSWERS, (url, params, response.status_code)
    if (
        response.status_code == 400
        and "_to_field" not in (params or {})
        and response["Content-Type"].startswith("text/html")
    ):
        assert b"errorlist" in response.content or b'class="errornote" role="alert"' in response.content, (url, params)


# --- Every list ------------------------------------------------------------------------------------
REGISTERED = sorted(admin.site._registry.items(), key=lambda item: item[0]._meta.label)


def changelist_url(model) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")


def list_parameters(model_admin, user) -> list[str]:
    """What the list offers (its filters' parameters, its date hierarchy), our links to it, the
    admin's own parameters, and lookups nobody offers."""
    request = RequestFactory().get(changelist_url(model_admin.model))
    request.user = user
    cl = model_admin.get_changelist_instance(request)
    params = {p for spec in cl.filter_specs for p in spec.expected_parameters()}
    if cl.date_hierarchy:
        params |= {f"{cl.date_hierarchy}__{part}" for part in ("year", "month", "day")}
    params |= set(getattr(model_admin, "linked_lookups", ()))
    return sorted(params | {"q", "o", "p"})


def hostile_queries(model_admin, user):
    """Each parameter a list takes with every value of the corpus; the others with a few."""
    offered = list_parameters(model_admin, user)
    yield from ({param: value} for param, value in itertools.product(offered, CORPUS))
    yield from ({param: value} for param, value in itertools.product(["all", "_to_field", *UNOFFERED], FEW))


@pytest.mark.parametrize(("model", "model_admin"), REGISTERED, ids=[m._meta.label for m, _ in REGISTERED])
def test_every_list_answers_every_hostile_parameter_without_a_500(superuser, ada, model, model_admin):
    url = changelist_url(model)
    assert get(superuser, url).status_code == 200
    for params in hostile_queries(model_admin, ada):
        assert_answered(get(superuser, url, params), url, params)


@pytest.mark.parametrize(("model", "model_admin"), REGISTERED, ids=[m._meta.label for m, _ in REGISTERED])
def test_every_list_answers_hostile_combinations_without_a_500(superuser, ada, model, model_admin):
    url = changelist_url(model)
    names = [*list_parameters(model_admin, ada), "all", *UNOFFERED]
    # Any text an HTTP client can send (UTF-8: no lone surrogate), but NUL, which PostgreSQL refuses in text.
    values = st.one_of(
        st.sampled_from(CORPUS),
        st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=40),
    )

    @settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.dictionaries(st.sampled_from(names), values, min_size=2, max_size=5))
    def check(params):
        assert_answered(get(superuser, url, params), url, params)

    check()


def test_a_list_refuses_a_filter_it_does_not_offer_with_a_400_that_names_it(superuser):
    url = changelist_url(Outage)
    response = get(superuser, url, {"id__regex": "["})
    assert response.status_code == 400
    assert "This list has no filter “id__regex”." in response.content.decode()
    assert f'<a class="button" href="{url}">Show all outages</a>' in response.content.decode()
    # What could be read one character at a time through a list that does not show it.
    assert get(superuser, changelist_url(User), {"password__startswith": "md5"}).status_code == 400


@pytest.mark.parametrize("model", [MaintenanceWindow, Outage])
def test_the_services_filter_offers_no_choice_of_rows_without_services(superuser, world, model):
    """A window and an outage always have a service: Django's "-" choice (rows with none) found
    nothing, so it is not offered, and its parameter is refused as any other."""
    ServiceFactory(name="AI Assistant")  # with one service there is nothing to filter by
    url = changelist_url(model)
    response = get(superuser, url)
    services = next(
        spec for spec in response.context["cl"].filter_specs if getattr(spec, "field_path", "") == "services"
    )
    labels = [choice["display"] for choice in services.choices(response.context["cl"])]
    assert labels[0] == "All" and "-" not in labels and len(labels) > 1
    assert get(superuser, url, {"services__isnull": "True"}).status_code == 400


@pytest.mark.parametrize("year", ["9999", BIG, "-" + BIG, "+" + BIG, "²", "0"])
def test_a_date_hierarchy_year_without_a_next_one_is_a_400_with_its_reason(superuser, year):
    """Django's admin moved 9999 to 10000 (ValueError) and 25 digits overflowed datetime: a 500."""
    response = get(superuser, changelist_url(Outage), {"starts_at__year": year})
    assert response.status_code == 400
    assert "no date this list can be filtered by" in response.content.decode() or "in digits" in (
        response.content.decode()
    )


def test_a_date_hierarchy_day_is_taken(superuser, world):
    response = get(superuser, changelist_url(Outage), {"starts_at__year": "2026", "starts_at__month": "10"})
    assert [o.title for o in response.context["cl"].result_list] == ["Storage down"]
    assert get(superuser, changelist_url(Outage), {"starts_at__year": "2025"}).context["cl"].result_count == 0


@pytest.mark.parametrize("value", ["²", "1²", BIG, "-1", "abc"])
@pytest.mark.parametrize("param", ["assignee__id__exact", "level"])
def test_the_queues_assignee_and_level_filters_refuse_what_they_do_not_offer_with_a_400(superuser, param, value):
    """str.isdigit() then int(): "²" was a 500, 25 digits overflowed the foreign key's query."""
    response = get(superuser, changelist_url(Ticket), {param: value})
    assert response.status_code == 400
    assert f"“{value}” is none of the" in response.content.decode()


@pytest.mark.parametrize("term", ["²", "#²", "1²", BIG, "#" + BIG, "-1"])
def test_the_queues_search_by_number_takes_only_numbers(superuser, term):
    response = get(superuser, changelist_url(Ticket), {"q": term, "status": "all"})
    assert response.status_code == 200
    assert list(response.context["cl"].result_list) == []


def test_the_links_of_our_pages_to_the_lists_still_filter(superuser, world):
    organisation = world["contract"].organisation_id
    response = get(superuser, changelist_url(Ticket), {"organisation__id__exact": organisation})
    assert response.status_code == 200 and len(response.context["cl"].result_list) == 1
    crossings = reverse("admin:tickets_slacrossing_changelist")
    assert (
        get(superuser, crossings, {"kind__exact": "breach", "at__gte": "2026-11-02T00:00:00+00:00"}).status_code == 200
    )


@pytest.mark.parametrize("export", ["admin:credits_claim_export", "admin:credits_monthlyuptime_export"])
def test_the_csv_exports_of_the_lists_refuse_what_the_lists_refuse(superuser, export):
    url = reverse(export)
    assert get(superuser, url).status_code == 200
    for params in ({"id__regex": "["}, {"month": "²"}, {"month": "9999-99"}, {"contract__id__exact": BIG}):
        response = get(superuser, url, params)
        assert response.status_code == 400 and 'class="errornote"' in response.content.decode(), params


# --- Every URL that takes an object's id -------------------------------------------------------------
HOSTILE_IDS = ["²", BIG, "-1", "0", "abc", "1²", "x" * 300, "' OR 1=1 --", "%00", "١٢", "_5B"]


def object_routes():
    def walk(patterns, prefix=""):
        for p in patterns:
            if isinstance(p, URLResolver):
                yield from walk(p.url_patterns, prefix + str(p.pattern))
            elif isinstance(p, URLPattern) and "<" in str(p.pattern):
                yield prefix + str(p.pattern)

    return sorted(walk(admin.site.get_urls()))


def fill(route: str, value: str) -> str:
    def one(match):
        converter = match[1] or "str"
        return BIG if converter == "int" else quote(value, safe="%")

    return "/admin/" + re.sub(r"<(?:(\w+):)?\w+>", one, route)


@pytest.mark.parametrize("route", object_routes())
def test_every_admin_url_with_an_object_id_answers_hostile_ids_without_a_500(superuser, route):
    for value in HOSTILE_IDS:
        url = fill(route, value)
        response = get(superuser, url)
        # 403: a page the superuser may not use on that object (e.g. their own access); 405: a POST-only operation.
        assert response.status_code in (*ANSWERS, 403, 405), (url, response.status_code)


# --- The staff pages --------------------------------------------------------------------------------
STAFF_PAGES = ["/admin/dashboard/", "/admin/compliance/", "/admin/compliance/export/"]


def test_the_staff_pages_answer_hostile_parameters_without_a_500(superuser, world):
    pages = [*STAFF_PAGES, f"/admin/compliance/{world['contract'].pk}/", f"/admin/compliance/{BIG}/"]
    for page, param, value in itertools.product(pages, ["month", "organisation", "sla", "page", "bom"], CORPUS):
        assert_answered(get(superuser, page, {param: value}), page, {param: value})


def test_a_month_the_report_cannot_show_is_a_400_with_the_fields_message(superuser):
    for month in ("0001-01", "9999-12", "²⁰²⁶-10", BIG):
        response = get(superuser, "/admin/compliance/", {"month": month})
        assert response.status_code == 400 and response.context["form"].errors["month"], month


# --- Maintenance windows and outages in the years 0001 and 9999 --------------------------------------
def window_form(start: datetime, end: datetime, services, **extra) -> dict:
    return {
        "title": "Storage upgrade", "description": "Swap disks.", "services": services, "impact": "downtime",
        "starts_at_0": start.date().isoformat(), "starts_at_1": f"{start:%H:%M:%S}",
        "ends_at_0": end.date().isoformat(), "ends_at_1": f"{end:%H:%M:%S}", **extra,
    }  # fmt: skip


FAR = [
    (datetime(1, 1, 1, 0, 0), datetime(1, 1, 1, 2, 0)),
    (datetime(9999, 12, 31, 20, 0), datetime(9999, 12, 31, 23, 0)),
    (datetime(2026, 11, 10, 20, 0), datetime(9999, 12, 31, 23, 59, 59)),
    (datetime(1, 1, 1), datetime(9999, 12, 31)),
]


@pytest.mark.parametrize("action", [{"_preview": "Preview rules"}, {"_save": "Save"}], ids=["preview", "save"])
@pytest.mark.parametrize(("start", "end"), FAR, ids=["year-1", "year-9999", "to-9999", "1-to-9999"])
def test_a_window_in_the_years_1_or_9999_is_the_forms_error_not_a_500(superuser, world, start, end, action):
    """The rules moved these times by the notice's hours and the timezone's offset: datetime overflowed."""
    before = MaintenanceWindow.objects.count()
    response = superuser.post(
        reverse("admin:contracts_maintenancewindow_add"), window_form(start, end, [world["service"].pk], **action)
    )
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert "Enter a time in the years 2000 to 2099." in errors.get("starts_at", []) + errors.get("ends_at", [])
    assert "rules" not in response.context  # no preview table
    assert MaintenanceWindow.objects.count() == before


@pytest.mark.parametrize("action", [{"_preview": "Preview rules"}, {"_save": "Save"}], ids=["preview", "save"])
@pytest.mark.parametrize("extra", [BIG, "-" + BIG, "+" + BIG, "²"])
def test_a_service_id_beyond_the_integer_range_is_the_fields_error(superuser, world, extra, action):
    start = datetime(2026, 11, 10, 20, 0)
    form = window_form(start, start + timedelta(hours=2), [world["service"].pk, extra], **action)
    response = superuser.post(reverse("admin:contracts_maintenancewindow_add"), form)
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["services"] == [f"“{extra}” is not a valid value."]


def test_an_outage_in_the_year_9999_is_the_forms_error(superuser, world):
    before = Outage.objects.count()
    form = {
        **window_form(datetime(2026, 10, 1), datetime(9999, 12, 31, 23, 59), [world["service"].pk]),
        "cause": "", "_save": "Save",
    }  # fmt: skip
    response = superuser.post(reverse("admin:contracts_outage_add"), form)
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["ends_at"] == ["Enter a time in the years 2000 to 2099."]
    assert Outage.objects.count() == before


@pytest.mark.parametrize("field", ["partial_services", "degraded_services"])
def test_an_outages_impact_refuses_a_service_id_beyond_the_integer_range(superuser, world, field):
    form = {
        **window_form(datetime(2026, 10, 1), datetime(2026, 10, 1, 1), [world["service"].pk]),
        "cause": "", "_save": "Save", field: [BIG],
    }  # fmt: skip
    response = superuser.post(reverse("admin:contracts_outage_add"), form)
    assert response.status_code == 200
    assert response.context["adminform"].form.errors[field] == [f"“{BIG}” is not a valid value."]
