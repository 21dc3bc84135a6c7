"""The Alertmanager webhook (/api/v1/hooks/alertmanager/): payloads in Alertmanager's own format
(version 4) open and close outages of the token's service; a refused notification stores nothing."""

import copy
import hashlib
import json
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.test import Client
from django.urls import reverse

from contracts.choices import Cause
from contracts.models import Outage, OutageCauseChange, OutageUpdate
from contracts.outages import service_rotate_webhook_token
from contracts.webhooks import MAX_BODY

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
    }


# --- Firing and resolved ------------------------------------------------------------------------
def test_firing_alert_opens_an_outage(client, backup):
    response = post(client, notification(), backup.token)
    assert response.status_code == 200, response.content
    outage = Outage.objects.get()
    assert response.json() == {"opened": [outage.pk], "closed": [], "recorded": [], "unchanged": 0}
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
    assert response.json() == {"opened": [], "closed": [], "recorded": [], "unchanged": 1}
    assert rows() == before


def test_resolved_alert_closes_the_open_outage(client, backup):
    post(client, notification(), backup.token)
    outage = Outage.objects.get()
    response = post(client, notification(alert("resolved", ends="2026-11-02T09:25:30.5Z")), backup.token)
    assert response.json() == {"opened": [], "closed": [outage.pk], "recorded": [], "unchanged": 0}
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
    assert response.json() == {"opened": [], "closed": [], "recorded": [outage.pk], "unchanged": 0}
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


def test_token_of_another_service_is_401_and_nothing_stored(client, backup, archive):
    before = rows()
    response = post(client, notification(alert(service="cold-archive")), backup.token)
    assert response.status_code == 401
    assert "cloud-backup" in response.json()["detail"]
    assert rows() == before


def test_one_alert_for_another_service_refuses_the_whole_notification(client, backup, archive):
    before = rows()
    response = post(
        client, notification(alert(), alert(service="cold-archive", fingerprint="ffff000000000009")), backup.token
    )
    assert response.status_code == 401
    assert rows() == before


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
    "no-fingerprint": without(notification(), ["alerts", 0, "fingerprint"]),
    "no-startsAt": without(notification(), ["alerts", 0, "startsAt"]),
    "no-endsAt": without(notification(), ["alerts", 0, "endsAt"]),
    "no-service-label": without(notification(), ["alerts", 0, "labels", "service"]),
    "unknown-status": with_value(notification(), ["alerts", 0, "status"], "pending"),
    "labels-not-strings": with_value(notification(), ["alerts", 0, "labels"], {"service": {"slug": "cloud-backup"}}),
    "fingerprint-too-long": with_value(notification(), ["alerts", 0, "fingerprint"], "f" * 101),
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


def test_wrong_version_says_which_is_accepted(client, backup):
    response = post(client, with_value(notification(), ["version"], "3"), backup.token)
    assert response.status_code == 400
    assert response.json() == {"version": ["Only version “4” notifications are accepted."]}


@pytest.mark.parametrize("value", BAD_TIMESTAMPS, ids=[str(v) for v in BAD_TIMESTAMPS])
def test_bad_start_timestamp_is_400_and_nothing_stored(client, backup, value):
    before = rows()
    response = post(client, notification(alert(starts=value)), backup.token)
    assert response.status_code == 400
    assert "startsAt" in response.json()["alerts"]["0"]
    assert rows() == before


def test_bad_end_timestamp_is_400_and_nothing_stored(client, backup):
    before = rows()
    response = post(client, notification(alert("resolved", ends="2026-11-02 25:00")), backup.token)
    assert response.status_code == 400
    assert "endsAt" in response.json()["alerts"]["0"]
    assert rows() == before


def test_unknown_service_is_400_and_nothing_stored(client, backup):
    before = rows()
    response = post(
        client, notification(alert(), alert(service="no-such-service", fingerprint="0000000000000001")), backup.token
    )
    assert response.status_code == 400
    assert response.json() == {"alerts": ["No service has the slug “no-such-service” (an alert's `service` label)."]}
    assert rows() == before


def test_one_bad_alert_refuses_the_whole_notification(client, backup):
    before = rows()
    response = post(client, notification(alert(), alert(fingerprint="0000000000000002", starts="soon")), backup.token)
    assert response.status_code == 400
    assert rows() == before


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
    assert set(operation["responses"]) == {"200", "400", "401"}
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
