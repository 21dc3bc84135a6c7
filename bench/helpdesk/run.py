"""Measure django-helpdesk 2.6.1, the nearest Django peer, on the same number of tickets as ours.

    python3 bench/helpdesk/run.py                                   # 100,000 tickets, 10,000 open
    python3 bench/helpdesk/run.py --tickets 1000000 --open 100000   # our dataset's size

Runs with the system python3 or our .venv's (standard library only). It
1. creates var/bench/helpdesk-venv (python3 -m venv) and installs bench/helpdesk/requirements.txt
   into it (django-helpdesk and its dependencies at exact versions, psycopg, gunicorn): nothing of
   the peer goes into our .venv or the repository;
2. loads the scratch database HELPDESK_DATABASE_URL (default
   postgres://postgres@127.0.0.1:5432/sla_helpdesk_peer, created if missing) with bulk inserts
   (load.py), or reuses it when its marker says it holds this dataset;
3. measures in the peer's own process (measure.py, CaptureQueriesContext): `escalate_tickets`
   with every due ticket due (the dataset is reset before and after, so runs repeat) and with
   nothing due (median of 5); the staff ticket list's data endpoint and the customer ticket view:
   median latency and queries;
4. serves the project with gunicorn (2 sync workers, the machine's 2 cores) on 127.0.0.1 and
   runs `wrk -t2 -c8 -d20s` against each of the two pages;
5. prints a table and writes var/bench/helpdesk.json (the keys bench/run.py reads).

Options: --tickets, --open, --wrk-seconds (20), --workers (2), --skip-wrk (requests per second
left null). Environment: HELPDESK_DATABASE_URL.
"""

import argparse
import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
OUT = ROOT / "var" / "bench"
VENV = OUT / "helpdesk-venv"
PY = VENV / "bin" / "python"
REQUIREMENTS = HERE / "requirements.txt"
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/sla_helpdesk_peer"
KEYS = [
    "tickets",
    "open",
    "escalate_seconds",
    "escalations",
    "escalate_queries",
    "nothing_due_seconds",
    "nothing_due_queries",
    "list_ms",
    "list_queries",
    "list_rps",
    "view_ms",
    "view_queries",
    "view_rps",
    "helpdesk_version",
]


def say(message):
    print(f"[helpdesk {datetime.now():%H:%M:%S}] {message}", flush=True)


def ensure_venv():
    """The peer's own virtual environment, reinstalled when requirements.txt changes."""
    stamp = VENV / ".installed"
    digest = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()
    if stamp.exists() and stamp.read_text() == digest and PY.exists():
        return
    if not PY.exists():
        say(f"creating {VENV.relative_to(ROOT)}")
        OUT.mkdir(parents=True, exist_ok=True)
        # The system interpreter, even when this script runs under our .venv's python: the
        # base prefix is where `python3 -m venv` would come from outside any venv.
        base = Path(sys.base_prefix) / "bin" / "python3"
        subprocess.run([str(base if base.exists() else sys.executable), "-m", "venv", str(VENV)], check=True)
    say(f"installing {REQUIREMENTS.relative_to(ROOT)}")
    subprocess.run(
        [str(PY), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-r", str(REQUIREMENTS)],
        check=True,
    )
    stamp.write_text(digest)


def peer_env():
    env = dict(os.environ)
    env.setdefault("HELPDESK_DATABASE_URL", DEFAULT_URL)
    env["DJANGO_SETTINGS_MODULE"] = "peer.settings"
    env["PYTHONPATH"] = str(HERE / "project")
    env.pop("DATABASE_URL", None)
    return env


def peer(*args, result=True):
    """Run a peer script; with result, its last stdout line is the JSON it measured."""
    completed = subprocess.run(
        [str(PY), *args], cwd=HERE, env=peer_env(), check=True, stdout=subprocess.PIPE, text=True
    )
    lines = completed.stdout.strip().splitlines()
    for line in lines[:-1] if result else lines:
        print(line, flush=True)
    return lines[-1] if result else None


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(workers):
    port = free_port()
    log = open(OUT / "helpdesk-gunicorn.log", "w")  # noqa: SIM115 (gunicorn's, for its lifetime)
    process = subprocess.Popen(
        [
            str(VENV / "bin" / "gunicorn"),
            "peer.wsgi",
            "--chdir",
            str(HERE / "project"),
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(workers),
            "--worker-class",
            "sync",
            "--timeout",
            "120",
            "--log-level",
            "warning",
        ],
        cwd=HERE / "project",
        env=peer_env(),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"gunicorn exited ({process.returncode}); see var/bench/helpdesk-gunicorn.log")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/help/context/", timeout=5)
            return process, port
        except OSError:
            time.sleep(0.5)
    process.terminate()
    sys.exit("gunicorn did not answer within 60 s")


def wrk(url, seconds, cookie=None):
    # wrk's own timeout (2 s) would drop the slow responses and count them as errors: 30 s.
    command = ["wrk", "-t2", "-c8", f"-d{seconds}s", "--timeout", "30s", "--latency"]
    if cookie:
        command += ["-H", f"Cookie: {cookie}"]
    output = subprocess.run(command + [url], check=True, capture_output=True, text=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    errors = re.search(r"Socket errors:.*", output)
    if bad:
        sys.exit(f"wrk got {bad.group(1)} non-2xx responses from {url}:\n{output}")
    if errors:
        say(f"wrk {errors.group(0)}")
    return rps


def throughput(pages, seconds, workers):
    process, port = serve(workers)
    base = f"http://127.0.0.1:{port}"
    try:
        # The staff list needs the logged-in staff user's session; the customer view is anonymous.
        request = urllib.request.Request(base + pages["list_url"], headers={"Cookie": pages["session_cookie"]})
        with urllib.request.urlopen(request, timeout=60) as response:
            json.loads(response.read())  # the data endpoint, not a login redirect
        say(f"wrk -t2 -c8 -d{seconds}s: staff list data endpoint")
        list_rps = wrk(base + pages["list_url"], seconds, pages["session_cookie"])
        say(f"wrk -t2 -c8 -d{seconds}s: customer ticket view")
        view_rps = wrk(base + pages["view_url"], seconds)
    finally:
        process.terminate()
        process.wait(timeout=30)
    return round(list_rps, 1), round(view_rps, 1)


def table(r):
    def num(value, fmt):
        return "-" if value is None else format(value, fmt)

    per_ticket_ms = r["escalate_seconds"] * 1000 / r["escalations"] if r["escalations"] else None
    per_ticket_q = r["escalate_queries"] / r["escalations"] if r["escalations"] else None
    rows = [
        (
            "escalate_tickets, many due",
            f"{r['escalate_seconds']:.1f} s for {r['escalations']:,} escalations",
            f"{r['escalate_queries']:,} ({num(per_ticket_q, '.1f')}/ticket)",
            f"{num(per_ticket_ms, '.1f')} ms/ticket",
        ),
        (
            "escalate_tickets, nothing due",
            f"{r['nothing_due_seconds'] * 1000:.0f} ms",
            f"{r['nothing_due_queries']}",
            "",
        ),
        (
            "staff list data endpoint",
            f"{r['list_ms']:.0f} ms",
            f"{r['list_queries']}",
            f"{num(r['list_rps'], '.1f')} req/s",
        ),
        (
            "customer ticket view",
            f"{r['view_ms']:.1f} ms",
            f"{r['view_queries']}",
            f"{num(r['view_rps'], '.1f')} req/s",
        ),
    ]
    head = ("django-helpdesk " + r["helpdesk_version"], "median", "queries", "")
    widths = [max(len(str(row[i])) for row in [head, *rows]) for i in range(4)]
    lines = [
        f"{r['tickets']:,} tickets, {r['open']:,} open, PostgreSQL; wrk -t2 -c8 against gunicorn on 127.0.0.1",
        "  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)),
        "  ".join("-" * w for w in widths),
    ]
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=100_000)
    parser.add_argument("--open", type=int, default=10_000)
    parser.add_argument("--wrk-seconds", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--skip-wrk", action="store_true")
    args = parser.parse_args()
    if not args.skip_wrk and not shutil.which("wrk"):
        sys.exit("wrk is missing: apt-get install -y wrk (or pass --skip-wrk)")
    started = time.monotonic()
    say(f"load average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    ensure_venv()
    peer("load.py", "--tickets", str(args.tickets), "--open", str(args.open), result=False)
    say("escalate_tickets (many due, then nothing due)")
    result = {"tickets": args.tickets, "open": args.open}
    result.update(json.loads(peer("measure.py", "escalate")))
    say("staff list data endpoint and customer ticket view, in-process")
    pages = json.loads(peer("measure.py", "pages"))
    result.update({k: v for k, v in pages.items() if k in KEYS})
    result["list_rps"] = result["view_rps"] = None
    if not args.skip_wrk:
        result["list_rps"], result["view_rps"] = throughput(pages, args.wrk_seconds, args.workers)
    result = {k: result[k] for k in KEYS}
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "helpdesk.json").write_text(json.dumps(result, indent=2) + "\n")
    print()
    print(table(result))
    print(
        f"\n{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {time.monotonic() - started:.0f} s in all, "
        f"load average at the end {os.getloadavg()[0]:.1f}; written to var/bench/helpdesk.json",
        flush=True,
    )


if __name__ == "__main__":
    main()
