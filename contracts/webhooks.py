"""POST /api/v1/hooks/alertmanager/: Prometheus Alertmanager's webhook (payload version "4").

Authentication is a per-service bearer token (Service.webhook_token_hash, rotated in the admin),
checked before the body is read. A token authenticates one service: a notification whose alerts
name any other service is refused as a whole with 401 (the token does not authenticate that
service; nothing of the notification is stored). A body that is not a valid notification is a
400 with a JSON message; an alert naming no known service is a 400 too. Either way nothing is
stored: the writes happen after every check, in one transaction (contracts.outages). A body not
sent as application/json is DRF's 415 (Alertmanager always sends JSON).

Alertmanager retries on 5xx and connection errors, not on 4xx, so a refusal is final and a
repeat delivery of an accepted alert is answered 200 and changes nothing."""

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
from rest_framework.exceptions import AuthenticationFailed, ParseError, ValidationError
from rest_framework.parsers import JSONParser
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from .models import Outage, Service
from .outages import AlertEvent, outage_record_alerts, service_for_webhook_token

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

    @extend_schema_serializer(component_name="AlertmanagerResult")
    class OutputSerializer(serializers.Serializer):
        opened = serializers.ListField(child=serializers.IntegerField(), help_text="Outages opened (firing).")
        closed = serializers.ListField(child=serializers.IntegerField(), help_text="Open outages closed (resolved).")
        recorded = serializers.ListField(
            child=serializers.IntegerField(), help_text="Closed outages created from resolved alerts never seen firing."
        )
        unchanged = serializers.IntegerField(help_text="Alerts already recorded (repeat deliveries).")

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
            "firing notification never arrived). An alert is known by its fingerprint and startsAt, so a repeat "
            "delivery changes nothing. The bearer token authenticates one service: every alert must name it. "
            "The whole notification is accepted or refused; a refused one stores nothing."
        ),
        tags=["hooks"],
        request=InputSerializer,
        responses={
            200: OutputSerializer,
            400: OpenApiResponse(
                response=OpenApiTypes.OBJECT,
                description="Not a version 4 notification: not JSON, larger than 1 MB, a missing field, a bad "
                "timestamp, or an alert whose `service` label names no service. `{field: [messages]}` or `{detail}`.",
            ),
            401: OpenApiResponse(
                response=OpenApiTypes.OBJECT,
                description="No bearer token, an unknown one, or one that does not authenticate the service named "
                "by every alert. `{detail}`.",
            ),
        },
        examples=[OpenApiExample("A firing alert", value=EXAMPLE, request_only=True)],
    )
    def post(self, request):
        service = self.authenticate_service(request)
        check_body_size(request)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        alerts = serializer.validated_data["alerts"]

        others = {a["labels"]["service"] for a in alerts} - {service.slug}
        if others:
            known = set(Service.objects.filter(slug__in=others).values_list("slug", flat=True))
            if unknown := sorted(others - known):
                raise ValidationError({"alerts": [f"No service has the slug “{slug}” (an alert's `service` label)." for slug in unknown]})  # fmt: skip
            log.warning("Alertmanager webhook: the token of %s was used for %s", service.slug, sorted(known))
            raise AuthenticationFailed(
                f"This token authenticates “{service.slug}” only; an alert names another service."
            )

        result = outage_record_alerts(
            service=service,
            alerts=[
                AlertEvent(
                    firing=a["status"] == "firing",
                    fingerprint=a["fingerprint"],
                    starts_at=a["startsAt"],
                    ends_at=None if a["status"] == "firing" else a["endsAt"],
                    title=_title(a),
                )
                for a in alerts
            ],
        )
        log.info(
            "Alertmanager webhook for %s: opened %s, closed %s, recorded %s, unchanged %d",
            service.slug, result.opened, result.closed, result.recorded, result.unchanged,
        )  # fmt: skip
        return Response(self.OutputSerializer(result).data)


def _title(alert: dict) -> str:
    title = (alert["annotations"].get("summary") or alert["labels"].get("alertname") or "Alert").strip()
    return title if len(title) <= TITLE_MAX else title[: TITLE_MAX - 1] + "…"
