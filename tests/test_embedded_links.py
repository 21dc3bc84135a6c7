"""Where emails, the iCal feed and security.txt link to: the server's own address in the embedded
default (scripts/run.sh sets PORTAL_BASE_URL from PORT_BIND; tests/test_run_sh.py runs it), and in
production an https:// PORTAL_BASE_URL and a MESSAGE_ID_DOMAIN that must be given, or the settings
refuse to load. Each case imports the settings in a fresh process with exactly its variables."""

from __future__ import annotations

import os
import subprocess
from datetime import UTC, datetime, timedelta

import pytest

from .conftest import ROOT
from .embedded_default import NOT_EMBEDDED, PY

PRODUCTION = {
    "DJANGO_ENV": "production",
    "SECRET_KEY": "x" * 20 + "-production-secret-for-the-settings-test-0123456789abcdef",
    "ALLOWED_HOSTS": "portal.example.com",
    "PORTAL_BASE_URL": "https://portal.example.com/",
    "MESSAGE_ID_DOMAIN": "portal.example.com",
    "EMAIL_URL": "smtp+tls://portal:secret@smtp.example.com:587",
    # required in production too (security.txt's promise), not what these tests are about
    "SECURITY_TXT_EXPIRES": (datetime.now(UTC) + timedelta(days=180)).strftime("%Y-%m-%dT00:00:00Z"),
}


def settings_in_subprocess(env: dict) -> subprocess.CompletedProcess:
    """Import the settings in a fresh process with exactly these variables (besides the basics)."""
    base = {k: v for k, v in os.environ.items() if k not in (*NOT_EMBEDDED, *PRODUCTION)}
    code = "from django.conf import settings; print(settings.PORTAL_BASE_URL, settings.MESSAGE_ID_DOMAIN)"
    return subprocess.run([PY, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={**base, "DJANGO_SETTINGS_MODULE": "portal.settings", **env})  # fmt: skip


def test_production_takes_both_addresses_from_the_environment():
    done = settings_in_subprocess(PRODUCTION)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split() == ["https://portal.example.com", "portal.example.com"]  # no trailing slash


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"PORTAL_BASE_URL": None}, "PORTAL_BASE_URL is required in production"),
        ({"PORTAL_BASE_URL": ""}, "PORTAL_BASE_URL is required in production"),
        ({"PORTAL_BASE_URL": "http://portal.example.com"}, "PORTAL_BASE_URL is required in production"),
        ({"PORTAL_BASE_URL": "https://"}, "PORTAL_BASE_URL is required in production"),
        ({"MESSAGE_ID_DOMAIN": None}, "MESSAGE_ID_DOMAIN is required in production"),
        ({"MESSAGE_ID_DOMAIN": ""}, "MESSAGE_ID_DOMAIN is required in production"),
    ],
)
def test_production_refuses_to_start_without_an_https_base_url_and_a_message_id_domain(change, says):
    env = {k: v for k, v in {**PRODUCTION, **change}.items() if v is not None}
    done = settings_in_subprocess(env)
    assert done.returncode != 0
    assert "ImproperlyConfigured" in done.stderr and says in done.stderr, done.stderr[-3000:]


def test_the_embedded_default_links_to_port_8000_unless_told():
    done = settings_in_subprocess({})
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split() == ["http://127.0.0.1:8000", "sla-portal.local"]
    done = settings_in_subprocess({"PORTAL_BASE_URL": "http://127.0.0.1:8101/"})
    assert done.stdout.split()[0] == "http://127.0.0.1:8101"
