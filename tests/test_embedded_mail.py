"""The embedded default's email backend (portal/core/mail.py): one .eml file per message under
var/mail/, read back here with the standard library's email package, and one console line each."""

from __future__ import annotations

import email
import email.policy
import re
from datetime import UTC, datetime
from pathlib import Path
from unittest import mock

import pytest
from django.core.mail import EmailMessage


@pytest.fixture
def file_backend(settings, tmp_path):
    settings.EMAIL_BACKEND = "portal.core.mail.FileAndConsoleBackend"
    settings.EMAIL_FILE_PATH = str(tmp_path / "mail")
    return tmp_path / "mail"


def parse(path: Path):
    return email.message_from_bytes(path.read_bytes(), policy=email.policy.default)


def test_each_email_is_its_own_eml_file_that_a_mail_client_reads(file_backend, capsys):
    first = EmailMessage(
        "Your ticket #7: backups fail", "Hello Alice", "SLA Portal <sla-portal@vendor.example>",
        ["alice@acme.example"], headers={"Message-ID": "<first@sla-portal.local>", "Auto-Submitted": "auto-generated"},
    )  # fmt: skip
    second = EmailMessage("Réunion: fenêtre de maintenance", "Bonjour Bob, ça va ?", to=["bob@acme.example"])
    assert first.send() == 1
    assert second.send() == 1

    files = sorted(file_backend.glob("*.eml"))
    assert len(files) == 2
    assert sorted(file_backend.iterdir()) == files  # and no temporary file left behind
    a, b = (parse(f) for f in files)  # sorted by name = in the order sent
    assert (a["To"], a["Subject"], a["Message-ID"], a["Auto-Submitted"]) == (
        "alice@acme.example", "Your ticket #7: backups fail", "<first@sla-portal.local>", "auto-generated"
    )  # fmt: skip
    assert a.get_content().strip() == "Hello Alice"
    assert files[0].name.endswith("-first.eml") and re.match(r"\d{8}-\d{6}-\d{6}-", files[0].name)
    assert (b["To"], b["Subject"]) == ("bob@acme.example", "Réunion: fenêtre de maintenance")
    assert b["Message-ID"] and b.get_content().strip() == "Bonjour Bob, ça va ?"

    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2  # one console line per message, saying where it is
    assert "alice@acme.example" in lines[0] and "Your ticket #7" in lines[0] and str(files[0].name) in lines[0]
    assert "bob@acme.example" in lines[1] and str(files[1].name) in lines[1]


def test_the_same_message_sent_twice_makes_two_files(file_backend):
    """An outbox row sent again (its sender died after sending) keeps its Message-ID: a second
    file, never an overwritten first one."""
    message = EmailMessage("Again", "body", to=["alice@acme.example"], headers={"Message-ID": "<same@x>"})
    from portal.core.mail import FileAndConsoleBackend

    backend = FileAndConsoleBackend()
    frozen = "portal.core.mail.datetime"
    with mock.patch(frozen) as clock:  # the same microsecond twice: the name must still differ
        clock.now.return_value = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)
        assert backend.send_messages([message, message]) == 2
    names = sorted(p.name for p in file_backend.glob("*.eml"))
    assert names == ["20261206-090000-000000-same-1.eml", "20261206-090000-000000-same.eml"]


@pytest.mark.django_db
def test_a_vulnerability_reports_emails_are_eml_files_with_their_outbox_message_ids(file_backend, settings):
    """The product's own path: a report writes two outbox rows; the sweep sends them as files."""
    from portal.core.tasks import outbox_sweep
    from portal.models import OutboxMessage
    from tickets.security import security_report_submit

    settings.PORTAL_BASE_URL = "http://127.0.0.1:8101"
    security_report_submit(email="reporter@example.com", name="Rita", summary="XSS in search", details="Steps.")
    assert outbox_sweep.run() == 2  # the beat's sweep, run here
    rows = {row.to: row for row in OutboxMessage.objects.all()}
    files = sorted(file_backend.glob("*.eml"))
    assert len(files) == len(rows) == 2
    for path in files:
        msg = parse(path)
        row = rows[msg["To"]]
        assert (msg["Message-ID"], msg["Subject"]) == (row.message_id, row.subject)
        assert path.name.endswith(f"-{row.message_id.strip('<>').split('@')[0]}.eml")
        assert "http://127.0.0.1:8101" in path.read_text()  # the HTML part links back, at least
