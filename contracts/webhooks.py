"""POST /api/v1/hooks/alertmanager/: Prometheus Alertmanager's webhook (payload version "4").

Authentication is a per-service bearer token (Service.webhook_token_hash, rotated in the admin),
checked before the body is read: no token or an unknown one is a 401. A body that is not a version 4
notification (not JSON, not an object, no list of alerts, a wrong version or status) is a 400 with a
JSON message, and nothing is stored. A body not sent as application/json is DRF's 415 (Alertmanager
always sends JSON).

Alertmanager does not retry a 4xx (it retries on 5xx and connection errors), so a refusal is final:
a notification is never refused as a whole for one of its alerts. Each alert is taken or refused
on its own, and the answer is a 200 that lists the refused alerts and why (contracts.outages): one
that is malformed, names no service or a service the token does not cover, or would open an outage
with implausible times. The others are stored, in one transaction. A repeat delivery of an accepted
alert is answered 200 and changes nothing."""

from __future__ import annotations

import io
import logging
from datetime import UTC

from django.utils.dateparse import parse_datetime
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.plumbing import ResolvedComponent
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    extend_schema_serializer,
)
from rest_framework import serializers
from rest_framework.exceptions import AuthenticationFailed, ParseError
from rest_framework.parsers import JSONParser
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from .models import Outage, Service
from .outages.alerts import ALERT_MAX_AGE, AlertEvent, AlertRefusal, outage_record_alerts, service_for_webhook_token

log = logging.getLogger(__name__)

MAX_BODY = 1024 * 1024  # 1 MB: Alertmanager's notifications are a few kB; more is not one
PAYLOAD_VERSION = "4"
ALERT_STATUSES = ["firing", "resolved"]
TITLE_MAX = Outage._meta.get_field("title").max_length


def too_large() -> ParseError:
    return ParseError(f"The request body is larger than {MAX_BODY} bytes.")


def check_body_size(request) -> None:
    """Refuse a body announced as over MAX_BODY before it is read. DRF reads a JSON body through
    request.body, whose own limit (DATA_UPLOAD_MAX_MEMORY_SIZE, 2.5 MB) would answer with Django's
    HTML 400 page; the parser below catches a body whose length was not announced."""
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        raise ParseError("Invalid Content-Length.") from None
    if length > MAX_BODY:
        raise too_large()


class BoundedJSONParser(JSONParser):
    """JSON of at most MAX_BODY bytes, and a too-deeply nested document (a RecursionError, which
    DRF's JSONParser lets escape as a 500) is a 400."""

    def parse(self, stream, media_type=None, parser_context=None):
        raw = stream.read(MAX_BODY + 1) if stream is not None else b""
        if len(raw) > MAX_BODY:
            raise too_large()
        try:
            return super().parse(io.BytesIO(raw), media_type, parser_context)
        except RecursionError:
            raise ParseError("JSON parse error - the document is nested too deeply.") from None


class AlertmanagerTimeField(serializers.DateTimeField):
    """An RFC 3339 timestamp with its offset ("2026-11-02T09:00:00.123Z"; nanoseconds are cut to
    microseconds), in UTC. A timestamp without an offset is refused, not guessed."""

    default_error_messages = {"invalid": "Not an RFC 3339 timestamp with a UTC offset: “{value}”."}

    def to_internal_value(self, value):
        try:
            parsed = parse_datetime(value) if isinstance(value, str) else None
        except ValueError:  # well formed but impossible, e.g. month 13
            parsed = None
        if parsed is None or parsed.tzinfo is None:
            self.fail("invalid", value=str(value)[:64])
        try:
            return parsed.astimezone(UTC)
        except OverflowError:  # the offset pushes it outside year 1..9999
            self.fail("invalid", value=str(value)[:64])


@extend_schema_field({"type": "string", "pattern": "^(firing|resolved)$", "description": "`firing` or `resolved`."})
class AlertStatusField(serializers.ChoiceField):
    """firing | resolved. Documented as a pattern, not an enum: drf-spectacular names enums after
    the field, and a second `status` choice set would rename the ticket API's StatusEnum (an
    ENUM_NAME_OVERRIDES entry in settings would allow an enum here)."""

    def __init__(self, **kwargs):
        super().__init__(choices=ALERT_STATUSES, **kwargs)


class AlertmanagerBearerSchema(AutoSchema):
    """The endpoint authenticates with its own bearer token, not with a DRF authentication class:
    document it as such (and not as open to anonymous callers, as AllowAny alone would)."""

    SCHEME = "alertmanagerBearer"

    def get_auth(self):
        self.registry.register_on_missing(
            ResolvedComponent(
                name=self.SCHEME,
                type=ResolvedComponent.SECURITY_SCHEMA,
                object=self.SCHEME,
                schema={
                    "type": "http",
                    "scheme": "bearer",
                    "description": "The service's webhook token (Service admin → “Rotate webhook token”).",
                },
            )
        )
        return [{self.SCHEME: []}]


EXAMPLE = {
    "version": "4",
    "groupKey": '{}:{alertname="BackupApiDown"}',
    "truncatedAlerts": 0,
    "status": "firing",
    "receiver": "sla-portal",
    "groupLabels": {"alertname": "BackupApiDown"},
    "commonLabels": {"alertname": "BackupApiDown", "service": "cloud-backup", "severity": "critical"},
    "commonAnnotations": {"summary": "Cloud Backup API is down"},
    "externalURL": "https://alertmanager.vendor.example",
    "alerts": [
        {
            "status": "firing",
            "labels": {"alertname": "BackupApiDown", "service": "cloud-backup", "severity": "critical"},
            "annotations": {"summary": "Cloud Backup API is down", "description": "Probe failed for 5 minutes."},
            "startsAt": "2026-11-02T09:00:00.123Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "https://prometheus.vendor.example/graph?g0.expr=up%3D%3D0",
            "fingerprint": "c5d9d2a1e0f4b8a7",
        }
    ],
}


@extend_schema_serializer(component_name="AlertmanagerAlert")
class AlertSerializer(serializers.Serializer):
    status = AlertStatusField()
    labels = serializers.DictField(child=serializers.CharField(allow_blank=True))
    annotations = serializers.DictField(child=serializers.CharField(allow_blank=True), required=False, default=dict)
    startsAt = AlertmanagerTimeField()
    endsAt = AlertmanagerTimeField(help_text="The zero time 0001-01-01T00:00:00Z while firing.")
    generatorURL = serializers.CharField(required=False, allow_blank=True)
    fingerprint = serializers.CharField(max_length=Outage._meta.get_field("fingerprint").max_length)

    def validate_labels(self, labels):
        if not labels.get("service"):
            raise serializers.ValidationError("The `service` label (the service's slug) is required.")
        return labels

    def validate_startsAt(self, value):
        if value.year < 2000:  # Alertmanager's zero time: an alert always has a real start
            raise serializers.ValidationError("An alert must have a real start time.")
        return value


@extend_schema_serializer(component_name="AlertmanagerRefusal")
class RefusalSerializer(serializers.Serializer):
    index = serializers.IntegerField(help_text="The alert's place in `alerts`, from 0.")
    fingerprint = serializers.CharField(help_text="As sent (empty when it was not a string).")
    service = serializers.CharField(help_text="The `service` label as sent (empty when it was not a string).")
    reason = serializers.CharField()


class AnyValue(serializers.Field):
    """An alert as sent, checked on its own by AlertSerializer (a bad alert loses no other)."""

    def to_internal_value(self, data):
        return data


def _error_text(errors) -> str:
    """DRF's errors of one alert as one line: "startsAt: Not an RFC 3339 timestamp ...; fingerprint: ..."."""
    if isinstance(errors, dict):
        return "; ".join(f"{name}: {_error_text(value)}" for name, value in errors.items())
    if isinstance(errors, list):
        return " ".join(_error_text(value) for value in errors)
    return str(errors)


def _label(alert, name: str) -> str:
    """A label or field of an alert as sent, for the refusal's report (whatever its type)."""
    value = alert.get(name) if isinstance(alert, dict) else None
    if name == "service":
        labels = alert.get("labels") if isinstance(alert, dict) else None
        value = labels.get("service") if isinstance(labels, dict) else None
    return value[:100] if isinstance(value, str) else ""


def read_alerts(alerts: list) -> tuple[list[AlertEvent], list[AlertRefusal]]:
    """Each alert of a notification checked on its own: the well formed as AlertEvents, the others
    refused with DRF's messages."""
    events, refused = [], []
    for index, raw in enumerate(alerts):
        serializer = AlertSerializer(data=raw)
        if not serializer.is_valid():
            reason = _error_text(serializer.errors)
            refused.append(AlertRefusal(index, _label(raw, "fingerprint"), _label(raw, "service"), reason))
            continue
        a = serializer.validated_data
        firing = a["status"] == "firing"
        events.append(
            AlertEvent(
                index=index,
                service=a["labels"]["service"],
                firing=firing,
                fingerprint=a["fingerprint"],
                starts_at=a["startsAt"],
                # Alertmanager's zero time 0001-01-01T00:00:00Z: not ended. A firing alert's end is not used.
                ends_at=None if firing or a["endsAt"].year < 2000 else a["endsAt"],
                title=_title(a),
            )
        )
    return events, refused


class AlertmanagerWebhookApi(APIView):
    """Alertmanager's notifications open and close outages of the token's service."""

    authentication_classes: list = []  # no session, no CSRF: the bearer token below
    permission_classes = [AllowAny]
    # Not the customers' write throttle (per address, as it is anonymous to DRF): Alertmanager does
    # not retry a 4xx, so a 429 in a burst of notifications would lose outages for good.
    throttle_classes: list = []
    parser_classes = [BoundedJSONParser]
    schema = AlertmanagerBearerSchema()

    @extend_schema_serializer(component_name="AlertmanagerNotification")
    class InputSerializer(serializers.Serializer):
        version = serializers.CharField()
        groupKey = serializers.CharField(required=False, allow_blank=True)
        truncatedAlerts = serializers.IntegerField(required=False, min_value=0)
        status = AlertStatusField()
        receiver = serializers.CharField(required=False, allow_blank=True)
        groupLabels = serializers.DictField(required=False)
        commonLabels = serializers.DictField(required=False)
        commonAnnotations = serializers.DictField(required=False)
        externalURL = serializers.CharField(required=False, allow_blank=True)
        alerts = AlertSerializer(many=True, allow_empty=False)

        def validate_version(self, value):
            if value != PAYLOAD_VERSION:
                raise serializers.ValidationError(f"Only version “{PAYLOAD_VERSION}” notifications are accepted.")
            return value

    class EnvelopeSerializer(InputSerializer):
        """The notification as the view reads it: InputSerializer (the schema) with its alerts
        left to read_alerts, one by one."""

        alerts = serializers.ListField(child=AnyValue(allow_null=True), allow_empty=False)

    @extend_schema_serializer(component_name="AlertmanagerResult")
    class OutputSerializer(serializers.Serializer):
        opened = serializers.ListField(child=serializers.IntegerField(), help_text="Outages opened (firing).")
        closed = serializers.ListField(child=serializers.IntegerField(), help_text="Open outages closed (resolved).")
        recorded = serializers.ListField(
            child=serializers.IntegerField(), help_text="Closed outages created from resolved alerts never seen firing."
        )
        unchanged = serializers.IntegerField(help_text="Alerts already recorded (repeat deliveries).")
        refused = RefusalSerializer(many=True, help_text="The alerts not taken, and why; every other one was taken.")

    def get_authenticate_header(self, request):
        # Without it DRF turns a 401 into a 403: it has no authentication class to name.
        return 'Bearer realm="alertmanager"'

    def authenticate_service(self, request) -> Service:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        service = service_for_webhook_token(token=token.strip()) if scheme.lower() == "bearer" else None
        if service is None:
            log.warning("Alertmanager webhook: missing or unknown bearer token")
            raise AuthenticationFailed("A valid `Authorization: Bearer <token>` of a service is required.")
        return service

    @extend_schema(
        operation_id="alertmanager_webhook",
        summary="Alertmanager webhook",
        description=(
            "Prometheus Alertmanager's webhook notification (version 4). A firing alert opens an outage of the "
            "service named by its `service` label; a resolved alert closes it (or records a closed one if its "
            "firing notification never arrived). An alert is known by its fingerprint and startsAt within its "
            "service, so a repeat delivery changes nothing. The bearer token covers one service. Each alert is "
            "taken or refused on its own, and the answer (200) lists the refused ones with the reason: a malformed "
            "alert, a `service` label that names no service or one the token does not cover, or a new outage whose "
            f"times are implausible (starting more than {ALERT_MAX_AGE.days} days ago or in the future, a resolved "
            "alert ending in the future or not after its start). An alert of an open outage is always taken."
        ),
        tags=["hooks"],
        request=InputSerializer,
        responses={
            200: OutputSerializer,
            400: OpenApiResponse(
                response=OpenApiTypes.OBJECT,
                description="Not a version 4 notification: not JSON, larger than 1 MB, a missing or wrong version "
                "or status, no list of alerts. Nothing is stored. `{field: [messages]}` or `{detail}`.",
            ),
            401: OpenApiResponse(
                response=OpenApiTypes.OBJECT, description="No bearer token, or an unknown one. `{detail}`."
            ),
        },
        examples=[OpenApiExample("A firing alert", value=EXAMPLE, request_only=True)],
    )
    def post(self, request):
        service = self.authenticate_service(request)
        check_body_size(request)
        serializer = self.EnvelopeSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        notification = serializer.validated_data
        if notification.get("truncatedAlerts"):
            log.warning("Alertmanager webhook for %s: %d alerts were truncated by Alertmanager (max_alerts)",
                        service.slug, notification["truncatedAlerts"])  # fmt: skip
        events, malformed = read_alerts(notification["alerts"])
        result = outage_record_alerts(service=service, alerts=events)
        result.refused = sorted([*malformed, *result.refused], key=lambda r: r.index)
        log.info(
            "Alertmanager webhook for %s: %d alerts; opened %d, closed %d, recorded %d, unchanged %d, refused %d",
            service.slug, len(notification["alerts"]), len(result.opened), len(result.closed), len(result.recorded),
            result.unchanged, len(result.refused),
        )  # fmt: skip
        for refusal in result.refused[:20]:  # Alertmanager does not log the answer: the refusals are told here
            log.warning(
                "Alertmanager webhook for %s refused alert %d (service %r, fingerprint %r): %s",
                service.slug, refusal.index, refusal.service, refusal.fingerprint, refusal.reason,
            )  # fmt: skip
        return Response(self.OutputSerializer(result).data)


def _title(alert: dict) -> str:
    title = (alert["annotations"].get("summary") or alert["labels"].get("alertname") or "Alert").strip()
    return title if len(title) <= TITLE_MAX else title[: TITLE_MAX - 1] + "…"
