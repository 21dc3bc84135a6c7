"""The pages on the large dataset (bench/dataset.py): in-process latency and queries, then requests
per second under gunicorn with wrk.

    .venv/bin/python bench/pages.py

For a customer of the big organisation (5% of the tickets: about 50,000, 5,000 open): the ticket
list, a ticket page, the dashboard; for staff, the queue (the admin's ticket changelist, sorted by
the nearest deadline as staff open it). In-process: django.test.Client with DEBUG off, the median
of BENCH_PAGE_RUNS requests and the queries of one (CaptureQueriesContext). Then gunicorn (2 sync
workers, the production profile with plain http allowed on 127.0.0.1) and
`wrk -t2 -c8 -d20s` with the user's session cookie on each page: requests per second and the
median latency. Writes var/bench/pages.json for bench/run.py.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
# Sessions are signed with it: the in-process client that logs in and gunicorn share it.
os.environ["SECRET_KEY"] = "bench-only-secret-key-not-for-production-3f1c9a7e5b2d4c6a8e0f"
from common import RESULTS, ROOT, counted, db_url, median, setup, table  # noqa: E402

RUNS = int(os.environ.get("BENCH_PAGE_RUNS", 20))
WRK_SECONDS = int(os.environ.get("BENCH_WRK_SECONDS", 20))
WORKERS = int(os.environ.get("BENCH_WORKERS", 2))
# BENCH_PAGES=page,queue: only the pages whose label holds one of the words (a quick rerun).
ONLY = set(filter(None, os.environ.get("BENCH_PAGES", "").split(",")))  # as the peer is served (bench/helpdesk/run.py)
# The peer, django-helpdesk 2.6.1 (issue 9).
PEER = {"list_rps": 7, "view_rps": 163, "list_ms": 265, "view_ms": 7.5}


def pages() -> list[tuple[str, str, str]]:
    """(label, who, path) of each page measured."""
    import dataset

    from tickets.models import Ticket

    org = dataset.customer_email(0)
    ticket = (
        Ticket.objects.filter(organisation__slug="bench-org-0000", status=Ticket.Status.OPEN)
        .order_by("-filed_at")
        .first()
    )
    return [
        ("customer ticket list", org, "/tickets/"),
        ("customer ticket page", org, f"/tickets/{ticket.pk}/"),
        ("customer ticket page, with pauses, files and an escalation", org, f"/tickets/{with_everything().pk}/"),
        ("customer dashboard", org, "/"),
        ("staff queue (admin changelist)", dataset.STAFF_EMAIL, "/admin/tickets/ticket/"),
    ]


def with_everything():
    """An open ticket of the big organisation with what most of the dataset's open tickets lack:
    a pause, a file on a reply and an acknowledged escalation request (made once, then reused), so
    that the page's figures are shown for a ticket that needs every query too (tickets.selectors.
    with_presence skips the queries for what a ticket does not have)."""
    from datetime import timedelta

    from tickets.models import Attachment, EscalationRequest, Ticket, TicketPause

    open_tickets = Ticket.objects.filter(organisation__slug="bench-org-0000", status=Ticket.Status.OPEN)
    ticket = open_tickets.order_by("-filed_at")[1]
    if not ticket.escalation_requests.exists():
        at, message = ticket.filed_at, ticket.messages.first()
        TicketPause.objects.create(
            ticket=ticket,
            reason=TicketPause.Reason.WAITING,
            started_at=at + timedelta(minutes=1),
            ended_at=at + timedelta(minutes=2),
        )
        Attachment.objects.create(
            ticket=ticket, message=message, file="bench/job.log", original_name="job.log", content_type="text/plain",
            size=2048, uploaded_by=message.author, uploaded_at=message.created_at,
        )  # fmt: skip
        EscalationRequest.objects.create(
            ticket=ticket, requested_by=ticket.created_by, requested_at=at + timedelta(minutes=3), reason="Urgent.",
            ack_due=at + timedelta(minutes=33), acknowledged_at=at + timedelta(minutes=4), acknowledged_by=message.author,
        )  # fmt: skip
    return ticket


def client_for(email: str):
    from django.test import Client

    from portal.models import User

    client = Client()
    client.force_login(User.objects.get(email=email), backend="portal.core.backends.PortalBackend")
    return client


def in_process(label: str, client, path: str) -> dict:
    for _ in range(3):  # warm: templates, URL resolver, the clocks' calendars
        response = client.get(path)
        assert response.status_code == 200, (path, response.status_code)
    _, _, queries = counted(lambda: client.get(path))
    times = []
    for _ in range(RUNS):
        t = time.perf_counter()
        client.get(path)
        times.append(time.perf_counter() - t)
    result = {"ms": median(times) * 1e3, "queries": queries, "bytes": len(response.content)}
    print(f"  {label}: {result['ms']:.1f} ms, {result['queries']} queries", flush=True)
    return result


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def production_env(static_root: Path) -> dict:
    return {
        **os.environ,
        "DJANGO_ENV": "production",
        "ALLOWED_HOSTS": "127.0.0.1",
        "SECURE_SSL_REDIRECT": "false",  # plain http on 127.0.0.1; cookies stay Secure-flagged
        "PORTAL_BASE_URL": "https://portal.example.com",  # required: what emails link to
        "MESSAGE_ID_DOMAIN": "portal.example.com",
        "EMAIL_URL": os.environ.get("EMAIL_URL") or "dummymail://",  # required; the pages send none
        "SECURITY_TXT_EXPIRES": f"{datetime.now(UTC) + timedelta(days=180):%Y-%m-%dT%H:%M:%SZ}",  # required
        "DATABASE_URL": db_url(),
        "STATIC_ROOT": str(static_root),
        "LOG_LEVEL": "WARNING",
    }


def wrk_install() -> str:
    wrk = shutil.which("wrk")
    if wrk is None:
        sys.exit("wrk is missing: `apt-get install -y wrk` (make bench installs it).")
    return wrk


def wrk(url: str, cookie: str, seconds: int = WRK_SECONDS) -> dict:
    out = subprocess.run(
        [wrk_install(), "-t2", "-c8", f"-d{seconds}s", "--timeout", "60s", "--latency", "-H", f"Cookie: {cookie}", url],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p50 = re.search(r"50%\s+([\d.]+)(us|ms|s)", out)
    scale = {"us": 1e-3, "ms": 1, "s": 1e3}[p50.group(2)]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"rps": rps, "p50_ms": float(p50.group(1)) * scale, "non_2xx": int(errors.group(1)) if errors else 0}


@contextmanager
def gunicorn(workers: int = WORKERS):
    """Our project under gunicorn (sync workers, the production profile) on a free port: yields
    the port, stops the server on the way out."""
    static_root = RESULTS / "static"
    env = production_env(static_root)
    python = sys.executable
    subprocess.run([python, "manage.py", "collectstatic", "--noinput", "-v0"], cwd=ROOT, env=env, check=True)
    port = free_port()
    log = (RESULTS / "pages-gunicorn.log").open("w")
    server = subprocess.Popen(
        [str(Path(python).parent / "gunicorn"), "portal.wsgi", "--bind", f"127.0.0.1:{port}", "--workers",
         str(workers), "--worker-class", "sync", "--timeout", "120"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.2)
        yield port
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


def warm(url: str, cookie: str) -> None:
    """A few requests on every worker first: templates, URL resolver, the terms, prepared statements."""
    subprocess.run([wrk_install(), "-t1", "-c3", "-d2s", "-H", f"Cookie: {cookie}", url], capture_output=True)


def under_gunicorn(measured: list[tuple[str, str, str]], cookies: dict[str, str]) -> dict:
    out = {}
    with gunicorn() as port:
        for label, who, path in measured:
            url = f"http://127.0.0.1:{port}{path}"
            warm(url, cookies[who])
            out[label] = wrk(url, cookies[who])
            print(f"  {label}: {out[label]['rps']:.1f} req/s, median {out[label]['p50_ms']:.1f} ms"
                  + (f", {out[label]['non_2xx']} non-2xx!" if out[label]["non_2xx"] else ""), flush=True)  # fmt: skip
    return out


def main():
    import dataset

    dataset.ensure()
    setup()
    RESULTS.mkdir(parents=True, exist_ok=True)
    measured = [m for m in pages() if not ONLY or any(word in m[0] for word in ONLY)]
    clients = {who: client_for(who) for _, who, _ in measured}
    print(f"pages in-process (median of {RUNS}, DEBUG off):")
    local = {label: in_process(label, clients[who], path) for label, who, path in measured}
    cookies = {who: f"sessionid={c.cookies['sessionid'].value}" for who, c in clients.items()}
    print(f"pages under gunicorn ({WORKERS} sync workers), wrk -t2 -c8 -d{WRK_SECONDS}s:")
    served = under_gunicorn(measured, cookies)
    out = json.loads((RESULTS / "pages.json").read_text()) if ONLY and (RESULTS / "pages.json").exists() else {}
    out.update({label: {**local[label], **served.get(label, {}), "path": path} for label, _, path in measured})
    (RESULTS / "pages.json").write_text(json.dumps(out, indent=1))
    print()
    print(report(out))


def report(out: dict) -> str:
    rows = [
        [label, r["path"], f"{r['ms']:.1f} ms", r["queries"], f"{r.get('rps', 0):.1f}", f"{r.get('p50_ms', 0):.1f} ms"]
        for label, r in out.items()
    ]
    text = table(["page", "path", "in-process median", "queries", "req/s (wrk)", "wrk median latency"], rows)
    queue, page = out.get("staff queue (admin changelist)"), out.get("customer ticket page")
    if queue and page and "rps" in queue:
        text += (
            f"\n\nStaff queue {queue['rps']:.0f} req/s against the peer's list endpoint {PEER['list_rps']} req/s: "
            f"{queue['rps'] / PEER['list_rps']:.1f}x (goal 10x). Customer ticket page {page['rps']:.0f} req/s against "
            f"the peer's customer view {PEER['view_rps']} req/s: {page['rps'] / PEER['view_rps']:.2f}x (goal 1.5x)."
        )
    return text


if __name__ == "__main__":
    main()
