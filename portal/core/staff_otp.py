"""The staff's second factor (django-otp): a TOTP device (an authenticator app) and recovery codes
(a static device whose codes each work once).

settings.STAFF_OTP_REQUIRED (on in production): the staff site needs a session verified by a
device, and a staff member without an authenticator app is sent to enrolment. Off (the embedded
default): a staff member who has a device must use it; one who has none signs in with the
password alone and may enrol. The enrolment pages are portal/site/staff_otp.py; the first
superuser's device comes from `manage.py staff_otp_device`."""

from __future__ import annotations

from django.conf import settings
from django.db import transaction
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from portal.core.audit import audit

APP_NAME = "Authenticator app"
RECOVERY_NAME = "Recovery codes"


def otp_required() -> bool:
    return bool(settings.STAFF_OTP_REQUIRED)


def is_staff_member(user) -> bool:
    return bool(user.is_authenticated and user.is_active and user.is_staff)


def is_verified(user) -> bool:
    """True when this session was verified by one of the user's devices (django_otp's middleware)."""
    check = getattr(user, "is_verified", None)
    return bool(check and check())


def has_any_device(user) -> bool:
    """Whether the user has a confirmed device of either kind: one query (a union), remembered on
    the request's user object, since the staff site asks on every page (twice)."""
    cached = getattr(user, "_staff_otp_has_device", None)
    if cached is None:
        apps = TOTPDevice.objects.filter(user=user, confirmed=True).values_list("pk")
        codes = StaticDevice.objects.filter(user=user, confirmed=True).values_list("pk")
        cached = user._staff_otp_has_device = apps.union(codes).exists()
    return cached


def forget_devices(user) -> None:
    try:
        del user._staff_otp_has_device
    except AttributeError:
        pass


def authenticator(user) -> TOTPDevice | None:
    return TOTPDevice.objects.devices_for_user(user, confirmed=True).order_by("-id").first()


def may_use_staff_site(user) -> bool:
    """The second factor's part of the staff site's permission (is_staff is checked by the admin)."""
    if is_verified(user):
        return True
    return not otp_required() and not has_any_device(user)


def must_enrol(user) -> bool:
    """A staff member the staff site sends to enrolment after the password: the second factor is
    required and they have no device to give it with."""
    return is_staff_member(user) and otp_required() and not has_any_device(user)


def may_enrol(user) -> bool:
    """Only the password is needed to enrol an account that has no device; replacing a device
    takes a session verified by one (the old app or a recovery code)."""
    return is_staff_member(user) and (is_verified(user) or not has_any_device(user))


def pending_authenticator(user) -> TOTPDevice:
    """The user's unconfirmed TOTP device (its QR code shown until a first code confirms it)."""
    device = TOTPDevice.objects.filter(user=user, confirmed=False).order_by("-id").first()
    return device or TOTPDevice.objects.create(user=user, name=APP_NAME, confirmed=False)


def new_recovery_codes(user) -> list[str]:
    """A new set of recovery codes replacing any earlier set. Each works once (django-otp deletes a
    static token when it is used); the caller shows them once."""
    forget_devices(user)
    StaticDevice.objects.filter(user=user).delete()
    device = StaticDevice.objects.create(user=user, name=RECOVERY_NAME, confirmed=True)
    codes = [StaticToken.random_token() for _ in range(settings.STAFF_OTP_RECOVERY_CODES)]
    StaticToken.objects.bulk_create(StaticToken(device=device, token=code) for code in codes)
    return codes


@transaction.atomic
def confirm_authenticator(*, device: TOTPDevice, actor) -> list[str]:
    """`device` was proved by a first code: it becomes the user's only authenticator app, with a
    new set of recovery codes (returned, to be shown once)."""
    user = device.user
    replaced = TOTPDevice.objects.filter(user=user, confirmed=True).exclude(pk=device.pk).exists()
    TOTPDevice.objects.filter(user=user).exclude(pk=device.pk).delete()
    device.confirmed = True
    device.save(update_fields=["confirmed"])
    codes = new_recovery_codes(user)
    audit(actor=actor, action="staff_otp.enrolled", target=user, after={"replaced_previous": replaced})
    return codes


@transaction.atomic
def recovery_codes_renewed(*, user, actor) -> list[str]:
    codes = new_recovery_codes(user)
    audit(actor=actor, action="staff_otp.recovery_codes", target=user, after={"count": len(codes)})
    return codes


@transaction.atomic
def device_from_command(*, user) -> tuple[TOTPDevice, list[str]]:
    """`manage.py staff_otp_device`: a confirmed authenticator app (and recovery codes) replacing
    every device of the user, for the first superuser or one who lost theirs."""
    replaced = TOTPDevice.objects.filter(user=user).exists() or StaticDevice.objects.filter(user=user).exists()
    TOTPDevice.objects.filter(user=user).delete()
    device = TOTPDevice.objects.create(user=user, name=APP_NAME, confirmed=True)
    codes = new_recovery_codes(user)
    audit(actor=None, action="staff_otp.device_from_command", target=user, after={"replaced_previous": replaced})
    return device, codes


def recovery_codes_left(user) -> int:
    return StaticToken.objects.filter(device__user=user, device__confirmed=True).count()
