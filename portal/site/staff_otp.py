"""The staff site's second factor: its login form (password, then a code from the authenticator app
or a recovery code) and the page where a staff member enrols an authenticator app by its QR code.

The rules (required in production, optional in the embedded default) are portal.core.staff_otp."""

from __future__ import annotations

import base64
import io
from urllib.parse import urlencode

import qrcode
from django import forms
from django.contrib import messages
from django.contrib.auth import REDIRECT_FIELD_NAME
from django.db import transaction
from django.http import HttpResponseRedirect
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods
from django_otp import login as otp_login
from django_otp.admin import OTPAdminAuthenticationForm
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice
from qrcode.image.svg import SvgPathImage

from portal.core import staff_otp


def normalised_code(value: str) -> str:
    """What people type: spaces and dashes between groups, capitals."""
    return "".join(ch for ch in (value or "") if ch not in " -\t").lower()


class StaffLoginForm(OTPAdminAuthenticationForm):
    """The admin's login with one code field: six digits go to the authenticator app, anything else
    to the recovery codes, so nobody picks a device from a list (django-otp 1.7 asks for one).
    A staff member without any device passes on the password alone: the staff site then sends them
    to enrolment (required) or lets them in (optional)."""

    otp_token = forms.CharField(
        required=False,
        label="Authentication code",
        help_text="The 6-digit code from your authenticator app, or one of your recovery codes.",
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "spellcheck": "false"}),
    )

    def clean_otp_token(self):
        return normalised_code(self.cleaned_data.get("otp_token", ""))

    def clean_otp(self, user):
        if user is not None and not staff_otp.has_any_device(user):
            user.otp_device = None
            return
        super().clean_otp(user)

    def _update_form(self, user):
        pass  # django-otp would list the devices and send the password back in the page: neither

    def _chosen_device(self, user):
        device = super()._chosen_device(user)  # one named in otp_device, if it is the user's
        if device is not None:
            return device
        code = self.cleaned_data.get("otp_token") or ""
        app = staff_otp.authenticator(user)
        if app is not None and code.isdigit() and len(code) == app.digits:
            return TOTPDevice.objects.select_for_update().get(pk=app.pk)
        return StaticDevice.objects.devices_for_user(user, confirmed=True).select_for_update().first()


def qr_code_data_uri(text: str) -> str:
    """The QR code of `text` as an SVG data: URI (the Content-Security-Policy allows data: images).
    One path rather than django_otp.qr's square per module: scaled, squares leave hairline seams."""
    out = io.BytesIO()
    qrcode.make(text, image_factory=SvgPathImage).save(out)
    return "data:image/svg+xml;base64," + base64.b64encode(out.getvalue()).decode()


def grouped_secret(device: TOTPDevice) -> str:
    """The key as an authenticator app takes it when typed: base32, in groups of four."""
    secret = base64.b32encode(device.bin_key).decode()
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))


class ConfirmForm(forms.Form):
    code = forms.CharField(
        label="Code from the app",
        max_length=12,
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "autofocus": True, "spellcheck": "false"}
        ),
    )

    def clean_code(self):
        return normalised_code(self.cleaned_data["code"])


def safe_next(request) -> str:
    target = request.POST.get(REDIRECT_FIELD_NAME) or request.GET.get(REDIRECT_FIELD_NAME) or ""
    allowed = url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    )
    return target if allowed else reverse("admin:index")


def page(site, request, template: str, **context) -> TemplateResponse:
    """An admin-looking page for a staff member who may not be allowed into the admin yet: the
    site's header and title, no navigation of the models."""
    base = site.each_context(request)
    base.update(available_apps=[], is_nav_sidebar_enabled=False, has_permission=site.has_permission(request))
    response = TemplateResponse(request, template, {**base, **context})
    response["Cache-Control"] = "no-store"
    return response


def enrol_view(site):
    @never_cache
    @require_http_methods(["GET", "POST"])
    def enrol(request):
        user = request.user
        if not staff_otp.is_staff_member(user):
            login = reverse("admin:login", current_app=site.name)
            return HttpResponseRedirect(f"{login}?{urlencode({REDIRECT_FIELD_NAME: request.get_full_path()})}")
        app = staff_otp.authenticator(user)
        replacing = app is not None
        if not staff_otp.may_enrol(user):
            # An account with a device proves it before it can add another: the admin's login asks.
            login = reverse("admin:login", current_app=site.name)
            return HttpResponseRedirect(f"{login}?{urlencode({REDIRECT_FIELD_NAME: request.get_full_path()})}")
        if replacing and request.method == "GET" and "replace" not in request.GET:
            return page(
                site,
                request,
                "admin/staff_otp/status.html",
                title="Two-factor sign-in",
                app=app,
                codes_left=staff_otp.recovery_codes_left(user),
            )
        device = staff_otp.pending_authenticator(user)
        form = ConfirmForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            with transaction.atomic():
                device = TOTPDevice.objects.select_for_update().get(pk=device.pk)  # one confirmation at a time
                codes = device.verify_token(form.cleaned_data["code"]) and staff_otp.confirm_authenticator(
                    device=device, actor=user
                )
            if codes:
                staff_otp.forget_devices(user)
                otp_login(request, device)  # this session is verified from now on
                return page(
                    site,
                    request,
                    "admin/staff_otp/recovery_codes.html",
                    title="Your recovery codes",
                    codes=codes,
                    next=safe_next(request),
                    enrolled=True,
                )
            form.add_error(
                "code", "That code is not the app's current one. Check the app's clock, then try the next code."
            )
        return page(
            site,
            request,
            "admin/staff_otp/enrol.html",
            title="Set up two-factor sign-in",
            form=form,
            qr_code=qr_code_data_uri(device.config_url),
            secret=grouped_secret(device),
            replacing=replacing,
            required=staff_otp.otp_required(),
            next=safe_next(request),
        )

    return enrol


def recovery_codes_view(site):
    """New recovery codes (the old ones stop working), behind the admin's own permission."""

    @require_http_methods(["POST"])
    def recovery_codes(request):
        if staff_otp.authenticator(request.user) is None:
            messages.error(request, "Set up an authenticator app first: recovery codes come with it.")
            return redirect("admin:staff_otp")
        codes = staff_otp.recovery_codes_renewed(user=request.user, actor=request.user)
        return page(
            site,
            request,
            "admin/staff_otp/recovery_codes.html",
            title="Your recovery codes",
            codes=codes,
            next=reverse("admin:index"),
            enrolled=False,
        )

    return recovery_codes
