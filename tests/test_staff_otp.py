"""The staff's second factor (django-otp): a TOTP app enrolled by its QR code, recovery codes that
each work once, required in production (a staff member without a device is sent to enrolment and
kept out of the admin), optional in the embedded default (a device once enrolled must be used), the
first superuser's device from `manage.py staff_otp_device`. Codes are computed as an authenticator
app does (django_otp.oath.totp)."""

import base64
import io
import re
from html import unescape

import pytest
from django.core.files.base import ContentFile
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse
from django_otp.oath import totp
from django_otp.plugins.otp_static.models import StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from portal.core.staff_otp import device_from_command
from portal.domain.formats import in_tz
from portal.models import AuditEntry
from tickets.models import Attachment
from tickets.services import ticket_open

from .factories import PASSWORD, StaffFactory
from .test_dashboard import text_of

pytestmark = pytest.mark.django_db

LOGIN = "/admin/login/"
ENROL = "/admin/two-factor/"


def code(device: TOTPDevice, steps_ahead: int = 0) -> str:
    """The app's code now (or `steps_ahead` 30-second steps later: the server accepts one step of drift)."""
    device.refresh_from_db()
    value = totp(device.bin_key, device.step, device.t0, device.digits, device.drift + steps_ahead)
    return f"{value:0{device.digits}d}"


def login(client, user, otp_token: str = "", next_url: str = "/admin/"):
    return client.post(LOGIN, {"username": user.email, "password": PASSWORD, "otp_token": otp_token, "next": next_url})


def allowed_in(client) -> bool:
    response = client.get("/admin/")
    return response.status_code == 200


def errors(response) -> str:
    return " ".join(
        unescape(e) for e in re.findall(r'class="errornote">\s*(.*?)\s*</p>', response.content.decode(), re.S)
    )


@pytest.fixture
def required(settings):
    settings.STAFF_OTP_REQUIRED = True


@pytest.fixture
def unthrottled(settings):
    """django-otp refuses any code for 2^(n-1) seconds after n failures: tests that try again at
    once turn that off (test_a_wrong_code_throttles_the_device keeps it)."""
    settings.OTP_TOTP_THROTTLE_FACTOR = 0
    settings.OTP_STATIC_THROTTLE_FACTOR = 0


# --- Required (production) ------------------------------------------------------------------------
def test_required_a_staff_member_without_a_device_is_sent_to_enrolment_and_kept_out_until_enrolled(
    client, required, unthrottled, sam
):
    response = login(client, sam)
    assert response.status_code == 302 and response["Location"] == f"{ENROL}?next=%2Fadmin%2F"
    for url in ("/admin/", "/admin/dashboard/", "/admin/tickets/ticket/", "/admin/compliance/"):
        assert client.get(url)["Location"].startswith(LOGIN), url  # not into the admin ...
    assert client.get(LOGIN)["Location"] == ENROL  # ... and the login sends them back to enrolment

    page = client.get(ENROL)
    html = page.content.decode()
    assert page.status_code == 200 and "no-store" in page["Cache-Control"]
    assert "The staff site needs a second factor" in html
    (qr,) = re.findall(r'<img id="otp-qr" src="data:image/svg\+xml;base64,([^"]+)"', html)
    assert base64.b64decode(qr).lstrip().startswith(b"<?xml") and b"<svg" in base64.b64decode(qr)
    device = TOTPDevice.objects.get(user=sam)
    assert not device.confirmed and device.name == "Authenticator app"
    shown = re.search(r'<code id="otp-secret">([A-Z2-7 ]+)</code>', html)[1]
    assert base64.b32decode(shown.replace(" ", "")) == device.bin_key  # what the QR code carries, to type
    assert "issuer=SLA%20Portal" in device.config_url and "sam%40vendor.example" in device.config_url
    assert shown in client.get(ENROL).content.decode()  # the same device until it is confirmed
    assert TOTPDevice.objects.filter(user=sam).count() == 1

    wrong = client.post(ENROL, {"code": "000000" if code(device) != "000000" else "111111"})
    assert "not the app&#x27;s current one" in wrong.content.decode()
    assert not allowed_in(client)

    done = client.post(ENROL, {"code": code(device), "next": "/admin/dashboard/"})
    html = done.content.decode()
    codes = re.findall(r"<li><code>([a-z2-7]{8})</code></li>", html)
    assert len(codes) == 10 and len(set(codes)) == 10
    assert 'href="/admin/dashboard/"' in html and "no-store" in done["Cache-Control"]
    device.refresh_from_db()
    assert device.confirmed
    assert sorted(StaticToken.objects.filter(device__user=sam).values_list("token", flat=True)) == sorted(codes)
    assert allowed_in(client)  # this session was verified by the first code
    assert client.get("/admin/dashboard/").status_code == 200
    assert AuditEntry.objects.filter(action="staff_otp.enrolled", target_id=str(sam.pk)).count() == 1
    assert all(c not in str(e.after) for e in AuditEntry.objects.all() for c in codes)
    # The codes were shown once: the page now says how many are left, never which.
    status = client.get(ENROL).content.decode()
    assert "<strong>10</strong> recovery codes left" in status and codes[0] not in status


def test_required_login_with_the_apps_code_and_a_reused_code_is_refused(client, required, unthrottled, sam):
    device, _ = device_from_command(user=sam)
    assert not allowed_in(client)
    refused = login(client, sam)  # the password alone
    assert refused.status_code == 200 and "Please enter your OTP token." in errors(refused)
    assert not allowed_in(client)

    now = code(device)
    response = login(client, sam, now)
    assert response.status_code == 302 and response["Location"] == "/admin/"
    assert allowed_in(client)

    again = Client()
    reused = login(again, sam, now)
    assert reused.status_code == 200 and "Invalid token" in errors(reused)
    assert not allowed_in(again)
    # The next step's code (an app a little ahead, or 30 seconds later) is accepted: only a used one is not.
    assert login(again, sam, code(device, steps_ahead=1)).status_code == 302 and allowed_in(again)


def test_required_a_recovery_code_works_once_typed_as_people_type_it(client, required, unthrottled, sam):
    device, codes = device_from_command(user=sam)
    typed = f" {codes[0][:4].upper()}-{codes[0][4:].upper()} "
    response = login(client, sam, typed)
    assert response.status_code == 302 and allowed_in(client)
    assert not StaticToken.objects.filter(token=codes[0]).exists()
    second = Client()
    reused = login(second, sam, codes[0])
    assert reused.status_code == 200 and "Invalid token" in errors(reused) and not allowed_in(second)
    assert login(second, sam, codes[1]).status_code == 302 and allowed_in(second)
    # A wrong code is refused; the app keeps working beside the codes.
    third = Client()
    assert login(third, sam, "zzzzzzzz").status_code == 200 and not allowed_in(third)
    assert login(Client(), sam, code(device)).status_code == 302


def test_a_wrong_code_throttles_the_device(client, required, sam):
    """After a wrong code the right one is refused for a moment (1 s, doubling with each failure):
    guessing six digits online takes forever."""
    device, _ = device_from_command(user=sam)
    right = code(device)
    assert login(client, sam, "000000" if right != "000000" else "111111").status_code == 200
    refused = login(client, sam, right)
    assert refused.status_code == 200 and "Verification temporarily disabled" in errors(refused)
    device.refresh_from_db()
    assert device.throttling_failure_count == 1


def test_required_a_password_session_from_the_customer_login_does_not_open_the_admin(client, required, sam):
    device_from_command(user=sam)
    client.post("/accounts/login/", {"username": sam.email, "password": PASSWORD})
    response = client.get("/admin/")
    assert response.status_code == 302 and response["Location"].startswith(LOGIN)
    page = client.get(LOGIN).content.decode()
    assert "give your password and the code from your authenticator app" in page
    assert 'name="otp_token"' in page and 'name="otp_device"' not in page
    # ... nor may it enrol another app: an account with a device proves it first.
    assert client.get(ENROL)["Location"].startswith(LOGIN)
    assert client.post(ENROL, {"code": "123456"})["Location"].startswith(LOGIN)
    assert TOTPDevice.objects.filter(user=sam).count() == 1


def test_customers_and_anonymous_visitors_never_reach_enrolment(client, alice):
    assert client.get(ENROL)["Location"].startswith(LOGIN)
    client.force_login(alice)
    assert client.get(ENROL)["Location"].startswith(LOGIN)
    assert not TOTPDevice.objects.exists()


def test_the_second_factor_is_required_in_production():
    from .test_production_settings import PRODUCTION, manage

    result = manage(
        "shell", "-v", "0", "-c", "from django.conf import settings; print(settings.STAFF_OTP_REQUIRED)", env=PRODUCTION
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[-1] == "True"


# --- Optional (the embedded default) ---------------------------------------------------------------
def test_optional_a_staff_member_without_a_device_uses_the_password_alone(client, settings, sam):
    assert settings.STAFF_OTP_REQUIRED is False
    response = login(client, sam)
    assert response.status_code == 302 and response["Location"] == "/admin/"
    html = client.get("/admin/").content.decode()
    assert 'href="/admin/two-factor/">Two-factor</a>' in html  # enrolment is a click away
    assert "Set up two-factor sign-in" in client.get(ENROL).content.decode()


def test_optional_a_staff_member_with_a_device_must_use_it(client, settings, sam):
    device, _ = device_from_command(user=sam)
    assert login(client, sam).status_code == 200 and not allowed_in(client)
    client.force_login(sam)  # a session without the second factor
    assert not allowed_in(client)
    assert login(client, sam, code(device)).status_code == 302 and allowed_in(client)


def test_the_status_page_gives_the_apps_moments_in_the_staff_members_own_time(client, required, sam):
    sam.timezone = "Europe/Stockholm"
    sam.save(update_fields=["timezone"])
    device, _ = device_from_command(user=sam)
    login(client, sam, code(device))
    device.refresh_from_db()
    page = text_of(client.get(ENROL))
    since, used = in_tz(device.created_at, sam.timezone), in_tz(device.last_used_at, sam.timezone)
    assert f"set up since {since}; last used {used}." in page


def test_a_verified_staff_member_renews_recovery_codes_and_replaces_the_app(client, required, sam):
    device, old_codes = device_from_command(user=sam)
    login(client, sam, code(device))
    response = client.post("/admin/two-factor/recovery-codes/")
    new_codes = re.findall(r"<li><code>([a-z2-7]{8})</code></li>", response.content.decode())
    assert len(new_codes) == 10 and not set(new_codes) & set(old_codes)
    assert login(Client(), sam, old_codes[0]).status_code == 200  # the old ones no longer work
    assert AuditEntry.objects.filter(action="staff_otp.recovery_codes").count() == 1

    html = client.get(f"{ENROL}?replace=1").content.decode()
    assert "It replaces your current app once confirmed" in html
    new = TOTPDevice.objects.get(user=sam, confirmed=False)
    assert client.post(ENROL, {"code": code(new)}).status_code == 200
    assert list(TOTPDevice.objects.filter(user=sam)) == [new]  # the old app stops working
    assert allowed_in(client)


def test_the_device_admin_shows_no_key_no_qr_code_and_no_recovery_code(client, required, sam):
    device, codes = device_from_command(user=sam)
    login(client, sam, code(device))
    assert client.get(f"/admin/otp_totp/totpdevice/{device.pk}/qrcode/").status_code == 403
    assert client.get(f"/admin/otp_totp/totpdevice/{device.pk}/config/").status_code == 403
    page = client.get(f"/admin/otp_totp/totpdevice/{device.pk}/change/").content.decode()
    assert device.key not in page
    static = sam.staticdevice_set.get()
    page = client.get(f"/admin/otp_static/staticdevice/{static.pk}/change/").content.decode()
    assert not any(c in page for c in codes)


# --- The first superuser's device ----------------------------------------------------------------
def test_the_management_command_gives_a_device_prints_its_url_qr_code_and_recovery_codes(required):
    admin = StaffFactory(email="admin@vendor.example", name="Admin")
    out = io.StringIO()
    call_command("staff_otp_device", "ADMIN@vendor.example", stdout=out)
    text = out.getvalue()
    device = TOTPDevice.objects.get(user=admin)
    assert device.confirmed and device.config_url in text
    assert "█" in text or "▀" in text  # the QR code, drawn in the terminal
    codes = list(StaticToken.objects.filter(device__user=admin).values_list("token", flat=True))
    assert len(codes) == 10 and all(c in text for c in codes)
    assert AuditEntry.objects.filter(action="staff_otp.device_from_command", target_id=str(admin.pk)).exists()

    with pytest.raises(CommandError, match="already has a device"):
        call_command("staff_otp_device", admin.email, stdout=io.StringIO())
    call_command("staff_otp_device", admin.email, "--replace", "--no-qr", stdout=io.StringIO())
    assert not TOTPDevice.objects.filter(pk=device.pk).exists() and TOTPDevice.objects.filter(user=admin).count() == 1
    assert not StaticToken.objects.filter(token__in=codes).exists()

    client = Client()
    assert login(client, admin, code(TOTPDevice.objects.get(user=admin))).status_code == 302 and allowed_in(client)


def test_the_management_command_refuses_customers_and_strangers(alice):
    with pytest.raises(CommandError, match="not staff"):
        call_command("staff_otp_device", alice.email, stdout=io.StringIO())
    with pytest.raises(CommandError, match="No user"):
        call_command("staff_otp_device", "nobody@vendor.example", stdout=io.StringIO())
    assert not TOTPDevice.objects.exists()


def test_a_staff_password_alone_downloads_no_file(client, required, sam, acme_contract, alice):
    # The customers' login takes a staff member's password without asking for the code: it opens no
    # ticket's file, as it opens no staff page.
    ticket = ticket_open(user=alice, contract=acme_contract, service=acme_contract.services.get(), priority="P3",
                         subject="Restore fails", description="See the log.")  # fmt: skip
    attachment = Attachment.objects.create(
        ticket=ticket, file=ContentFile(b"error 17\n", name="job.log"), original_name="job.log",
        content_type="text/plain", size=9, uploaded_by=alice, uploaded_at=ticket.filed_at,
    )  # fmt: skip
    url = reverse("attachment-download", args=[ticket.pk, attachment.pk])
    device, _ = device_from_command(user=sam)
    assert client.post("/accounts/login/", {"username": sam.email, "password": PASSWORD}).status_code == 302
    assert not allowed_in(client) and client.get(url).status_code == 404
    assert login(client, sam, code(device)).status_code == 302 and allowed_in(client)
    assert client.get(url).status_code == 200


def test_a_staff_password_alone_reads_no_sweep_on_healthz(client, required, sam):
    device, _ = device_from_command(user=sam)
    assert client.post("/accounts/login/", {"username": sam.email, "password": PASSWORD}).status_code == 302
    assert "sweeps" not in client.get("/healthz").json()  # what anyone reads: ok or not
    assert login(client, sam, code(device)).status_code == 302
    assert "sweeps" in client.get("/healthz").json()
