"""The Alertmanager webhook (/api/v1/hooks/alertmanager/): payloads in Alertmanager's own format
(version 4) open and close outages of the token's service. A body that is not a notification is a
400 and stores nothing; within a notification each alert is taken or refused on its own (a 200 that
lists the refused ones and why), since Alertmanager never retries a 4xx."""

import copy
import hashlib
import json
import time
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from contracts.choices import Cause
from contracts.models import Incident, Outage, OutageCauseChange, OutageUpdate
from contracts.outages import alerts as outages
from contracts.outages.alerts import service_rotate_webhook_token
from contracts.webhooks import MAX_BODY
from portal.models import AuditEntry

from .factories import ServiceFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)
STARTS = "2026-11-02T09:00:00.123Z"
STARTS_AT = datetime(2026, 11, 2, 9, 0, 0, 123000, tzinfo=UTC)
ZERO = "0001-01-01T00:00:00Z"
FINGERPRINT = "c5d9d2a1e0f4b8a7"


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def backup():
    service = ServiceFactory(name="Cloud Backup", slug="cloud-backup")
    service.token = service_rotate_webhook_token(service=service)
    return service


@pytest.fixture
def archive():
    service = ServiceFactory(name="Cold Archive", slug="cold-archive")
    service.token = service_rotate_webhook_token(service=service)
    return service


def alert(status="firing", *, service="cloud-backup", fingerprint=FINGERPRINT, starts=STARTS, ends=ZERO, **annotations):
    """One alert exactly as Alertmanager sends it."""
    return {
        "status": status,
        "labels": {"alertname": "BackupApiDown", "service": service, "severity": "critical", "instance": "backup-api-1:9100"},
        "annotations": annotations or {"summary": "Cloud Backup API is down", "description": "Probe failed for 5 minutes."},
        "startsAt": starts,
        "endsAt": ends,
        "generatorURL": "http://prometheus:9090/graph?g0.expr=probe_success%7Bjob%3D%22backup-api%22%7D+%3D%3D+0&g0.tab=1",
        "fingerprint": fingerprint,
    }  # fmt: skip


def notification(*alerts):
    """A version 4 webhook notification around the alerts."""
    alerts = alerts or (alert(),)
    return {
        "version": "4",
        "groupKey": '{}/{severity="critical"}:{alertname="BackupApiDown"}',
        "truncatedAlerts": 0,
        "status": "firing" if any(a["status"] == "firing" for a in alerts) else "resolved",
        "receiver": "sla-portal",
        "groupLabels": {"alertname": "BackupApiDown"},
        "commonLabels": {"alertname": "BackupApiDown", "severity": "critical"},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "alerts": list(alerts),
    }


def post(client, body, token=None, *, authorization=None):
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    headers = {}
    if authorization or token:
        headers["Authorization"] = authorization or f"Bearer {token}"
    return client.post(reverse("alertmanager-webhook"), data=data, content_type="application/json", headers=headers)


def rows():
    """Everything the webhook could write."""
    return {
        "outages": list(Outage.objects.order_by("pk").values_list("pk", "starts_at", "ends_at", "fingerprint")),
        "outage_services": Outage.services.through.objects.count(),
        "updates": OutageUpdate.objects.count(),
        "cause_changes": OutageCauseChange.objects.count(),
        "audit": AuditEntry.objects.count(),
    }


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def refused(response) -> dict[int, str]:
    """The refused alerts of a 200, by their place in the notification: their reasons."""
    assert response.status_code == 200, response.content
    return {r["index"]: r["reason"] for r in response.json()["refused"]}


# --- Firing and resolved ------------------------------------------------------------------------
def test_firing_alert_opens_an_outage(client, backup):
    response = post(client, notification(), backup.token)
    assert response.status_code == 200, response.content
    outage = Outage.objects.get()
    assert response.json() == {"opened": [outage.pk], "closed": [], "recorded": [], "unchanged": 0, "refused": []}
    assert outage.source == Outage.Source.ALERTMANAGER
    assert outage.fingerprint == FINGERPRINT
    assert outage.starts_at == STARTS_AT
    assert outage.ends_at is None
    assert outage.title == "Cloud Backup API is down"
    assert outage.cause == Cause.UNPLANNED
    assert outage.description == ""  # the annotation may be internal: staff write the public text
    assert list(outage.services.all()) == [backup]


def test_title_falls_back_to_the_alertname(client, backup):
    post(client, notification(alert(description="no summary here")), backup.token)
    assert Outage.objects.get().title == "BackupApiDown"


def test_a_long_summary_is_cut_to_the_title_length(client, backup):
    post(client, notification(alert(summary="x" * 500)), backup.token)
    title = Outage.objects.get().title
    assert len(title) == 200 and title.endswith("…")


def test_repeat_firing_delivery_is_a_no_op(client, backup):
    post(client, notification(), backup.token)
    before = rows()
    response = post(client, notification(), backup.token)
    assert response.status_code == 200
    assert response.json() == {"opened": [], "closed": [], "recorded": [], "unchanged": 1, "refused": []}
    assert rows() == before


def test_resolved_alert_closes_the_open_outage(client, backup):
    post(client, notification(), backup.token)
    outage = Outage.objects.get()
    response = post(client, notification(alert("resolved", ends="2026-11-02T09:25:30.5Z")), backup.token)
    assert response.json() == {"opened": [], "closed": [outage.pk], "recorded": [], "unchanged": 0, "refused": []}
    outage.refresh_from_db()
    assert outage.ends_at == datetime(2026, 11, 2, 9, 25, 30, 500000, tzinfo=UTC)
    # ... and a repeat of the resolved notification changes nothing.
    again = post(client, notification(alert("resolved", ends="2026-11-02T09:26:00Z")), backup.token)
    assert again.json()["unchanged"] == 1
    outage.refresh_from_db()
    assert outage.ends_at == datetime(2026, 11, 2, 9, 25, 30, 500000, tzinfo=UTC)


@pytest.mark.parametrize("ends", [ZERO, STARTS, "2026-11-02T08:59:00Z"])
def test_resolved_alert_ending_before_its_start_lasts_one_minute(client, backup, ends):
    post(client, notification(), backup.token)
    post(client, notification(alert("resolved", ends=ends)), backup.token)
    assert Outage.objects.get().ends_at == STARTS_AT + timedelta(minutes=1)


def test_resolved_alert_without_a_firing_one_records_a_closed_outage(client, backup):
    response = post(client, notification(alert("resolved", ends="2026-11-02T09:04:00Z")), backup.token)
    outage = Outage.objects.get()
    assert response.json() == {"opened": [], "closed": [], "recorded": [outage.pk], "unchanged": 0, "refused": []}
    assert (outage.starts_at, outage.ends_at) == (STARTS_AT, datetime(2026, 11, 2, 9, 4, tzinfo=UTC))
    assert outage.source == Outage.Source.ALERTMANAGER and list(outage.services.all()) == [backup]
    # The firing notification arriving late does not reopen it.
    late = post(client, notification(), backup.token)
    assert late.json()["unchanged"] == 1
    outage.refresh_from_db()
    assert outage.ends_at == datetime(2026, 11, 2, 9, 4, tzinfo=UTC)


def test_an_outage_staff_closed_is_not_changed_by_the_resolved_alert(client, backup):
    post(client, notification(), backup.token)
    Outage.objects.update(ends_at=datetime(2026, 11, 2, 9, 10, tzinfo=UTC))
    post(client, notification(alert("resolved", ends="2026-11-02T09:25:00Z")), backup.token)
    assert Outage.objects.get().ends_at == datetime(2026, 11, 2, 9, 10, tzinfo=UTC)


def test_the_same_alert_firing_again_later_is_a_new_outage(client, backup):
    post(client, notification(), backup.token)
    post(client, notification(alert("resolved", ends="2026-11-02T09:10:00Z")), backup.token)
    post(client, notification(alert(starts="2026-11-02T09:20:00Z")), backup.token)
    assert list(Outage.objects.order_by("starts_at").values_list("ends_at", flat=True)) == [
        datetime(2026, 11, 2, 9, 10, tzinfo=UTC),
        None,
    ]


def test_several_alerts_in_one_notification(client, backup):
    post(client, notification(alert(fingerprint="aaaa000000000001")), backup.token)
    response = post(
        client,
        notification(
            alert("resolved", fingerprint="aaaa000000000001", ends="2026-11-02T09:15:00Z"),
            alert(fingerprint="bbbb000000000002", summary="Restores are slow"),
        ),
        backup.token,
    )
    body = response.json()
    assert len(body["closed"]) == 1 and len(body["opened"]) == 1
    assert sorted(Outage.objects.values_list("title", "ends_at")) == [
        ("Cloud Backup API is down", datetime(2026, 11, 2, 9, 15, tzinfo=UTC)),
        ("Restores are slow", None),
    ]


# --- Authentication ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer ", "Bearer not-the-token", "Token {token}", "{token}", "Basic {token}"],
    ids=["missing", "empty", "wrong", "token-scheme", "no-scheme", "basic"],
)
def test_wrong_or_missing_token_is_401_and_nothing_stored(client, backup, authorization):
    before = rows()
    response = post(client, notification(), authorization=authorization and authorization.format(token=backup.token))
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="alertmanager"'
    assert "detail" in response.json()
    assert rows() == before


def test_a_wrong_token_is_401_even_for_a_malformed_body(client, backup):
    # Authentication comes first: without a valid token, nothing about the payload is told.
    response = post(client, "{not json", "not-the-token")
    assert response.status_code == 401


def test_an_alert_of_another_service_is_refused_and_nothing_stored(client, backup, archive):
    before = rows()
    response = post(client, notification(alert(service="cold-archive")), backup.token)
    assert refused(response) == {0: "This token is “cloud-backup”'s; the alert is “cold-archive”'s."}
    assert response.json()["refused"][0] | {"reason": ""} == {
        "index": 0, "fingerprint": FINGERPRINT, "service": "cold-archive", "reason": ""
    }  # fmt: skip
    assert rows() == before


def test_a_notification_of_two_services_keeps_the_alerts_of_the_tokens_service(client, backup, archive):
    """Alertmanager groups alerts by its route's labels: one notification may carry several
    services. It was refused whole with a 401, and the token's own outage was lost."""
    response = post(
        client, notification(alert(service="cold-archive", fingerprint="ffff000000000009"), alert()), backup.token
    )
    assert list(refused(response)) == [0]
    outage = Outage.objects.get()
    assert response.json()["opened"] == [outage.pk]
    assert list(outage.services.all()) == [backup]


def test_a_token_closes_only_its_own_services_outages(client, backup, archive):
    """Outages were matched by fingerprint and start only: cloud-backup's token closed cold-archive's."""
    post(client, notification(alert(service="cold-archive")), archive.token)
    theirs = Outage.objects.get()
    for service in ("cold-archive", "cloud-backup"):  # naming their service, or its own with their alert's key
        response = post(client, notification(alert("resolved", service=service, ends=iso(NOW))), backup.token)
        assert list(refused(response)) == [0], service
        assert response.json()["closed"] == []
    theirs.refresh_from_db()
    assert theirs.ends_at is None
    # ... and their own token closes it.
    assert post(client, notification(alert("resolved", service="cold-archive", ends=iso(NOW))), archive.token).json()[
        "closed"
    ] == [theirs.pk]


def test_a_rotated_token_stops_working(client, backup):
    old = backup.token
    new = service_rotate_webhook_token(service=backup)
    assert post(client, notification(), old).status_code == 401
    assert post(client, notification(), new).status_code == 200


def test_only_the_tokens_hash_is_stored(backup):
    backup.refresh_from_db()
    assert backup.webhook_token_hash == hashlib.sha256(backup.token.encode()).hexdigest()
    assert backup.token not in backup.webhook_token_hash


def test_a_staff_session_is_not_authentication(client, backup, sam):
    client.force_login(sam)
    assert post(client, notification()).status_code == 401


def test_no_csrf_token_is_needed(backup):
    client = Client(enforce_csrf_checks=True)
    assert post(client, notification(), backup.token).status_code == 200


# --- Malformed notifications ---------------------------------------------------------------------
def without(body, path):
    body = copy.deepcopy(body)
    *parents, last = path
    target = body
    for key in parents:
        target = target[key]
    del target[last]
    return body


def with_value(body, path, value):
    body = copy.deepcopy(body)
    *parents, last = path
    target = body
    for key in parents:
        target = target[key]
    target[last] = value
    return body


MALFORMED = {
    "not-json": "{'version': '4'",
    "not-an-object": json.dumps([notification()]),
    "empty": "",
    "wrong-version": with_value(notification(), ["version"], "3"),
    "no-version": without(notification(), ["version"]),
    "no-alerts": without(notification(), ["alerts"]),
    "empty-alerts": with_value(notification(), ["alerts"], []),
    "alerts-not-a-list": with_value(notification(), ["alerts"], {"status": "firing"}),
    "wrong-status": with_value(notification(), ["status"], "pending"),
}
MALFORMED_ALERTS = {
    "no-fingerprint": (without(alert(), ["fingerprint"]), "fingerprint"),
    "no-startsAt": (without(alert(), ["startsAt"]), "startsAt"),
    "no-endsAt": (without(alert(), ["endsAt"]), "endsAt"),
    "no-service-label": (without(alert(), ["labels", "service"]), "service"),
    "unknown-status": (with_value(alert(), ["status"], "pending"), "status"),
    "labels-not-strings": (with_value(alert(), ["labels"], {"service": {"slug": "cloud-backup"}}), "labels"),
    "fingerprint-too-long": (with_value(alert(), ["fingerprint"], "f" * 101), "fingerprint"),
    "not-an-object": (1, "Invalid data"),
    "null": (None, "No data provided"),
}
BAD_TIMESTAMPS = ["yesterday", "2026-13-02T09:00:00Z", "2026-11-02T09:00:00", "2026-11-02", 1793610000, ZERO]


@pytest.mark.parametrize("body", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_notification_is_400_and_nothing_stored(client, backup, body):
    before = rows()
    response = post(client, body, backup.token)
    assert response.status_code == 400, response.content
    assert response["Content-Type"] == "application/json"
    assert response.json()  # a message saying what is wrong
    assert rows() == before


@pytest.mark.parametrize(("bad", "said"), MALFORMED_ALERTS.values(), ids=MALFORMED_ALERTS.keys())
def test_a_malformed_alert_is_refused_and_the_others_are_taken(client, backup, bad, said):
    """A notification was refused whole (400, never retried) for one bad alert: the good ones beside
    it were lost."""
    body = notification(alert(fingerprint="0000000000000002"))
    body["alerts"].insert(0, bad)
    response = post(client, body, backup.token)
    reasons = refused(response)
    assert list(reasons) == [0] and said in reasons[0], reasons
    assert list(Outage.objects.values_list("fingerprint", flat=True)) == ["0000000000000002"]


def test_wrong_version_says_which_is_accepted(client, backup):
    response = post(client, with_value(notification(), ["version"], "3"), backup.token)
    assert response.status_code == 400
    assert response.json() == {"version": ["Only version “4” notifications are accepted."]}


@pytest.mark.parametrize("value", BAD_TIMESTAMPS, ids=[str(v) for v in BAD_TIMESTAMPS])
def test_a_bad_start_timestamp_is_refused_and_nothing_stored(client, backup, value):
    before = rows()
    reasons = refused(post(client, notification(alert(starts=value)), backup.token))
    assert list(reasons) == [0] and reasons[0].startswith("startsAt: "), reasons
    assert rows() == before


def test_a_bad_end_timestamp_is_refused_and_nothing_stored(client, backup):
    before = rows()
    reasons = refused(post(client, notification(alert("resolved", ends="2026-11-02 25:00")), backup.token))
    assert reasons == {0: "endsAt: Not an RFC 3339 timestamp with a UTC offset: “2026-11-02 25:00”."}
    assert rows() == before


def test_an_unknown_service_is_refused_and_the_others_taken(client, backup):
    response = post(
        client, notification(alert(), alert(service="no-such-service", fingerprint="0000000000000001")), backup.token
    )
    assert refused(response) == {1: "No service has the slug “no-such-service” (the alert's `service` label)."}
    assert Outage.objects.get().fingerprint == FINGERPRINT


def test_one_bad_alert_loses_none_of_the_others(client, backup):
    response = post(
        client,
        notification(alert(), alert(fingerprint="0000000000000002", starts="soon"), alert(fingerprint="3" * 16)),
        backup.token,
    )
    assert list(refused(response)) == [1]
    assert len(response.json()["opened"]) == 2
    assert sorted(Outage.objects.values_list("fingerprint", flat=True)) == ["3" * 16, FINGERPRINT]


# --- Plausible times ------------------------------------------------------------------------------
IMPLAUSIBLE = {
    # An outage from 2000 to 9999 was taken, and turned a month's credit into 75,000 KES.
    "2000-to-9999": ("resolved", "2000-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "more than 7 days ago"),
    "started-8-days-ago": ("firing", iso(NOW - timedelta(days=8)), ZERO, "more than 7 days ago"),
    "starts-in-an-hour": ("firing", iso(NOW + timedelta(hours=1)), ZERO, "in the future"),
    "starts-in-9999": ("firing", "9999-12-31T23:59:59Z", ZERO, "in the future"),
    "ends-in-the-future": ("resolved", STARTS, iso(NOW + timedelta(hours=1)), "endsAt"),
    "ends-before-it-starts": ("resolved", STARTS, "2026-11-02T08:00:00Z", "not after startsAt"),
    "resolved-without-an-end": ("resolved", STARTS, ZERO, "needs its endsAt"),
}


@pytest.mark.parametrize(("status", "starts", "ends", "said"), IMPLAUSIBLE.values(), ids=IMPLAUSIBLE.keys())
def test_a_new_outage_with_implausible_times_is_refused(client, backup, status, starts, ends, said):
    before = rows()
    response = post(client, notification(alert(status, starts=starts, ends=ends)), backup.token)
    reasons = refused(response)
    assert list(reasons) == [0] and said in reasons[0], reasons
    assert rows() == before


@pytest.mark.parametrize(
    ("status", "starts", "ends"),
    [
        ("firing", NOW - timedelta(days=7) + timedelta(seconds=1), None),
        ("firing", NOW + timedelta(minutes=4), None),
        ("resolved", NOW - timedelta(days=6), NOW + timedelta(minutes=4)),
    ],
    ids=["almost-7-days-ago", "clock-skew-start", "clock-skew-end"],
)
def test_plausible_edges_are_taken(client, backup, status, starts, ends):
    response = post(
        client, notification(alert(status, starts=iso(starts), ends=iso(ends) if ends else ZERO)), backup.token
    )
    assert refused(response) == {} and Outage.objects.count() == 1


def test_an_alert_matching_an_open_outage_is_always_taken(client, backup):
    """An outage opened ten days ago closes, whatever its age; an end in the future is now."""
    started = NOW - timedelta(days=10)
    outage = Outage.objects.create(
        title="Long one", starts_at=started, source=Outage.Source.ALERTMANAGER, fingerprint=FINGERPRINT
    )
    outage.services.set([backup])
    repeat = post(client, notification(alert(starts=iso(started))), backup.token)
    assert refused(repeat) == {} and repeat.json()["unchanged"] == 1
    response = post(
        client, notification(alert("resolved", starts=iso(started), ends="9999-12-31T23:59:59Z")), backup.token
    )
    assert refused(response) == {} and response.json()["closed"] == [outage.pk]
    outage.refresh_from_db()
    assert outage.ends_at == NOW


def test_the_same_alert_twice_in_one_notification(client, backup):
    response = post(client, notification(alert(), alert("resolved", ends="2026-11-02T09:20:00Z")), backup.token)
    outage = Outage.objects.get()
    assert response.json() | {"refused": []} == {
        "opened": [outage.pk], "closed": [outage.pk], "recorded": [], "unchanged": 0, "refused": []
    }  # fmt: skip
    assert outage.ends_at == datetime(2026, 11, 2, 9, 20, tzinfo=UTC)


# --- Audit ----------------------------------------------------------------------------------------
def test_outages_the_webhook_opens_records_and_closes_are_audited(client, backup):
    opened = post(client, notification(), backup.token).json()["opened"][0]
    closed = post(client, notification(alert("resolved", ends="2026-11-02T09:20:00Z")), backup.token).json()["closed"]
    recorded = post(
        client, notification(alert("resolved", fingerprint="2" * 16, ends="2026-11-02T09:10:00Z")), backup.token
    ).json()["recorded"][0]
    assert closed == [opened]
    entries = list(
        AuditEntry.objects.filter(action__startswith="outage.")
        .order_by("pk")
        .values_list("action", "target_id", "before", "after")
    )
    # The outage opened got a drafted incident (contracts.incidents), held for staff once the alert closed it.
    draft = Incident.objects.get(outage_id=opened)
    assert AuditEntry.objects.filter(action="incident.drafted_by_alert", target_id=str(draft.pk)).exists()
    assert draft.published_at is None and draft.publish_due_at is None
    assert [(action, int(pk)) for action, pk, _, _ in entries] == [
        ("outage.opened_by_alert", opened), ("outage.closed_by_alert", opened), ("outage.recorded_by_alert", recorded),
    ]  # fmt: skip
    assert entries[1][2] == {"ends_at": None}
    assert entries[1][3]["ends_at"] == "2026-11-02 09:20:00+00:00"
    assert entries[1][3]["webhook_token_of"] == "cloud-backup"
    post(client, notification(), backup.token)  # a repeat: nothing to audit
    assert AuditEntry.objects.count() == 4


# --- A large delivery -----------------------------------------------------------------------------
def test_a_delivery_of_1000_alerts_reads_and_writes_in_batches(client, backup, capsys, monkeypatch):
    """Alert by alert, 1,000 alerts were six queries each inside one transaction: now a fixed number
    per batch of alerts. The time is printed (with the part inside the transaction), not asserted."""
    alerts = [alert(fingerprint=f"{i:016x}", starts=iso(STARTS_AT - timedelta(minutes=i % 600))) for i in range(1000)]
    resolved = [{**a, "status": "resolved", "endsAt": "2026-11-02T09:29:00Z"} for a in alerts]
    timings, in_transaction = {}, []

    def timed(*args, **kwargs):
        started = time.perf_counter()
        try:
            return record(*args, **kwargs)
        finally:
            in_transaction.append(time.perf_counter() - started)

    record = outages._record_alerts
    monkeypatch.setattr(outages, "_record_alerts", timed)
    for name, body in (("open", alerts), ("repeat", alerts), ("close", resolved)):
        started = time.perf_counter()
        with CaptureQueriesContext(connection) as queries:
            response = post(client, notification(*body), backup.token)
        timings[name] = (time.perf_counter() - started, in_transaction[-1], len(queries))
        assert refused(response) == {}
        assert len(queries) <= 40, (name, len(queries))
    assert Outage.objects.filter(ends_at=datetime(2026, 11, 2, 9, 29, tzinfo=UTC)).count() == 1000
    assert AuditEntry.objects.count() == 2000
    with capsys.disabled():
        print(
            f"\n1,000-alert delivery on {connection.vendor}: "
            + ", ".join(
                f"{name} {total * 1000:.0f} ms, {held * 1000:.0f} ms of it in the transaction ({count} queries)"
                for name, (total, held, count) in timings.items()
            )
        )


def padded(size: int) -> bytes:
    """A valid notification of exactly `size` bytes (the padding is in an annotation)."""
    body = notification(alert(summary="Cloud Backup API is down", description=""))
    raw = json.dumps(body).encode()
    body["alerts"][0]["annotations"]["description"] = "x" * (size - len(raw))
    raw = json.dumps(body).encode()
    assert len(raw) == size
    return raw


def test_a_body_of_1_mb_is_accepted(client, backup):
    assert post(client, padded(MAX_BODY), backup.token).status_code == 200


@pytest.mark.parametrize("size", [MAX_BODY + 1, 3 * MAX_BODY])
def test_a_body_over_1_mb_is_400_and_nothing_stored(client, backup, size):
    response = post(client, padded(size), backup.token)
    assert response.status_code == 400
    assert response.json() == {"detail": f"The request body is larger than {MAX_BODY} bytes."}
    assert not Outage.objects.exists()


def test_deeply_nested_json_is_400_not_500(client, backup):
    response = post(client, "[" * 100_000 + "]" * 100_000, backup.token)
    assert response.status_code == 400
    assert not Outage.objects.exists()


# --- Methods and schema ---------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["get", "put", "patch", "delete"])
def test_it_rejects_other_methods(client, backup, method):
    response = getattr(client, method)(
        reverse("alertmanager-webhook"), headers={"Authorization": f"Bearer {backup.token}"}
    )
    assert response.status_code == 405
    assert not Outage.objects.exists()


def test_it_is_in_the_api_schema_with_its_errors(client):
    response = client.get(reverse("api-schema"), {"format": "json"})
    operation = response.json()["paths"]["/api/v1/hooks/alertmanager/"]["post"]
    # Not the customers' API: no 403, 413 or 429 (no roles, no throttle, no body limit of its own).
    assert set(operation["responses"]) == {"200", "400", "401", "415"}
    assert operation["security"] == [{"alertmanagerBearer": []}]
    assert list(operation["requestBody"]["content"]) == ["application/json"]


def test_a_body_that_is_not_sent_as_json_is_415_and_nothing_stored(client, backup):
    # Alertmanager always sends application/json; anything else is refused before it is read.
    response = client.post(
        reverse("alertmanager-webhook"), data=json.dumps(notification()), content_type="text/plain",
        headers={"Authorization": f"Bearer {backup.token}"},
    )  # fmt: skip
    assert response.status_code == 415
    assert not Outage.objects.exists()
