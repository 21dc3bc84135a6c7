"""/api/v1/notification-preferences/: what a person is emailed, by API (the Account page's email
choices, portal.site.notification_views; the rule is portal.core.notify_rules). Each person reads
and sets their own choices only; what cannot be turned off still comes, and `always` says what."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_serializer
from rest_framework import serializers
from rest_framework.exceptions import PermissionDenied
from rest_framework.response import Response

from portal.core.api import VALIDATION_ERROR, CustomerApi, ErrorSerializer, StrictInputSerializer
from portal.core.notify_rules import Choice
from portal.core.unsubscribe import preference_set
from portal.models import NotificationPreference

from .notification_views import choice_rows, shown_choices

TAGS = ["account"]
STAFF = "Staff choose no emails here: the customer portal's email choices are for customers."


@extend_schema_serializer(component_name="EmailChoice")
class ChoiceOutputSerializer(serializers.Serializer):
    choice = serializers.ChoiceField(choices=Choice.choices)
    label = serializers.SerializerMethodField()
    enabled = serializers.BooleanField(help_text="Whether you get these emails now.")
    chosen = serializers.BooleanField(help_text="false: the default as it applies to you (you chose nothing yet).")
    covers = serializers.CharField()
    always = serializers.CharField(help_text="What of it comes even when turned off (empty: nothing).")

    def get_label(self, row) -> str:
        return row.choice.label


@extend_schema_serializer(component_name="EmailChoices")
class ChoicesOutputSerializer(serializers.Serializer):
    choices = ChoiceOutputSerializer(many=True)


class NotificationPreferencesApi(CustomerApi):
    @extend_schema_serializer(component_name="EmailChoiceUpdate")
    class InputSerializer(StrictInputSerializer):
        choice = serializers.ChoiceField(choices=Choice.choices)
        enabled = serializers.BooleanField()

        def validate_choice(self, value):
            if value not in shown_choices(self.context["user"]):
                raise serializers.ValidationError("Contact reviews go to customer admins only.")
            return value

    def _customer(self, request):
        if not request.user.is_customer:
            raise PermissionDenied(STAFF)
        return request.user

    @extend_schema(
        operation_id="notification_preferences_retrieve",
        tags=TAGS,
        summary="Which kinds of email you get",
        responses={200: ChoicesOutputSerializer, 403: OpenApiResponse(ErrorSerializer, description=STAFF)},
    )
    def get(self, request):
        user = self._customer(request)
        return Response(ChoicesOutputSerializer({"choices": choice_rows(user)}).data)

    @extend_schema(
        operation_id="notification_preferences_set",
        tags=TAGS,
        summary="Turn one kind of email on or off (what cannot be turned off still comes)",
        request=InputSerializer,
        responses={
            200: ChoicesOutputSerializer,
            400: VALIDATION_ERROR,
            403: OpenApiResponse(ErrorSerializer, description=STAFF),
        },
    )
    def post(self, request):
        user = self._customer(request)
        serializer = self.InputSerializer(data=request.data, context={"user": user})
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        preference_set(
            user=user, choice=Choice(data["choice"]), enabled=data["enabled"], via=NotificationPreference.Via.API
        )
        return Response(ChoicesOutputSerializer({"choices": choice_rows(user)}).data)
