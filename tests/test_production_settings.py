"""The production profile: secrets from the environment with no default, Django's deploy checks
clean, security headers on every page, hashed static files served by whitenoise."""

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PRODUCTION = {
    "DJANGO_ENV": "production",
    "SECRET_KEY": "x" * 20 + "-production-secret-for-the-deploy-check-0123456789abcdef",
    "ALLOWED_HOSTS": "portal.example.com",
    "SECURITY_TXT_EXPIRES": f"{datetime.now(UTC) + timedelta(days=180):%Y-%m-%dT%H:%M:%SZ}",
    "PORTAL_BASE_URL": "https://portal.example.com",
    "MESSAGE_ID_DOMAIN": "portal.example.com",
    "EMAIL_URL": "smtp+tls://portal:secret@smtp.example.com:587",
}


def manage(*args, env=None, tmp_path=None):
    base = {k: v for k, v in os.environ.items() if k not in PRODUCTION}
    if tmp_path is not None:
        base["STATIC_ROOT"] = str(tmp_path / "static")
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**base, **(env or {})},
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_check_deploy_reports_nothing_in_production():
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=PRODUCTION)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


@pytest.mark.parametrize(
    "missing",
    ["SECRET_KEY", "ALLOWED_HOSTS", "SECURITY_TXT_EXPIRES", "PORTAL_BASE_URL", "MESSAGE_ID_DOMAIN", "EMAIL_URL"],
)
def test_production_secrets_have_no_default(missing):
    env = {k: v for k, v in PRODUCTION.items() if k != missing}
    result = manage("check", env=env)
    assert result.returncode != 0
    assert missing in result.stderr


def test_production_refuses_to_start_without_a_mail_server():
    """The embedded default's files under var/mail/ in production: every email marked sent, none
    delivered. The portal refuses to start instead, and says what to set."""
    result = manage("check", env={**PRODUCTION, "EMAIL_URL": ""})
    assert result.returncode != 0
    assert "ImproperlyConfigured: EMAIL_URL is required in production" in result.stderr


def test_an_expired_security_txt_is_an_error_of_the_checks_in_production():
    result = manage("check", env={**PRODUCTION, "SECURITY_TXT_EXPIRES": "2020-01-01T00:00:00Z"})
    assert result.returncode != 0
    assert "portal.E002" in result.stderr and "security.txt expired at 2020-01-01T00:00:00Z" in result.stderr


def test_production_refuses_to_exempt_any_webhook_host_from_the_address_check():
    result = manage("check", env={**PRODUCTION, "WEBHOOK_ALLOWED_HOSTS": "localhost"})
    assert result.returncode != 0
    assert "WEBHOOK_ALLOWED_HOSTS is for tests and development" in result.stderr


def test_static_files_are_hashed_and_compressed_in_production(tmp_path):
    # Without the API docs' 9 MB of bundled JavaScript, which the same storage hashes and compresses
    # as it does ours: compressing it was three quarters of this test's time.
    result = manage("collectstatic", "--noinput", "-i", "drf_spectacular_sidecar", env=PRODUCTION, tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    names = {p.name for p in (tmp_path / "static" / "css").iterdir()}
    assert any(n.startswith("portal.") and n.endswith(".css") and n != "portal.css" for n in names)  # hashed
    assert any(n.endswith(".css.gz") for n in names)  # compressed
    assert (tmp_path / "static" / "staticfiles.json").exists()


@pytest.mark.django_db
def test_every_page_carries_the_security_headers(client):
    response = client.get("/accounts/login/")
    csp = response["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert response["X-Frame-Options"] == "DENY"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["X-Content-Type-Options"] == "nosniff"


@pytest.mark.django_db
def test_no_page_template_has_an_inline_script_or_loads_from_another_host():
    import re

    offenders = []
    for path in (ROOT / "templates").rglob("*.html"):
        if "email" in path.parts:
            continue  # emails are not pages
        text = path.read_text()
        if re.search(r"<script(?![^>]*\bsrc=)[^>]*>", text) or re.search(r"""(?:src|href)=["']https?://""", text):
            offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []


@pytest.mark.postgres
@pytest.mark.django_db
def test_on_postgresql_a_repeated_statement_is_prepared_once_per_connection():
    """Server-side binding with psycopg's prepare threshold: the ticket page's queries are planned
    once per connection instead of on every request (bench/RESULTS.md)."""
    from django.db import connection

    from tickets.models import Ticket

    def prepared() -> list[str]:
        with connection.cursor() as cursor:
            cursor.execute("SELECT statement FROM pg_prepared_statements")
            return [row[0] for row in cursor.fetchall()]

    for pk in range(1, 8):  # the same statement with other parameters
        list(Ticket.objects.filter(pk=pk).select_related("contract"))
    assert [s for s in prepared() if 'FROM "tickets_ticket"' in s and "$1" in s]


def test_prepared_statements_can_be_turned_off_for_a_pooler():
    code = "from django.conf import settings; print(settings.DATABASES['default'].get('OPTIONS'))"
    url = {"DATABASE_URL": "postgres://postgres@127.0.0.1:5432/sla_portal"}
    on = manage("shell", "-c", code, env=url)
    off = manage("shell", "-c", code, env={**url, "DB_PREPARED_STATEMENTS": "false"})
    assert "'server_side_binding': True, 'prepare_threshold': 5" in on.stdout, on.stderr
    assert "server_side_binding" not in off.stdout and "prepare_threshold" not in off.stdout, off.stderr


@pytest.mark.parametrize(
    "key", ["dev-only-insecure-key-do-not-use-in-production", "x", "django-insecure-" + "a1b2c3d4e5" * 5, "ab" * 40]
)
def test_production_refuses_a_known_or_guessable_secret_key(key):
    result = manage("check", env={**PRODUCTION, "SECRET_KEY": key})
    assert result.returncode != 0
    assert "SECRET_KEY must be a secret of at least 50 characters of your own" in result.stderr


def test_production_refuses_an_empty_allowed_hosts():
    result = manage("check", env={**PRODUCTION, "ALLOWED_HOSTS": ""})
    assert result.returncode != 0
    assert "ALLOWED_HOSTS names the portal's host names" in result.stderr


def test_production_reads_the_client_behind_one_proxy_by_default():
    code = (
        "from django.conf import settings; print('proxies', settings.TRUSTED_PROXIES, settings.AXES_CLIENT_IP_CALLABLE)"
    )
    production = manage("shell", "-c", code, env=PRODUCTION).stdout
    assert "proxies 1 portal.core.client_ip.client_ip" in production
    assert "proxies 2 " in manage("shell", "-c", code, env={**PRODUCTION, "TRUSTED_PROXIES": "2"}).stdout
    assert "proxies 0 " in manage("shell", "-c", code).stdout  # the embedded default: no proxy


def test_a_plain_http_health_probe_is_answered_not_redirected():
    code = (
        "from django.test import Client; c = Client(); "
        "print('health', c.get('/healthz', HTTP_HOST='portal.example.com').status_code, "
        "'page', c.get('/accounts/login/', HTTP_HOST='portal.example.com').status_code)"
    )
    out = manage("shell", "-c", code, env=PRODUCTION).stdout
    assert "page 301" in out and "health 301" not in out, out
