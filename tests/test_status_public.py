"""The status page for people and for machines: past incidents with their timelines and a page
each (90 days on the status page, all of them in the paginated history), an Atom feed of incidents
and maintenance named by the page's <link rel="alternate">, and Statuspage v2 compatible JSON under
/status/api/v2/, checked field by field against the shape Statuspage documents (written out below),
readable cross-origin, answering conditional GETs, cached briefly, and absent from our own OpenAPI
schema. Customer-scoped incidents appear nowhere public."""

import json
import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.urls import reverse

from contracts.incidents.services import incident_open, incident_publish
from contracts.models import MaintenanceWindow, Outage
from contracts.outages.public import HISTORY_PER_PAGE
from contracts.outages.statuspage import DOCUMENTS as PUBLISHED

from .factories import ServiceFactory
from .status_helpers import add_update, publish_incident

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)
ATOM = "{http://www.w3.org/2005/Atom}"

# --- Statuspage's public API v2, as Atlassian documents it (the page's /api/v2/ documents) -----------
PAGE_KEYS = {"id", "name", "url", "time_zone", "updated_at"}
INDICATORS = {"none", "minor", "major", "critical"}
COMPONENT_KEYS = {
    "id", "name", "status", "created_at", "updated_at", "position", "description", "group_id", "group",
    "only_show_if_degraded", "showcase", "start_date", "page_id",
}  # fmt: skip
COMPONENT_STATUSES = {"operational", "degraded_performance", "partial_outage", "major_outage", "under_maintenance"}
INCIDENT_KEYS = {
    "id", "name", "status", "impact", "created_at", "updated_at", "monitoring_at", "resolved_at", "started_at",
    "shortlink", "page_id", "incident_updates", "components",
}  # fmt: skip
INCIDENT_STATUSES = {"investigating", "identified", "monitoring", "resolved", "postmortem"}
INCIDENT_IMPACTS = {"none", "minor", "major", "critical"}
UPDATE_KEYS = {"id", "status", "body", "incident_id", "created_at", "updated_at", "display_at", "affected_components"}
AFFECTED_KEYS = {"code", "name", "old_status", "new_status"}
MAINTENANCE_KEYS = INCIDENT_KEYS | {"scheduled_for", "scheduled_until"}
MAINTENANCE_STATUSES = {"scheduled", "in_progress", "verifying", "completed"}
DOCUMENTS = {
    "summary": {"page", "components", "incidents", "scheduled_maintenances", "status"},
    "status": {"page", "status"},
    "components": {"page", "components"},
    "incidents": {"page", "incidents"},
    "incidents/unresolved": {"page", "incidents"},
    "scheduled-maintenances": {"page", "scheduled_maintenances"},
    "scheduled-maintenances/upcoming": {"page", "scheduled_maintenances"},
    "scheduled-maintenances/active": {"page", "scheduled_maintenances"},
}
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def is_time(value, *, nullable=False) -> bool:
    return (nullable and value is None) or (isinstance(value, str) and bool(ISO.match(value)))


def check_page(page: dict) -> None:
    assert set(page) == PAGE_KEYS
    assert isinstance(page["id"], str) and isinstance(page["name"], str)
    assert page["url"].endswith("/status/") and page["time_zone"] == "Etc/UTC"
    assert is_time(page["updated_at"])


def check_component(c: dict) -> None:
    assert set(c) == COMPONENT_KEYS, c
    assert c["status"] in COMPONENT_STATUSES
    assert isinstance(c["id"], str) and isinstance(c["name"], str) and isinstance(c["position"], int)
    assert is_time(c["created_at"]) and is_time(c["updated_at"]) and is_time(c["start_date"], nullable=True)
    assert c["description"] is None or isinstance(c["description"], str)
    assert c["group_id"] is None or isinstance(c["group_id"], str)
    assert all(isinstance(c[k], bool) for k in ("group", "only_show_if_degraded", "showcase"))
    assert isinstance(c["page_id"], str)


def check_updates(item: dict, statuses: set[str]) -> None:
    for u in item["incident_updates"]:
        assert set(u) == UPDATE_KEYS, u
        assert u["status"] in statuses and isinstance(u["body"], str) and u["incident_id"] == item["id"]
        assert all(is_time(u[k]) for k in ("created_at", "updated_at", "display_at"))
        for a in u["affected_components"]:
            assert set(a) == AFFECTED_KEYS
            assert {a["old_status"], a["new_status"]} <= COMPONENT_STATUSES
    for c in item["components"]:
        check_component(c)


def check_incident(i: dict) -> None:
    assert set(i) == INCIDENT_KEYS, i
    assert i["status"] in INCIDENT_STATUSES and i["impact"] in INCIDENT_IMPACTS
    assert isinstance(i["id"], str) and isinstance(i["name"], str) and isinstance(i["page_id"], str)
    assert all(is_time(i[k]) for k in ("created_at", "updated_at", "started_at"))
    assert is_time(i["monitoring_at"], nullable=True) and is_time(i["resolved_at"], nullable=True)
    assert i["shortlink"].startswith("http")
    check_updates(i, INCIDENT_STATUSES)


def check_maintenance(m: dict) -> None:
    assert set(m) == MAINTENANCE_KEYS, m
    assert m["status"] in MAINTENANCE_STATUSES and m["impact"] == "maintenance"
    assert is_time(m["scheduled_for"]) and is_time(m["scheduled_until"])
    assert all(is_time(m[k], nullable=True) for k in ("monitoring_at", "resolved_at", "started_at"))
    check_updates(m, {"scheduled", "in_progress", "verifying", "completed"})


def check_document(name: str, doc: dict) -> None:
    assert set(doc) == DOCUMENTS[name]
    check_page(doc["page"])
    if "status" in doc:
        assert set(doc["status"]) == {"indicator", "description"}
        assert doc["status"]["indicator"] in INDICATORS and isinstance(doc["status"]["description"], str)
    for c in doc.get("components", []):
        check_component(c)
    for i in doc.get("incidents", []):
        check_incident(i)
    for m in doc.get("scheduled_maintenances", []):
        check_maintenance(m)


# --- The world -------------------------------------------------------------------------------------
@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture
def backup():
    return ServiceFactory(name="Cloud Backup", slug="cloud-backup")


@pytest.fixture
def assistant():
    return ServiceFactory(name="AI Assistant", slug="ai-assistant")


def window(services, start, end, *, impact=MaintenanceWindow.Impact.DOWNTIME, title="Storage upgrade", **fields):
    row = MaintenanceWindow.objects.create(
        title=title, description="We upgrade the storage cluster.", starts_at=start, ends_at=end, impact=impact,
        published_at=start - timedelta(days=3), **fields,
    )  # fmt: skip
    row.services.set(services)
    return row


@pytest.fixture
def busy(backup, assistant):
    """An open incident on Cloud Backup, one resolved last week, one resolved 120 days ago, a
    maintenance window in progress on the AI Assistant, one ahead, one over."""
    open_one = publish_incident(
        [backup], NOW - timedelta(hours=1), title="Backups are failing",
        updates=[(NOW - timedelta(minutes=50), "investigating", "We are looking into it."),
                 (NOW - timedelta(minutes=10), "identified", "A storage node is full.")],
    )  # fmt: skip
    last_week = publish_incident(
        [assistant], NOW - timedelta(days=7), NOW - timedelta(days=7) + timedelta(hours=2), title="Slow answers",
        updates=[(NOW - timedelta(days=7), "investigating", "Answers are slow."),
                 (NOW - timedelta(days=7) + timedelta(hours=2), "resolved", "Back to normal.")],
    )  # fmt: skip
    old = publish_incident(
        [backup], NOW - timedelta(days=120), NOW - timedelta(days=120) + timedelta(hours=1), title="Old trouble",
        updates=[(NOW - timedelta(days=120) + timedelta(hours=1), "resolved", "Fixed long ago.")],
    )  # fmt: skip
    now_window = window([assistant], NOW - timedelta(minutes=30), NOW + timedelta(hours=1), title="Model rollout")
    ahead = window([backup], NOW + timedelta(days=3), NOW + timedelta(days=3, hours=2), title="Disk swap")
    over = window([backup], NOW - timedelta(days=5), NOW - timedelta(days=5) + timedelta(hours=1), title="Old work")
    return {
        "add_update": lambda status, body: add_update(open_one, status, body),
        "open": open_one, "last_week": last_week, "old": old, "now": now_window, "ahead": ahead, "over": over,
    }  # fmt: skip


def get_json(client, name, **headers):
    response = client.get(f"/status/api/v2/{name}.json", headers=headers)
    assert response.status_code == 200, name
    assert response["Content-Type"] == "application/json"
    return response.json()


# --- The JSON -----------------------------------------------------------------------------------------
def test_every_document_has_statuspages_shape_field_by_field(client, busy):
    assert set(PUBLISHED) == set(DOCUMENTS)  # we serve every documented one, and no other
    for name in DOCUMENTS:
        check_document(name, get_json(client, name))


def test_the_documents_shape_holds_on_a_quiet_page(client, backup):
    for name in DOCUMENTS:
        check_document(name, get_json(client, name))
    assert get_json(client, "status")["status"] == {"indicator": "none", "description": "All Systems Operational"}


def test_the_summary_says_what_is_happening(client, busy):
    doc = get_json(client, "summary")
    components = {c["id"]: c for c in doc["components"]}
    assert components["cloud-backup"]["status"] == "major_outage"
    assert components["ai-assistant"]["status"] == "under_maintenance"
    assert [c["position"] for c in doc["components"]] == [1, 2]  # by name: AI Assistant, Cloud Backup
    assert doc["status"] == {"indicator": "critical", "description": "Major System Outage"}
    (incident,) = doc["incidents"]
    assert incident["name"] == "Backups are failing" and incident["status"] == "identified"
    assert incident["impact"] == "critical" and incident["resolved_at"] is None
    assert incident["started_at"] == "2026-11-02T11:00:00.000Z"
    assert incident["shortlink"] == f"http://testserver/status/incidents/{busy['open'].pk}/" or incident[
        "shortlink"
    ].endswith(f"/status/incidents/{busy['open'].pk}/")
    assert [u["body"] for u in incident["incident_updates"]] == ["A storage node is full.", "We are looking into it."]
    assert [u["status"] for u in incident["incident_updates"]] == ["identified", "investigating"]
    first = incident["incident_updates"][-1]["affected_components"]
    assert first == [{"code": "cloud-backup", "name": "Cloud Backup", "old_status": "operational",
                      "new_status": "major_outage"}]  # fmt: skip
    assert [c["id"] for c in incident["components"]] == ["cloud-backup"]
    assert [m["name"] for m in doc["scheduled_maintenances"]] == ["Model rollout", "Disk swap"]
    assert [m["status"] for m in doc["scheduled_maintenances"]] == ["in_progress", "scheduled"]


def test_incidents_and_unresolved(client, busy):
    listed = get_json(client, "incidents")["incidents"]
    assert [i["name"] for i in listed] == ["Backups are failing", "Slow answers", "Old trouble"]  # all, newest first
    resolved = listed[1]
    assert resolved["status"] == "resolved" and resolved["resolved_at"] == "2026-10-26T14:00:00.000Z"
    assert resolved["incident_updates"][0]["affected_components"][0]["new_status"] == "operational"
    assert [i["name"] for i in get_json(client, "incidents/unresolved")["incidents"]] == ["Backups are failing"]


def test_maintenance_upcoming_and_active(client, busy):
    everything = get_json(client, "scheduled-maintenances")["scheduled_maintenances"]
    assert {m["name"]: m["status"] for m in everything} == {
        "Disk swap": "scheduled", "Model rollout": "in_progress", "Old work": "completed",
    }  # fmt: skip
    assert [m["name"] for m in get_json(client, "scheduled-maintenances/upcoming")["scheduled_maintenances"]] == [
        "Disk swap"
    ]
    (active,) = get_json(client, "scheduled-maintenances/active")["scheduled_maintenances"]
    assert active["name"] == "Model rollout" and active["scheduled_for"] == "2026-11-02T11:30:00.000Z"
    assert active["scheduled_until"] == "2026-11-02T13:00:00.000Z" and active["started_at"] == active["scheduled_for"]


def test_a_maintenance_posts_an_update_when_it_starts_and_when_it_ends(client, backup, frozen):
    """Statuspage posts an update at each move of a maintenance, and integrations show the newest: it
    says what the maintenance's own status says, once the move's moment has passed."""
    w = window([backup], NOW + timedelta(hours=1), NOW + timedelta(hours=3), title="Disk swap")

    def maintenance():
        (m,) = get_json(client, "scheduled-maintenances")["scheduled_maintenances"]
        check_maintenance(m)
        return m

    def updates(m):
        return [(u["id"], u["status"], u["created_at"], u["body"]) for u in m["incident_updates"]]

    scheduled = (f"m{w.pk}-1", "scheduled", "2026-10-30T13:00:00.000Z", "We upgrade the storage cluster.")
    in_progress = (f"m{w.pk}-in_progress", "in_progress", "2026-11-02T13:00:00.000Z",
                   "Scheduled maintenance is currently in progress. We will provide updates as necessary.")  # fmt: skip
    completed = (f"m{w.pk}-completed", "completed", "2026-11-02T15:00:00.000Z",
                 "The scheduled maintenance has been completed.")  # fmt: skip
    m = maintenance()
    assert m["status"] == "scheduled" and updates(m) == [scheduled]

    frozen.move_to(NOW + timedelta(hours=2))
    m = maintenance()
    assert m["status"] == "in_progress" and updates(m) == [in_progress, scheduled]  # newest first
    assert m["incident_updates"][0]["affected_components"] == []
    (active,) = get_json(client, "summary")["scheduled_maintenances"]
    assert active["incident_updates"][0]["status"] == "in_progress"

    frozen.move_to(NOW + timedelta(hours=4))
    m = maintenance()
    assert m["status"] == "completed" and updates(m) == [completed, in_progress, scheduled]
    assert m["incident_updates"][0]["affected_components"] == [
        {"code": "cloud-backup", "name": "Cloud Backup", "old_status": "under_maintenance", "new_status": "operational"}
    ]


def test_a_window_corrected_while_in_progress_posts_its_revision_as_in_progress(client, backup, frozen):
    from contracts.maintenance.services import window_update

    w = window([backup], NOW - timedelta(hours=1), NOW + timedelta(hours=1), title="Disk swap")
    w = window_update(window=w, title=w.title, description="It takes an hour longer.", services=[backup],
                      starts_at=w.starts_at, ends_at=NOW + timedelta(hours=2), impact=w.impact)  # fmt: skip
    (m,) = get_json(client, "scheduled-maintenances/active")["scheduled_maintenances"]
    assert [(u["id"], u["status"], u["body"]) for u in m["incident_updates"]] == [
        (f"m{w.pk}-2", "in_progress", "It takes an hour longer."),
        (f"m{w.pk}-in_progress", "in_progress",
         "Scheduled maintenance is currently in progress. We will provide updates as necessary."),
    ]  # fmt: skip


def test_the_json_is_cached_no_longer_than_until_a_window_starts_and_changes_then(client, backup, frozen):
    window([backup], NOW + timedelta(hours=1), NOW + timedelta(hours=3), title="Disk swap")
    path = "/status/api/v2/scheduled-maintenances.json"
    assert client.get(path)["Cache-Control"] in ("public, max-age=60", "max-age=60, public")
    frozen.move_to(NOW + timedelta(minutes=59, seconds=40))
    before = client.get(path)
    assert before["Cache-Control"] in ("public, max-age=20", "max-age=20, public")  # it starts in 20 s
    frozen.move_to(NOW + timedelta(minutes=59, seconds=50))
    assert client.get(path, headers={"If-None-Match": before["ETag"]}).status_code == 304
    frozen.move_to(NOW + timedelta(hours=1))
    started = client.get(path, headers={"If-None-Match": before["ETag"]})
    assert started.status_code == 200 and started["ETag"] != before["ETag"]
    assert started.json()["scheduled_maintenances"][0]["incident_updates"][0]["status"] == "in_progress"
    assert started["Cache-Control"] in ("public, max-age=60", "max-age=60, public")  # the end is 2 h away


def test_a_cancelled_window_is_not_listed(client, backup):
    window(
        [backup], NOW + timedelta(days=1), NOW + timedelta(days=1, hours=1), status=MaintenanceWindow.Status.CANCELLED
    )
    assert get_json(client, "scheduled-maintenances")["scheduled_maintenances"] == []


def test_indicator_follows_the_worst_component(client, backup, assistant):
    window([assistant], NOW - timedelta(minutes=30), NOW + timedelta(hours=1), impact=MaintenanceWindow.Impact.DEGRADED)
    assert get_json(client, "status")["status"] == {"indicator": "minor", "description": "Minor Service Outage"}
    assert {c["id"]: c["status"] for c in get_json(client, "components")["components"]} == {
        "ai-assistant": "degraded_performance", "cloud-backup": "operational",
    }  # fmt: skip


# --- HTTP: CORS, conditional GET, cache, methods, not in our schema ------------------------------------
def test_cross_origin_cached_and_conditional(client, busy, frozen):
    for name in DOCUMENTS:
        path = f"/status/api/v2/{name}.json"
        first = client.get(path, headers={"Origin": "https://aggregator.example"})
        assert first["Access-Control-Allow-Origin"] == "*"
        assert first["Cache-Control"] in ("public, max-age=60", "max-age=60, public")
        assert "Cookie" not in first.get("Vary", "") and not first.cookies
        etag = first["ETag"]
        assert re.fullmatch(r'"[0-9a-f]{32}"', etag)
        again = client.get(path, headers={"If-None-Match": etag})
        assert again.status_code == 304 and again.content == b""
        assert again["ETag"] == etag and again["Access-Control-Allow-Origin"] == "*"
        assert again["Cache-Control"] == first["Cache-Control"]
        assert client.get(path, headers={"If-None-Match": '"stale"'}).status_code == 200
    # The same state gives the same bytes a minute later; a new update changes the ETag.
    etag = client.get("/status/api/v2/summary.json")["ETag"]
    frozen.shift(timedelta(seconds=61))
    assert client.get("/status/api/v2/summary.json", headers={"If-None-Match": etag}).status_code == 304
    busy["add_update"]("monitoring", "The fix is live; we are watching.")
    changed = client.get("/status/api/v2/summary.json", headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed["ETag"] != etag
    (incident,) = changed.json()["incidents"]
    assert incident["status"] == "monitoring" and incident["monitoring_at"] == "2026-11-02T12:01:01.000Z"


def test_get_only(client, backup):
    path = "/status/api/v2/summary.json"
    for method in ("post", "put", "patch", "delete"):
        assert getattr(client, method)(path).status_code == 405
    assert client.head(path).status_code == 200
    preflight = client.options(path, headers={"Origin": "https://a.example", "Access-Control-Request-Method": "GET"})
    assert preflight.status_code == 204
    assert preflight["Access-Control-Allow-Origin"] == "*"
    assert preflight["Access-Control-Allow-Methods"] == "GET, HEAD, OPTIONS"


def test_not_in_our_openapi_schema(client, backup):
    schema = client.get("/api/schema/", {"format": "json"}).json()
    assert not [p for p in schema["paths"] if "status" in p or ".json" in p]
    text = json.dumps(schema)
    assert "/status/" not in text and "statuspage" not in text.lower() and "scheduled_maintenances" not in text


# --- The Atom feed ---------------------------------------------------------------------------------------
def test_the_status_page_names_the_feed(client, backup):
    html = client.get("/status/").content.decode()
    assert '<link rel="alternate" type="application/atom+xml" title="Incidents and maintenance (Atom)" ' \
           'href="/status/feed.atom">' in html  # fmt: skip


def test_the_atom_feed_parses_and_holds_incidents_and_maintenance(client, busy):
    response = client.get("/status/feed.atom")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/atom+xml")
    assert response["Access-Control-Allow-Origin"] == "*" and "max-age=60" in response["Cache-Control"]
    assert client.get("/status/feed.atom", headers={"If-None-Match": response["ETag"]}).status_code == 304
    feed = ET.fromstring(response.content)
    assert feed.tag == f"{ATOM}feed"
    assert feed.find(f"{ATOM}title").text == "SLA Portal status: incidents and maintenance"
    links = {link.get("rel"): link.get("href") for link in feed.findall(f"{ATOM}link")}
    assert links["alternate"].endswith("/status/") and links["self"].endswith("/status/feed.atom")
    entries = {e.find(f"{ATOM}title").text: e for e in feed.findall(f"{ATOM}entry")}
    assert set(entries) == {
        "Backups are failing [Identified]", "Slow answers [Resolved]", "Old trouble [Resolved]",
        "Maintenance: Model rollout", "Maintenance: Disk swap", "Maintenance: Old work",
    }  # fmt: skip
    # Newest change first; each entry has an id, an updated time and a link to its page.
    updated = [e.find(f"{ATOM}updated").text for e in feed.findall(f"{ATOM}entry")]
    assert updated == sorted(updated, reverse=True)
    entry = entries["Backups are failing [Identified]"]
    assert entry.find(f"{ATOM}link").get("href").endswith(f"/status/incidents/{busy['open'].pk}/")
    assert entry.find(f"{ATOM}id").text.endswith(f"/status/incidents/{busy['open'].pk}/")
    assert entry.find(f"{ATOM}updated").text == "2026-11-02T11:50:00+00:00"
    summary = entry.find(f"{ATOM}summary").text
    assert summary.index("A storage node is full.") < summary.index("We are looking into it.")
    disk = entries["Maintenance: Disk swap"]
    assert "Thu 5 Nov 2026, 12:00" in disk.find(f"{ATOM}summary").text
    assert disk.find(f"{ATOM}link").get("href").endswith(f"/status/#maintenance-{busy['ahead'].pk}")


# --- Pages: 90 days, the history, a page per incident --------------------------------------------------
def test_the_status_page_shows_the_last_90_days_of_incidents(client, busy):
    html = client.get("/status/").content.decode()
    active = re.search(r'<section aria-labelledby="incidents-h">(.*?)</section>', html, re.S).group(1)
    past = re.search(r'<section aria-labelledby="past-h">(.*?)</section>', html, re.S).group(1)
    assert "Backups are failing" in active and "Slow answers" not in active
    assert "Slow answers" in past and "Back to normal." in past and "Answers are slow." in past
    assert f'href="/status/incidents/{busy["last_week"].pk}/"' in past
    assert "Old trouble" not in html  # 120 days ago: the history has it
    assert 'href="/status/history/"' in past
    assert f'id="maintenance-{busy["ahead"].pk}"' in html


def test_the_history_has_every_incident_paginated(client, backup):
    for n in range(HISTORY_PER_PAGE + 3):
        start = NOW - timedelta(days=10 * n + 1)
        publish_incident([backup], start, start + timedelta(hours=1), title=f"Incident number {n:02d}",
                         updates=[(start + timedelta(hours=1), "resolved", f"Fixed {n:02d}.")])  # fmt: skip
    first = client.get("/status/history/")
    assert first.status_code == 200 and first["Cache-Control"] in ("public, max-age=30", "max-age=30, public")
    titles = re.findall(r"Incident number (\d\d)", first.content.decode())
    assert titles == [f"{n:02d}" for n in range(HISTORY_PER_PAGE)]
    assert 'rel="next" href="?page=2"' in first.content.decode()
    second = client.get("/status/history/", {"page": 2}).content.decode()
    assert re.findall(r"Incident number (\d\d)", second) == [
        f"{n:02d}" for n in range(HISTORY_PER_PAGE, HISTORY_PER_PAGE + 3)
    ]
    assert "Fixed 22." in second  # 220 days ago: older than the status page's 90
    assert client.get("/status/history/", {"page": "x"}).status_code == 200  # a bad page: the first
    assert client.get("/status/history/", {"page": 99}).status_code == 200  # past the end: the last


def test_an_incident_has_its_own_page(client, busy):
    response = client.get(reverse("status-incident", args=[busy["old"].pk]))
    assert response.status_code == 200
    html = response.content.decode()
    assert "<h1 " in html and "Old trouble" in html and "Fixed long ago." in html and "Resolved" in html
    assert client.get(reverse("status-incident", args=[987654])).status_code == 404
    assert client.post(reverse("status-incident", args=[busy["old"].pk])).status_code == 405


# --- A fixed number of queries ------------------------------------------------------------------------
@pytest.mark.parametrize("history", [3, 60])
def test_the_summary_takes_a_fixed_number_of_queries(client, backup, assistant, django_assert_num_queries, history):
    for n in range(history):
        start = NOW - timedelta(days=n + 1)
        publish_incident([(backup, assistant)[n % 2]], start, start + timedelta(hours=1), title=f"Incident {n}",
                         updates=[(start, "investigating", "Looking."), (start + timedelta(hours=1), "resolved", "Done.")])  # fmt: skip
        window([backup], start + timedelta(hours=3), start + timedelta(hours=4), title=f"Window {n}")
    publish_incident([backup], NOW - timedelta(minutes=9), title="Going on",
                     updates=[(NOW - timedelta(minutes=8), "investigating", "Looking.")])  # fmt: skip
    # Services; the windows' ids (latest, ahead), the windows and their services; the incidents of
    # 90 days, their services and updates; the outages going on and their services.
    with django_assert_num_queries(10):
        doc = get_json(client, "summary")
    assert len(doc["components"]) == 2
    with django_assert_num_queries(13):  # and the latest 50 incidents, their services and updates
        assert len(get_json(client, "incidents")["incidents"]) == min(history + 1, 50)


# --- Drafts, impacts, customer scope ----------------------------------------------------------------
def test_impact_per_service_drives_the_components_and_the_indicator(client, backup, assistant):
    publish_incident(
        [backup, assistant], NOW - timedelta(minutes=30), title="Slow restores",
        impacts={backup: "partial", assistant: "degraded"},
        updates=[(NOW - timedelta(minutes=25), "investigating", "Restores are slow.")],
    )  # fmt: skip
    doc = get_json(client, "summary")
    assert {c["id"]: c["status"] for c in doc["components"]} == {
        "cloud-backup": "partial_outage", "ai-assistant": "degraded_performance",
    }  # fmt: skip
    assert doc["status"] == {"indicator": "major", "description": "Partial System Outage"}
    (incident,) = doc["incidents"]
    assert incident["impact"] == "major"  # its worst: partial
    assert {a["code"]: a["new_status"] for a in incident["incident_updates"][0]["affected_components"]} == {
        "cloud-backup": "partial_outage", "ai-assistant": "degraded_performance",
    }  # fmt: skip


def test_a_draft_is_not_public_until_published(client, backup):
    outage = Outage.objects.create(title="Alert: backup", starts_at=NOW - timedelta(minutes=5))
    outage.services.set([backup])
    draft = incident_open(outage=outage, title="Backups may be failing", status="investigating",
                          body="Drafted from the alert.", actor=None, publish=False)  # fmt: skip
    assert "Backups may be failing" not in public_texts(client, draft.pk)
    assert client.get(reverse("status-incident", args=[draft.pk])).status_code == 404
    incident_publish(incident=draft, actor=None)
    assert client.get(reverse("status-incident", args=[draft.pk])).status_code == 200
    assert (
        "Drafted from the alert."
        in get_json(client, "incidents/unresolved")["incidents"][0]["incident_updates"][0]["body"]
    )


def public_texts(client, pk) -> str:
    """Every public page, feed and document, with the incident's own page and the history."""
    paths = ["/status/", "/status/history/", "/status/feed.atom", f"/status/incidents/{pk}/"]
    paths += [f"/status/api/v2/{name}.json" for name in DOCUMENTS]
    return "\n".join(client.get(p).content.decode() for p in paths)


def test_a_customer_scoped_incident_appears_nowhere_public(client, backup, acme_contract, alice):
    scoped = publish_incident(
        [backup], NOW - timedelta(hours=2), NOW - timedelta(hours=1), title="Acme's tenant was unreachable",
        scoped_to=[acme_contract],
        updates=[(NOW - timedelta(hours=2), "investigating", "Acme's tenant does not answer."),
                 (NOW - timedelta(hours=1), "resolved", "Acme's tenant answers again.")],
    )  # fmt: skip
    ongoing = publish_incident(
        [backup], NOW - timedelta(minutes=20), title="Acme's restores hang", scoped_to=[acme_contract],
        updates=[(NOW - timedelta(minutes=20), "identified", "A lock on Acme's volume.")],
    )  # fmt: skip
    for who in (None, alice):  # logged in or not: the public pages are the same for everyone
        if who:
            client.force_login(who)
        texts = public_texts(client, scoped.pk) + public_texts(client, ongoing.pk)
        assert "Acme" not in texts
        assert client.get(f"/status/incidents/{scoped.pk}/").status_code == 404
    assert {c["status"] for c in get_json(client, "components")["components"]} == {"operational"}
    assert get_json(client, "status")["status"]["indicator"] == "none"


@pytest.mark.parametrize(
    "impact, state, label, component",
    [
        ("major", "outage", "Outage", "major_outage"),
        ("partial", "partial", "Partial outage", "partial_outage"),
        ("degraded", "degraded", "Degraded performance", "degraded_performance"),
    ],
)
def test_the_page_and_the_json_say_the_same_of_each_impact(client, backup, impact, state, label, component):
    publish_incident([backup], NOW - timedelta(minutes=30), title="Trouble", impacts={backup: impact},
                     updates=[(NOW - timedelta(minutes=29), "investigating", "Looking.")])  # fmt: skip
    html = client.get("/status/").content.decode()
    assert re.search(rf'<span class="state state-{state}">.*?</span> {label}</span>', html, re.S)
    assert f'class="banner banner-{state}"' in html
    assert {c["id"]: c["status"] for c in get_json(client, "components")["components"]} == {"cloud-backup": component}


def test_a_correction_while_running_does_not_post_the_start_again(client, backup, frozen):
    """The start's update keeps its id through corrections (an integration posts each new id: with
    the revision in it, "in progress" was posted again at every correction)."""
    from contracts.maintenance.services import window_update

    w = window([backup], NOW - timedelta(hours=1), NOW + timedelta(hours=1), title="Disk swap")

    def ids():
        (m,) = get_json(client, "scheduled-maintenances")["scheduled_maintenances"]
        return [(u["id"], u["status"]) for u in m["incident_updates"]]

    assert ids() == [(f"m{w.pk}-in_progress", "in_progress"), (f"m{w.pk}-1", "scheduled")]
    frozen.move_to(NOW + timedelta(minutes=10))
    w = window_update(window=w, title=w.title, description="It takes an hour longer.", services=[backup],
                      starts_at=w.starts_at, ends_at=NOW + timedelta(hours=2), impact=w.impact)  # fmt: skip
    after = ids()
    assert [i for i, _ in after if i.endswith("in_progress")] == [f"m{w.pk}-in_progress"]  # posted once
    assert (f"m{w.pk}-2", "in_progress") in after  # the correction's own update
