"""Drill: the embedded default under load. The web server of `make run` (runserver, threaded) on a
file SQLite database of its own, beside a real Celery worker (prefork, 2 children) and beat (the
product's schedule compressed 20x: every sweep every 3 s) on kombu's filesystem broker; eight HTTP
clients at once for a minute (DRILL_SQLITE_SECONDS): four submit the public vulnerability form,
two customers and two staff log in, read their pages and log out. Every request must answer below
500, no log may say "database is locked", every report must be a ticket with its two emails as
.eml files linking to the server's port, and the sweeps must have kept running.

Before the IMMEDIATE transactions and WAL of portal/settings.py, about half of the concurrent
submissions were a 500 (OperationalError: database is locked) and the sweeps retried on it.
Needs no server of its own; runs in `make drill` (drill_long), about 80 s.
"""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest

from tests.embedded_default import forget_queue

from .conftest import PY, ROOT, Beat, Worker, free_port, wait_until

pytestmark = [pytest.mark.drill, pytest.mark.drill_long]
SECONDS = float(os.environ.get("DRILL_SQLITE_SECONDS", "60"))
PASSWORD = "sla-demo-2026"  # seed_demo's


def embedded_env(base: Path, port: int, queue: str) -> dict:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "REDIS_URL", "EMAIL_URL", "DJANGO_ENV", "PORTAL_BASE_URL")
        and not k.startswith("CELERY_")
    }
    env.update(
        DJANGO_SETTINGS_MODULE="portal.settings", PYTHONUNBUFFERED="1", TZ="UTC",
        DATABASE_URL=f"sqlite:///{base / 'db.sqlite3'}", EMAIL_FILE_PATH=str(base / "mail"),
        MEDIA_ROOT=str(base / "media"), CELERY_QUEUE=queue, PORTAL_BASE_URL=f"http://127.0.0.1:{port}",
        # The reporters come from many addresses (X-Forwarded-For), as the public do: the form's limit
        # per submitter (tickets.security.PER_SOURCE) would otherwise answer most of them 429.
        TRUSTED_PROXIES="1",
    )  # fmt: skip
    return env


class Web:
    def __init__(self, env: dict, log: Path, port: int):
        self.env, self.log, self.port = env, log, port
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [PY, "manage.py", "runserver", "--noreload", f"127.0.0.1:{self.port}"], cwd=ROOT, env=self.env,
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


class Clients:
    """Eight threads, each a browser of its own (requests.Session), counting every status."""

    def __init__(self, base: str):
        self.base = base
        self.statuses: Counter = Counter()
        self.failures: list[str] = []
        self.reports = 0
        self.lock = threading.Lock()
        self.stop_at = 0.0

    def _record(self, what: str, response) -> None:
        with self.lock:
            self.statuses[response.status_code] += 1
            if response.status_code >= 500:
                title = re.search(r"<title>\s*(.*?)\s*</title>", response.text, re.S)  # Django's debug page
                said = " ".join(title.group(1).split()) if title else response.text[:300]
                self.failures.append(f"{what}: {response.status_code} {said}")

    def _token(self, session, path: str) -> str:
        response = session.get(self.base + path, timeout=60)
        self._record(f"GET {path}", response)
        match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', response.text)
        return match.group(1) if match else ""

    def reporter(self, n: int) -> None:
        import requests

        i = 0
        while time.monotonic() < self.stop_at:
            with requests.Session() as s:
                token = self._token(s, "/security/report/")
                r = s.post(f"{self.base}/security/report/", timeout=60, allow_redirects=False, data={
                    "csrfmiddlewaretoken": token, "email": f"reporter{n}-{i}@example.com",
                    "summary": f"XSS {n}-{i}", "details": "Steps to reproduce.",
                }, headers={"Referer": f"{self.base}/security/report/",
                            "X-Forwarded-For": f"10.{n}.{i // 250}.{i % 250 + 1}"})  # fmt: skip
                self._record("POST /security/report/", r)
                if r.status_code == 302:
                    with self.lock:
                        self.reports += 1
                elif r.status_code < 500:
                    with self.lock:
                        self.failures.append(f"report refused: {r.status_code} {r.text[:300]!r}")
            i += 1

    def user(self, email: str, pages: list[str]) -> None:
        import requests

        while time.monotonic() < self.stop_at:
            with requests.Session() as s:
                token = self._token(s, "/accounts/login/")
                r = s.post(f"{self.base}/accounts/login/", timeout=60, allow_redirects=False, data={
                    "csrfmiddlewaretoken": token, "username": email, "password": PASSWORD,
                }, headers={"Referer": f"{self.base}/accounts/login/"})  # fmt: skip
                self._record("POST /accounts/login/", r)
                if r.status_code != 302:
                    with self.lock:
                        self.failures.append(f"login of {email} refused: {r.status_code}")
                    continue
                for path in pages:
                    self._record(f"GET {path}", s.get(self.base + path, timeout=60))
                r = s.post(f"{self.base}/accounts/logout/", timeout=60, allow_redirects=False,
                           data={"csrfmiddlewaretoken": s.cookies.get("csrftoken", "")},
                           headers={"Referer": f"{self.base}/"})  # fmt: skip
                self._record("POST /accounts/logout/", r)

    def run(self, seconds: float) -> None:
        self.stop_at = time.monotonic() + seconds
        customer_pages = ["/", "/tickets/", "/maintenance/", "/status/"]
        staff_pages = ["/admin/", "/admin/dashboard/", "/admin/tickets/ticket/"]
        targets = [(self.reporter, (n,)) for n in range(4)]
        targets += [(self.user, (e, customer_pages)) for e in ("alice@acme.example", "bob@acme.example")]
        targets += [(self.user, (e, staff_pages)) for e in ("sam@vendor.example", "sec@vendor.example")]
        threads = [threading.Thread(target=self._guard, args=t) for t in targets]
        for t in threads:
            t.start()
        for t in threads:
            t.join(seconds + 120)

    def _guard(self, fn, args) -> None:
        try:
            fn(*args)
        except Exception as exc:  # noqa: BLE001 - a client that dies is a failure to report, not a hang
            with self.lock:
                self.failures.append(f"client {fn.__name__}{args[:1]} died: {type(exc).__name__}: {exc}")


def test_eight_clients_for_a_minute_beside_worker_and_beat_on_one_sqlite_file(tmp_path):
    base_dir = tmp_path
    port = free_port()
    queue = f"drill-sqlite-{uuid.uuid4().hex[:8]}"
    env = embedded_env(base_dir, port, queue)
    for cmd in (["migrate", "--noinput"], ["seed_demo"]):
        done = subprocess.run([PY, "manage.py", *cmd], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-4000:]

    worker = Worker(env, base_dir / "worker.log", queue=queue, concurrency=2)
    beat = Beat(env, base_dir / "beat.log", schedule=base_dir / "beat-schedule", scale=0.05)
    web = Web(env, base_dir / "web.log", port)
    try:
        worker.start(wait=False)
        beat.start(wait=False)
        web.start()
        worker.wait_ready()
        beat.wait_ready()

        def web_up():
            import requests

            try:
                return requests.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200
            except requests.RequestException:
                return False

        wait_until(web_up, 60, "/healthz to answer 200 (web up, every sweep run once)")
        clients = Clients(f"http://127.0.0.1:{port}")
        clients.run(SECONDS)
        beat.stop()
        time.sleep(3)  # the last sweeps and emails

        logs = {"web": web.text(), "worker": worker.text(), "beat": beat.text()}
        report = f"{sum(clients.statuses.values())} requests {dict(clients.statuses)}, {clients.reports} reports"
        print(report)
        assert clients.failures == [], report + "\n" + "\n".join(clients.failures[:20])
        for name, text in logs.items():
            assert "database is locked" not in text, f"{name}:\n{text[-6000:]}"
            assert not re.search(r"Traceback|raised unexpected|Internal Server Error", text), f"{name}:\n{text[-6000:]}"
        assert clients.reports >= 20, report
        assert sum(n for s, n in clients.statuses.items() if s < 400) >= 200, report

        def read(sql: str):
            db = sqlite3.connect(base_dir / "db.sqlite3")
            try:
                return db.execute(sql).fetchall()
            finally:
                db.close()

        tickets = read("SELECT count(*) FROM tickets_ticket WHERE kind = 'security'")[0][0]
        assert tickets == clients.reports
        mail = base_dir / "mail"
        wait_until(lambda: len(list(mail.glob("*.eml"))) >= 2 * tickets, 60, "every report's two emails")
        assert read("SELECT count(*) FROM portal_outboxmessage WHERE status <> 'sent'")[0][0] == 0
        reports = [p.read_text(errors="replace") for p in mail.glob("*.eml")]
        reports = [m for m in reports if "Vulnerability report" in m or "vulnerability report" in m]
        assert len(reports) == 2 * tickets and all(f"http://127.0.0.1:{port}" in m for m in reports)
        runs = dict(read("SELECT name, runs FROM portal_sweepheartbeat"))
        # The sweeps kept running (under fastbeat many expire behind the web's outbox sends, by design:
        # an expired sweep is dropped, the next one does its work) and none was retried on an error.
        assert min(runs[name] for name in ("outbox-sweep", "tickets-escalate", "tickets-sla-deadlines")) >= 2, runs
        assert not re.search(r"Retry in|OperationalError", logs["worker"]), logs["worker"][-6000:]
        print(report, runs)
    finally:
        web.stop()
        beat.kill()
        worker.kill()
        forget_queue(queue)
