"""API tokens (django-rest-knox): stored as a digest, shown once, recognised by their prefix, with an
optional expiry; staff hold none and their tokens are refused; staff list and revoke customers'
tokens in the admin without reading or minting one; DRF's old tokens keep working once hashed by
the migration, except staff's, which it deletes."""

import importlib
import re
from datetime import timedelta
from types import SimpleNamespace

import pytest
import time_machine
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone
from knox.models import AuthToken
from rest_framework.test import APIClient

from portal.core.api_tokens import TokenRefused, token_create
from portal.models import AuditEntry

from .test_staff_access import change_url, form_data

pytestmark = pytest.mark.django_db

TICKETS = "/api/v1/tickets/"
ADMIN_TOKENS = "/admin/portal/apitoken/"


def api(secret: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {secret}")
    return client


def test_a_new_token_has_the_prefix_the_default_expiry_and_only_its_digest_stored(settings, alice):
    token, secret = token_create(user=alice, ttl=timedelta(days=settings.API_TOKEN_TTL_DAYS))
    assert settings.API_TOKEN_TTL_DAYS == 90
    assert re.fullmatch(r"slap_[0-9a-f]{64}", secret)
    assert token.token_key == secret[:15] and secret not in token.digest and len(token.digest) == 128
    assert timedelta(days=89, hours=23) < token.expiry - timezone.now() <= timedelta(days=90)
    assert api(secret).get(TICKETS).status_code == 200
    assert api(secret[:-1] + ("0" if secret[-1] != "0" else "1")).get(TICKETS).status_code == 401


def test_an_expired_token_is_refused_and_deleted(alice):
    token, secret = token_create(user=alice, ttl=timedelta(days=1))
    AuthToken.objects.filter(pk=token.pk).update(expiry=timezone.now() - timedelta(seconds=1))
    response = api(secret).get(TICKETS)
    assert response.status_code == 401 and response["WWW-Authenticate"] == "Token"
    assert not AuthToken.objects.filter(pk=token.pk).exists()


def test_the_account_page_offers_expiry_choices_and_caps_the_number_of_tokens(client, settings, alice):
    client.force_login(alice)
    html = client.get("/account/").content.decode()
    assert '<option value="90" selected>in 90 days (default)</option>' in html
    assert '<option value="never">never</option>' in html
    for _ in range(settings.API_TOKENS_PER_USER):
        client.post("/account/token/", {"expires": "30"})
    assert AuthToken.objects.filter(user=alice).count() == settings.API_TOKENS_PER_USER
    assert "revoke one to make another" in client.get("/account/").content.decode()
    response = client.post("/account/token/", {"expires": "30"}, follow=True)
    assert "revoke one before you create another" in response.content.decode()
    assert AuthToken.objects.filter(user=alice).count() == settings.API_TOKENS_PER_USER
    client.post("/account/token/", {"expires": "forever"})  # not a choice
    assert AuthToken.objects.filter(user=alice).count() == settings.API_TOKENS_PER_USER


def test_a_user_revokes_only_their_own_tokens(client, alice, bob):
    bobs, bobs_secret = token_create(user=bob, ttl=None)
    client.force_login(alice)
    client.post("/account/token/revoke/", {"prefix": bobs.token_key})
    assert api(bobs_secret).get(TICKETS).status_code == 200
    assert not AuditEntry.objects.filter(action="token.revoked").exists()


# --- Staff hold no API tokens ------------------------------------------------------------------------
def test_staff_cannot_make_a_token(client, sam):
    with pytest.raises(TokenRefused):
        token_create(user=sam, ttl=None)
    client.force_login(sam)
    assert "Staff accounts hold no API tokens" in client.get("/account/").content.decode()
    response = client.post("/account/token/", {"expires": "90"}, follow=True)
    assert "Staff accounts cannot hold API tokens" in response.content.decode()
    assert not AuthToken.objects.filter(user=sam).exists()


def test_the_api_refuses_a_staff_members_token(sam):
    _, secret = AuthToken.objects.create(user=sam, expiry=None)  # written by hand, or a customer made staff
    response = api(secret).get(TICKETS)
    assert response.status_code == 401 and response.json() == {"detail": "Staff accounts cannot use API tokens."}


# --- The staff admin (security staff: the API tokens' permissions) ----------------------------------
def test_staff_find_and_revoke_a_customers_token_by_prefix_but_never_read_or_mint_one(client, sol, alice, bob):
    token, secret = token_create(user=alice, ttl=None)
    other, _ = token_create(user=bob, ttl=timedelta(days=30))
    client.force_login(sol)
    listing = client.get(ADMIN_TOKENS, {"q": token.token_key[:9]}).content.decode()
    assert f"{token.token_key}…" in listing and other.token_key not in listing
    assert alice.email in listing and "Acme Savings" in listing
    assert secret not in listing
    # The digest is the row's key (in the links): it is no credential, and no way back to the secret.
    assert api(token.digest).get(TICKETS).status_code == 401
    view = client.get(f"{ADMIN_TOKENS}{token.pk}/change/")
    assert view.status_code == 200
    page = view.content.decode()
    assert secret not in page and 'type="submit" value="Save"' not in page
    assert client.get(f"{ADMIN_TOKENS}add/").status_code == 403
    # knox's own admin (digests, and an add form that mints a token) and DRF's (every key in clear) are gone.
    assert client.get("/admin/knox/authtoken/").status_code == 404
    assert client.get("/admin/authtoken/tokenproxy/").status_code == 404

    client.post(ADMIN_TOKENS, {"action": "delete_selected", "_selected_action": [token.pk, other.pk], "post": "yes"})
    assert not AuthToken.objects.filter(user__in=[alice, bob]).exists()
    assert api(secret).get(TICKETS).status_code == 401
    entries = AuditEntry.objects.filter(action="token.revoked")
    assert sorted(((e.actor_id, e.target_id, e.after) for e in entries), key=lambda e: int(e[1])) == [
        (sol.pk, str(alice.pk), {"prefix": token.token_key, "by_staff": True}),
        (sol.pk, str(bob.pk), {"prefix": other.token_key, "by_staff": True}),
    ]


def test_staff_revoke_one_token_from_its_page(client, sol, alice):
    token, _ = token_create(user=alice, ttl=None)
    client.force_login(sol)
    client.post(f"{ADMIN_TOKENS}{token.pk}/delete/", {"post": "yes"})
    assert not AuthToken.objects.exists()
    assert AuditEntry.objects.get(action="token.revoked").actor == sol


def test_the_schema_names_the_token_scheme(client):
    schema = client.get("/api/schema/", {"format": "json"}).json()
    scheme = schema["components"]["securitySchemes"]["tokenAuth"]
    assert scheme["type"] == "apiKey" and scheme["in"] == "header" and scheme["name"] == "Authorization"
    assert "Token <token>" in scheme["description"] and "slap_" in scheme["description"]
    assert {"tokenAuth": []} in schema["paths"][TICKETS]["get"]["security"]


# --- The migration from DRF's authtoken -------------------------------------------------------------
def test_the_migration_hashes_customers_drf_tokens_in_place_and_deletes_staffs(alice, sam):
    migration = importlib.import_module("portal.migrations.0005_api_tokens")
    alices_key, sams_key = "9944b09199c62bcf9418ad846dd0e4bbdfc6ee4b", "0123456789abcdef0123456789abcdef01234567"
    created = timezone.now() - timedelta(days=400)
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TABLE authtoken_token (key varchar(40) PRIMARY KEY, created timestamp with time zone, user_id bigint)"
            if connection.vendor == "postgresql"
            else "CREATE TABLE authtoken_token (key varchar(40) PRIMARY KEY, created datetime, user_id bigint)"
        )
        for key, user in ((alices_key, alice), (sams_key, sam)):
            cursor.execute(
                "INSERT INTO authtoken_token (key, created, user_id) VALUES (%s, %s, %s)", [key, created, user.pk]
            )

    def execute(sql, params=()):
        with connection.cursor() as cursor:
            cursor.execute(sql, params)

    state = MigrationExecutor(connection).loader.project_state(("portal", "0005_api_tokens"))
    migration.hash_drf_tokens(state.apps, SimpleNamespace(connection=connection, execute=execute))

    assert "authtoken_token" not in connection.introspection.table_names()
    (token,) = AuthToken.objects.all()
    assert (token.user, token.token_key, token.expiry) == (alice, alices_key[:15], None)
    assert abs(token.created - created) < timedelta(seconds=1)
    assert api(alices_key).get(TICKETS).status_code == 200  # the same secret keeps working
    assert api(sams_key).get(TICKETS).status_code == 401
    actions = dict(AuditEntry.objects.values_list("target_id", "action"))
    assert actions == {str(alice.pk): "token.hashed", str(sam.pk): "token.revoked"}
    assert alices_key not in str(list(AuditEntry.objects.values_list("after", flat=True)))


def test_a_person_moved_to_another_organisation_keeps_no_token(
    client, ada, bob, charlie, acme_contract, globex_contract
):
    _, secret = token_create(user=bob, ttl=None)  # in Acme's monitoring integration
    _, kept = token_create(user=charlie, ttl=None)  # someone else's, untouched
    assert {c["reference"] for c in api(secret).get("/api/v1/contracts/").json()["results"]} == {"KAL-0001"}
    client.force_login(ada)
    data = {**form_data(client, bob), "organisation": charlie.organisation_id}
    assert client.post(change_url(bob), data).status_code == 302  # the vendor moves Bob to Globex
    assert api(secret).get("/api/v1/contracts/").status_code == 401
    assert api(kept).get("/api/v1/contracts/").status_code == 200
    entry = AuditEntry.objects.get(action="token.revoked")
    assert entry.actor == ada and entry.target_id == str(bob.pk)
    assert entry.after == {"prefix": secret[:15], "by_staff": True, "reason": "moved to another organisation"}


def test_a_change_that_keeps_the_organisation_keeps_the_tokens(client, ada, bob):
    _, secret = token_create(user=bob, ttl=None)
    client.force_login(ada)
    assert client.post(change_url(bob), {**form_data(client, bob), "phone": "+254 700 000 001"}).status_code == 302
    assert api(secret).get(TICKETS).status_code == 200


def test_expired_tokens_do_not_count_toward_the_five_a_customer_may_hold(client, settings, alice):
    """An integrator who let five 90-day tokens expire makes a new one: only tokens that still work
    count (the daily housekeeping removes the expired ones; until it runs they are shown as expired)."""
    for _ in range(settings.API_TOKENS_PER_USER):
        token_create(user=alice, ttl=timedelta(days=90))
    with pytest.raises(TokenRefused):
        token_create(user=alice, ttl=timedelta(days=90))
    with time_machine.travel(timezone.now() + timedelta(days=91)):
        token, secret = token_create(user=alice, ttl=timedelta(days=90))
        assert api(secret).get(TICKETS).status_code == 200
        client.force_login(alice)
        assert "Create a token" in client.get("/account/").content.decode()  # the page offers it too
        assert client.post("/account/token/", {"expires": "30"}).status_code in (200, 302)
        live = AuthToken.objects.filter(user=alice, expiry__gt=timezone.now())
        assert live.count() == 2 and AuthToken.objects.filter(user=alice).count() == 7
