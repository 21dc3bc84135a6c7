"""`python manage.py ingest_email` as an MTA's pipe runs it: a separate process reading one message
on standard input. Exit 0 when the message is taken, 75 (EX_TEMPFAIL) when it could not be stored
(the MTA keeps it and retries); the ticket's clock starts at our MTA's Received time, which a retry
does not move; two deliveries of one message at once are one ticket. Needs PostgreSQL (the
subprocess must see the test database)."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime

import pytest
from django.conf import settings

from tickets.models import InboundMessage, Ticket

from .conftest import ROOT
from .test_inbound import mail

RECEIVED = datetime(2026, 11, 3, 7, 0, tzinfo=UTC)


def _env(database_url: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("DJANGO_ALLOW_ASYNC_UNSAFE",)}
    return {**env, "DATABASE_URL": database_url, "DJANGO_SETTINGS_MODULE": "portal.settings", "EMAIL_URL": ""}


def _test_database_url() -> str:
    db = settings.DATABASES["default"]
    return f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


def pipe(raw: bytes, database_url: str, *, wait: bool = True):
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "ingest_email"], cwd=ROOT, env=_env(database_url),
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    if not wait:
        proc.stdin.write(raw)
        proc.stdin.close()
        return proc
    out, err = proc.communicate(raw, timeout=120)
    return proc.returncode, out.decode(), err.decode()


def test_an_unreachable_database_exits_75_so_the_mta_keeps_the_message():
    code, _, err = pipe(mail(), "postgres://nobody@127.0.0.1:1/nothing")
    assert code == 75 and "try again later" in err


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_pipe_files_once_at_the_received_time_even_after_a_retry(acme_contract, alice):
    raw = mail()
    assert pipe(raw, "postgres://nobody@127.0.0.1:1/nothing")[0] == 75  # the MTA retries later
    code, out, err = pipe(raw, _test_database_url())
    assert code == 0, err
    assert out.startswith("filed")
    ticket = Ticket.objects.get()
    assert ticket.filed_at == RECEIVED  # our MTA's Received time: not the retry's, not the Date header
    code, out, _ = pipe(raw, _test_database_url())
    assert (code, out.split()[0]) == (0, "duplicate")
    assert Ticket.objects.count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_deliveries_of_one_message_at_once_are_one_ticket(acme_contract, alice):
    raw = mail(message_id="<twice@acme.example>")
    procs = [pipe(raw, _test_database_url(), wait=False) for _ in range(3)]
    results = [(p.wait(timeout=120), p.stdout.read().decode().split()[0]) for p in procs]
    assert sorted(results) == [(0, "duplicate"), (0, "duplicate"), (0, "filed")]
    assert Ticket.objects.count() == 1 and InboundMessage.objects.count() == 1
