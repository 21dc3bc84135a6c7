"""Proven in a real browser: a staff member's second factor with it required (as in production).

Sam signs in at /admin/ with his password alone, is sent to enrolment, sees the QR code (an SVG that
the browser draws), types the code an authenticator app would show for the key beside it, gets his
recovery codes, reaches the admin; logs out and in again with the app's next code; a recovery code
opens it once. Each step leaves a screenshot in var/screenshots/ (the enrolment page also at
/tmp/otp-enrol.png) and passes axe-core and the Content-Security-Policy."""

import base64
import shutil
import time

import pytest
from django_otp.oath import totp

from .factories import PASSWORD
from .test_browser import assert_accessible

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def app_code(secret: str, steps_ahead: int = 0) -> str:
    """What an authenticator app shows for the key typed from the page (30-second steps, 6 digits)."""
    key = base64.b32decode(secret.replace(" ", ""))
    return f"{totp(key, step=30, t0=0, digits=6, drift=steps_ahead):06d}"


def early_in_a_step(margin: float = 8.0) -> None:
    """With fewer than `margin` seconds left of the current 30-second step, wait for the next. A code typed
    at the end of its step is verified in the next, which django-otp records as the app's clock
    running a step behind (OTP_TOTP_SYNC); the app's next code is then a step too far (a failure
    seen once in a loaded run)."""
    left = 30 - time.time() % 30
    if left < margin:
        time.sleep(left + 0.1)


def sign_in(page, email: str, code: str = "") -> None:
    page.goto("/admin/login/")
    page.locator("#id_username").fill(email)
    page.locator("#id_password").fill(PASSWORD)
    page.get_by_label("Authentication code").fill(code)
    page.get_by_role("button", name="Log in").click()


@pytest.fixture
def otp_required(settings):
    settings.STAFF_OTP_REQUIRED = True


def test_a_staff_member_enrols_by_qr_code_then_signs_in_with_the_apps_code(
    logged_in_page, screenshot, otp_required, sam
):
    page = logged_in_page()
    sign_in(page, sam.email)
    page.wait_for_url("**/admin/two-factor/?next=*")
    assert "The staff site needs a second factor" in page.content()
    qr = page.locator("#otp-qr")
    assert qr.is_visible()
    assert qr.evaluate("img => img.complete && img.naturalWidth > 100")  # the SVG is drawn
    path = screenshot(page, "otp-01-enrol")
    shutil.copyfile(path, "/tmp/otp-enrol.png")
    assert_accessible(page, "otp-01-enrol")

    # Not in the admin yet: every page sends him back here.
    page.goto("/admin/dashboard/")
    page.wait_for_url("**/admin/two-factor/**")

    secret = page.locator("#otp-secret").inner_text()
    early_in_a_step()
    first = app_code(secret)
    page.get_by_label("Code from the app").fill(first)
    page.get_by_role("button", name="Confirm").click()
    # The click does not wait for the page it submits to; the codes' list does.
    page.locator("#recovery-codes").wait_for()
    codes = page.locator("#recovery-codes code").all_inner_texts()
    assert len(codes) == 10
    screenshot(page, "otp-02-recovery-codes")
    assert_accessible(page, "otp-02-recovery-codes")
    page.get_by_role("link", name="Continue to the staff site").click()
    page.wait_for_url("**/admin/dashboard/")

    # Out, and in again with the app's next code (the first one is spent).
    page.locator("#logout-form button").click()
    sign_in(page, sam.email, first)
    assert "Invalid token" in page.locator(".errornote").first.inner_text()
    page.wait_for_timeout(1200)  # a failure holds the device back for a second (django-otp's throttle)
    sign_in(page, sam.email, app_code(secret, steps_ahead=1))
    page.wait_for_url("**/admin/")
    assert page.locator("#staff-pages").is_visible()
    screenshot(page, "otp-03-admin")

    # A recovery code opens it once, in another browser context.
    other = logged_in_page()
    sign_in(other, sam.email, codes[0])
    other.wait_for_url("**/admin/")
    third = logged_in_page()
    sign_in(third, sam.email, codes[0])
    assert "Invalid token" in third.locator(".errornote").first.inner_text()
    screenshot(third, "otp-04-spent-recovery-code")
