"""Accounts: login throttling per account and per address, password reset that reveals nothing,
API write throttles per user."""

import re
from datetime import timedelta

import pytest
import time_machine
from axes.models import AccessAttempt
from django.core import mail
from django.test import Client
from django.utils import timezone

from contracts.people.members import member_set_active
from portal.core.api_tokens import token_create
from portal.models import AuditEntry

from .factories import PASSWORD

pytestmark = pytest.mark.django_db


def login(client, email, password, ip="198.51.100.7"):
    return client.post("/accounts/login/", {"username": email, "password": password}, REMOTE_ADDR=ip)


def test_an_account_is_locked_after_five_failures_even_with_the_right_password(client, alice, caplog):
    for _ in range(4):
        assert login(client, alice.email, "wrong").status_code == 200
    assert login(client, alice.email, "wrong").status_code == 429  # the fifth failure locks
    locked = login(client, alice.email, PASSWORD, ip="198.51.100.8")  # another address: the account is locked
    assert locked.status_code == 429
    assert b"Too many failed log-in attempts" in locked.content
    assert any("locking out" in r.getMessage().lower() for r in caplog.records)  # logged


def test_an_address_is_locked_after_five_failures_on_any_accounts(client, alice, bob):
    for i in range(5):
        login(client, f"nobody{i}@acme.example", "wrong")
    assert login(client, bob.email, PASSWORD).status_code == 429  # same address
    assert login(client, bob.email, PASSWORD, ip="198.51.100.99").status_code == 302  # elsewhere: fine


def test_a_success_resets_the_count(client, alice):
    for _ in range(4):
        login(client, alice.email, "wrong")
    assert login(client, alice.email, PASSWORD).status_code == 302
    client.logout()
    for _ in range(4):
        login(client, alice.email, "wrong")
    assert login(client, alice.email, PASSWORD).status_code == 302


def test_password_reset_says_the_same_whether_or_not_the_address_exists(
    client, alice, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        known = client.post("/accounts/password_reset/", {"email": alice.email})
        unknown = client.post("/accounts/password_reset/", {"email": "nobody@acme.example"})
    assert known.status_code == unknown.status_code == 302 and known.url == unknown.url
    assert [m.to for m in mail.outbox] == [[alice.email]]  # through the outbox, to the real account only


def test_weak_passwords_are_refused(client, alice):
    client.force_login(alice)
    response = client.post("/accounts/password_change/", {
        "old_password": PASSWORD, "new_password1": "password", "new_password2": "password",
    })  # fmt: skip
    assert response.status_code == 200
    assert b"This password is too common." in response.content


def test_api_writes_are_throttled_per_user(settings, acme_contract, alice, bob):
    from rest_framework.settings import api_settings
    from rest_framework.test import APIClient

    from portal.core.throttles import WriteRateThrottle

    WriteRateThrottle.THROTTLE_RATES = {**api_settings.DEFAULT_THROTTLE_RATES, "writes": "3/minute"}
    try:
        client = APIClient()
        client.force_authenticate(alice)
        codes = [client.post("/api/v1/tickets/", {}, format="json").status_code for _ in range(4)]
        assert codes == [400, 400, 400, 429]
        assert client.get("/api/v1/tickets/").status_code == 200  # reads are not throttled
        other = APIClient()
        other.force_authenticate(bob)
        assert other.post("/api/v1/tickets/", {}, format="json").status_code == 400  # per user
    finally:
        WriteRateThrottle.THROTTLE_RATES = api_settings.DEFAULT_THROTTLE_RATES


def test_a_user_creates_and_revokes_api_tokens_shown_once_and_stored_hashed(client, alice):
    from knox.models import AuthToken
    from rest_framework.test import APIClient

    from portal.models import AuditEntry

    client.force_login(alice)
    assert client.get("/account/token/").status_code == 405
    client.post("/account/token/", {"expires": "90"})
    page = client.get("/account/").content.decode()
    (first,) = re.findall(r'id="new-token" type="text" readonly value="([^"]+)"', page)  # shown once ...
    assert first not in client.get("/account/").content.decode()  # ... and never again in full
    row = AuthToken.objects.get(user=alice)
    assert first.startswith("slap_") and row.token_key == first[:15] and first not in row.digest  # a digest
    assert f"<code>{row.token_key}…</code>" in client.get("/account/").content.decode()  # known by its prefix
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {first}")
    assert api.get("/api/v1/tickets/").status_code == 200
    client.post("/account/token/", {"expires": "never"})  # a second one, for a rotation
    second = AuthToken.objects.exclude(pk=row.pk).get(user=alice)
    assert second.expiry is None and 89 <= (row.expiry - row.created).days <= 90
    client.post("/account/token/revoke/", {"prefix": row.token_key})
    assert api.get("/api/v1/tickets/").status_code == 401
    assert list(AuthToken.objects.filter(user=alice)) == [second]
    actions = list(AuditEntry.objects.order_by("id").values_list("action", flat=True))
    assert actions == ["token.created", "token.created", "token.revoked"]
    assert all(first not in str(e.after) for e in AuditEntry.objects.all())  # the secret is never logged


def test_with_a_shared_cache_a_page_reads_its_session_from_it_and_logout_ends_it(settings, client, alice):
    """settings: with Redis, sessions are cached_db: read from the cache (no query), written
    through to the database, and a logout deletes both."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    settings.SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"
    client.post("/accounts/login/", {"username": alice.email, "password": PASSWORD})
    with CaptureQueriesContext(connection) as queries:
        assert client.get("/account/").status_code == 200
    assert not [q for q in queries.captured_queries if "django_session" in q["sql"]]
    client.post("/accounts/logout/")
    assert client.get("/account/").status_code == 302  # the session is gone from the cache too


def test_the_account_lock_holds_for_every_spelling_of_the_address(client, bob):
    """Five failures for bob@acme.example from five addresses; BOB@ACME.EXAMPLE with the right
    password logged in (the lock was kept per spelling), and that success cleared the lock."""
    for i in range(5):
        assert login(client, "bob@acme.example", "wrong", ip=f"203.0.113.{i + 1}").status_code in (200, 429)
    for spelling in ("BOB@ACME.EXAMPLE", "Bob@Acme.Example", " bob@acme.example "):
        assert login(client, spelling, PASSWORD, ip="203.0.113.50").status_code == 429, spelling
    # None of those cleared the lock: the stored spelling is still refused, from yet another address.
    assert login(client, bob.email, PASSWORD, ip="203.0.113.51").status_code == 429
    bob.refresh_from_db()
    assert bob.last_login is None


def test_failures_under_several_spellings_add_up_to_one_lock(client, bob):
    for i, spelling in enumerate(["bob@acme.example", "BOB@acme.example", "bob@ACME.example", "Bob@Acme.Example"]):
        assert login(client, spelling, "wrong", ip=f"203.0.113.{i + 1}").status_code == 200
    assert login(client, "BOB@ACME.EXAMPLE", "wrong", ip="203.0.113.9").status_code == 429  # the fifth locks
    assert login(client, bob.email, PASSWORD, ip="203.0.113.10").status_code == 429


def test_a_success_under_another_spelling_resets_the_accounts_failures(client, bob):
    for i in range(4):
        assert login(client, "bob@acme.example", "wrong", ip=f"203.0.113.{i + 1}").status_code == 200
    assert login(client, "BOB@ACME.EXAMPLE", PASSWORD, ip="203.0.113.20").status_code == 302  # 4 < 5: not locked
    client.logout()
    for i in range(4):  # the count started again: four more failures do not lock
        assert login(client, "Bob@Acme.Example", "wrong", ip=f"203.0.113.{i + 30}").status_code == 200
    assert login(client, "bob@acme.example", PASSWORD, ip="203.0.113.40").status_code == 302


def test_the_reset_link_is_on_the_portals_own_address_whatever_host_the_request_named(
    client, settings, alice, django_capture_on_commit_callbacks
):
    settings.PORTAL_BASE_URL = "https://portal.example"
    settings.ALLOWED_HOSTS = ["portal.example", "other.example"]
    with django_capture_on_commit_callbacks(execute=True):
        client.post("/accounts/password_reset/", {"email": alice.email}, HTTP_HOST="other.example")
    (sent,) = mail.outbox
    links = [word for word in sent.body.split() if "/accounts/reset/" in word]
    assert links and all(link.startswith("https://portal.example/accounts/reset/") for link in links)


def test_the_reset_form_cannot_flood_a_mailbox(client, alice):
    """Anyone may type Alice's address: at most one reset email in ten minutes and three a day go to
    her account, and the page says the same every time (it tells nobody whether an email went)."""
    from datetime import UTC, datetime, timedelta

    import time_machine

    from portal.models import OutboxMessage

    def resets_after(at, times=1):
        with time_machine.travel(at, tick=False):
            for i in range(times):
                answer = client.post("/accounts/password_reset/", {"email": "alice@acme.example"})
                assert answer.status_code == 302 and answer["Location"] == "/accounts/password_reset/done/", i
        return OutboxMessage.objects.filter(template="password_reset", to=alice.email).count()

    start = datetime(2026, 12, 11, 9, 0, tzinfo=UTC)
    assert resets_after(start, times=20) == 1
    assert resets_after(start + timedelta(minutes=9)) == 1
    assert resets_after(start + timedelta(minutes=11)) == 2
    assert resets_after(start + timedelta(minutes=22)) == 3
    assert resets_after(start + timedelta(hours=5)) == 3
    assert resets_after(start + timedelta(days=1, minutes=1)) == 4


# --- Behind the production's TLS proxy: the client's address is the proxy's X-Forwarded-For ------
PROXY = "10.0.0.2"


def login_via_proxy(email, password, client_address):
    return Client().post(
        "/accounts/login/", {"username": email, "password": password},
        REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR=client_address,
    )  # fmt: skip


def test_behind_the_proxy_strangers_failures_do_not_lock_everyone_out(settings, alice):
    settings.TRUSTED_PROXIES = 1
    for i in range(5):  # five people elsewhere mistype (the proxy is everyone's REMOTE_ADDR)
        login_via_proxy(f"nobody{i}@example.org", "wrong", f"203.0.113.{i + 1}")
    assert login_via_proxy(alice.email, PASSWORD, "198.51.100.50").status_code == 302


def test_behind_the_proxy_five_failures_from_one_client_lock_that_client(settings, alice, bob):
    settings.TRUSTED_PROXIES = 1
    for i in range(5):  # a forged left-hand entry is not believed: the proxy's own entry counts
        login_via_proxy(f"nobody{i}@example.org", "wrong", f"192.0.2.{i + 1}, 203.0.113.9")
    assert login_via_proxy(bob.email, PASSWORD, "203.0.113.9").status_code == 429
    assert login_via_proxy(alice.email, PASSWORD, "198.51.100.50").status_code == 302  # others are not
    assert set(AccessAttempt.objects.values_list("ip_address", flat=True)) == {"203.0.113.9"}


def test_the_audit_log_records_the_client_behind_the_proxy(settings, client, alice, bob):
    settings.TRUSTED_PROXIES = 1
    client.force_login(alice)
    client.post(f"/people/{bob.pk}/role/", {"role": "admin"}, REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR="198.51.100.50")
    assert AuditEntry.objects.get(action="people.role_changed").ip == "198.51.100.50"


def test_without_a_proxy_the_header_is_not_believed(settings, alice):
    settings.TRUSTED_PROXIES = 0
    for i in range(5):
        login_via_proxy(f"nobody{i}@example.org", "wrong", f"203.0.113.{i + 1}")
    assert login_via_proxy(alice.email, PASSWORD, "198.51.100.50").status_code == 429  # all from 10.0.0.2


def test_a_password_like_the_persons_name_is_refused(client, alice):
    client.force_login(alice)
    response = client.post("/accounts/password_change/", {
        "old_password": PASSWORD, "new_password1": alice.name, "new_password2": alice.name,
    })  # fmt: skip
    assert response.status_code == 200
    assert b"too similar to the name" in response.content


# --- A reset link and API tokens --------------------------------------------------------------
GOOD = "kingfisher-lantern-42"


def reset_path(client, email, capture) -> str:
    mail.outbox.clear()
    with capture(execute=True):
        client.post("/accounts/password_reset/", {"email": email})
    [sent] = [m for m in mail.outbox if m.to == [email]]
    return re.search(r"https?://[^/\s]+(/accounts/reset/\S+/)", sent.body)[1]


def use_reset(path, password):
    client = Client()
    page = client.get(path, follow=True)
    form_url = page.redirect_chain[-1][0] if page.redirect_chain else path
    return page, client.post(form_url, {"new_password1": password, "new_password2": password}, follow=True)


def test_a_completed_password_reset_revokes_the_persons_api_tokens(client, bob, django_capture_on_commit_callbacks):
    _, secret = token_create(user=bob, ttl=None)
    api = Client(headers={"Authorization": f"Token {secret}"})
    assert api.get("/api/v1/tickets/").status_code == 200
    _, done = use_reset(reset_path(client, bob.email, django_capture_on_commit_callbacks), GOOD)
    assert done.status_code == 200 and b"API tokens (1) are revoked" in done.content
    assert api.get("/api/v1/tickets/").status_code == 401
    entry = AuditEntry.objects.get(action="token.revoked")
    assert entry.actor == bob and entry.after == {"prefix": secret[:15], "by_staff": False, "reason": "password reset"}


def test_a_reset_link_mailed_before_deactivation_no_longer_works(
    client, alice, bob, django_capture_on_commit_callbacks
):
    path = reset_path(client, bob.email, django_capture_on_commit_callbacks)
    member_set_active(member=bob, active=False, actor=alice)
    page, done = use_reset(path, GOOD)
    assert b"This link has been used or has expired" in page.content
    bob.refresh_from_db()
    assert not bob.check_password(GOOD)
    member_set_active(member=bob, active=True, actor=alice)  # back: a new link works
    with time_machine.travel(timezone.now() + timedelta(minutes=11)):  # past the limit of one reset in 10 min
        use_reset(reset_path(client, bob.email, django_capture_on_commit_callbacks), GOOD)
    bob.refresh_from_db()
    assert bob.check_password(GOOD)


def change_password(client, **extra):
    data = {"old_password": PASSWORD, "new_password1": GOOD, "new_password2": GOOD, **extra}
    return client.post("/accounts/password_change/", data)


def test_a_password_change_revokes_the_api_tokens_when_asked(client, bob):
    _, secret = token_create(user=bob, ttl=None)
    client.force_login(bob)
    assert b"Also revoke my API tokens" in client.get("/accounts/password_change/").content
    assert change_password(client).status_code == 302
    assert Client(headers={"Authorization": f"Token {secret}"}).get("/api/v1/tickets/").status_code == 200  # kept
    bob.set_password(PASSWORD)
    bob.save()
    client.force_login(bob)
    assert change_password(client, revoke_tokens="on").status_code == 302
    assert Client(headers={"Authorization": f"Token {secret}"}).get("/api/v1/tickets/").status_code == 401
    assert AuditEntry.objects.get(action="token.revoked").after["reason"] == "password changed"


def test_the_offer_to_revoke_tokens_is_not_made_to_someone_without_any(client, bob):
    client.force_login(bob)
    assert b"Also revoke my API tokens" not in client.get("/accounts/password_change/").content
