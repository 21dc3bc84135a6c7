"""scripts/run.sh, what `make run` starts: the demo data, then web, worker and beat on the embedded
default. Its one useful line comes last, its links follow PORT_BIND (in the web, in the worker's
emails and in the demo's, headers included), and
Ctrl-C stops every process it started (runserver and the server it reloads, the worker and its
pool children, beat) within seconds. About 35 s (the demo is seeded first)."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from email import message_from_string
from pathlib import Path

import pytest

from . import embedded_default
from .conftest import ROOT, free_port
from .embedded_default import embedded_env, forget_queue

embedded, migrated_sqlite = embedded_default.embedded, embedded_default.migrated_sqlite  # the fixtures


def _sigint_default() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _proc_table() -> dict[int, tuple[int, int, str]]:
    """{pid: (ppid, pgid, state)} of every process, from /proc."""
    table = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        table[int(entry)] = (int(fields[1]), int(fields[2]), fields[0])
    return table


def _descendants(root: int) -> set[int]:
    table = _proc_table()
    found, frontier = set(), {root}
    while frontier:
        children = {pid for pid, (ppid, _, _) in table.items() if ppid in frontier}
        frontier = children - found
        found |= children
    return found


def _http(url: str, data: bytes | None = None, headers: dict | None = None) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=data, headers=headers or {}), timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc").is_dir() or shutil.which("setsid") is None, reason="needs Linux")
def test_run_sh_links_to_its_port_prints_its_banner_last_and_stops_everything_on_ctrl_c(embedded):
    port = free_port()
    log_path = embedded / "run.log"
    queue = f"run-sh-{uuid.uuid4().hex[:8]}"  # on the checkout's filesystem broker, beside any `make run`
    env = embedded_env(embedded, PORT_BIND=f"127.0.0.1:{port}", CELERY_QUEUE=queue,
                       BEAT_SCHEDULE=str(embedded / "beat-schedule"))  # fmt: skip
    with open(log_path, "wb") as log:
        # Ctrl-C as a terminal sends it: a shell started with SIGINT ignored (any job a non-interactive
        # shell put in the background, and all it starts) cannot trap it, so the test restores it.
        script = subprocess.Popen(["bash", "scripts/run.sh"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                  start_new_session=True, preexec_fn=_sigint_default)  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    started: set[int] = set()
    try:
        deadline = time.monotonic() + 60
        while "SLA portal: " not in log_path.read_text(errors="replace"):
            assert script.poll() is None, log_path.read_text(errors="replace")[-4000:]
            assert time.monotonic() < deadline, log_path.read_text(errors="replace")[-4000:]
            time.sleep(0.2)
        started = _descendants(script.pid)
        out = log_path.read_text(errors="replace")
        banner = out.index(f"SLA portal: {base}/")
        assert " ready." in out[:banner] and "beat: Starting" in out[:banner]  # worker and beat first
        assert _http(f"{base}/healthz")[0] == 200  # the banner waited for the sweeps to run

        # Links follow PORT_BIND, in the web (security.txt), in the worker (the emails it renders) and
        # in the demo's week of work, seeded by the script before it serves: its emails' headers
        # (List-Unsubscribe) are fixed when they are written.
        status, text = _http(f"{base}/.well-known/security.txt")
        assert status == 200 and f"Contact: {base}/security/report/" in text
        mail = embedded / "mail"
        demo = _settled(mail)
        unsubscribe = [message_from_string(t)["List-Unsubscribe"] for t in demo.values()]
        assert len(demo) > 20 and any(u and u.strip().startswith(f"<{base}/") for u in unsubscribe), unsubscribe
        _submit_report(base)
        deadline = time.monotonic() + 30
        while len(list(mail.glob("*.eml"))) < len(demo) + 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        texts = {p.name: p.read_text(errors="replace") for p in mail.glob("*.eml")}
        assert len(texts) == len(demo) + 2
        assert all(base in texts[n] for n in set(texts) - set(demo))  # the report's receipt and staff copy
        assert not [n for n, t in texts.items() if ":8000" in t]

        # Ctrl-C: the script and every process it started (runserver and the server it reloads, the
        # worker and its pool children, beat) are gone: TERM, then KILL after STOP_GRACE (5 s).
        started = _descendants(script.pid)
        table = _proc_table()
        assert len(started) >= 6, table  # worker + 2 pool children, beat, runserver + its server
        groups = {table[pid][1] for pid in started if pid in table}
        stopping = time.monotonic()
        os.kill(script.pid, signal.SIGINT)
        try:  # STOP_GRACE (5 s), then KILL: well within this on a 2-core machine running the rest of the suite
            script.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pytest.fail(
                f"run.sh still running 30 s after Ctrl-C: {_proc_table()}\n{log_path.read_text(errors='replace')[-3000:]}"
            )
        left, settle = started, time.monotonic() + 10  # the script has exited; what it started, after it
        while left and time.monotonic() < settle:
            time.sleep(0.1)
            left = {pid for pid, (_, pgid, state) in _proc_table().items()
                    if state != "Z" and (pid in started or pgid in groups)}  # fmt: skip
        took = time.monotonic() - stopping
        assert not left, f"still running {took:.1f} s after Ctrl-C: {sorted(left)}"
        assert "SLA portal stopped." in log_path.read_text(errors="replace")
    finally:
        for pid in started | ({script.pid} if script.poll() is None else set()):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if script.poll() is None:
            script.wait(timeout=10)
        forget_queue(queue)


def _settled(mail: Path) -> dict[str, str]:
    """The emails in `mail` once the worker has written no new one for 3 s (at most 60 s)."""
    deadline, seen, quiet_since = time.monotonic() + 60, -1, time.monotonic()
    while time.monotonic() < deadline:
        count = len(list(mail.glob("*.eml")))
        if count != seen:
            seen, quiet_since = count, time.monotonic()
        elif time.monotonic() - quiet_since > 3:
            break
        time.sleep(0.2)
    return {p.name: p.read_text(errors="replace") for p in mail.glob("*.eml")}


def _submit_report(base: str) -> None:
    import http.cookiejar

    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    form = opener.open(f"{base}/security/report/", timeout=10).read().decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form).group(1)
    data = urllib.parse.urlencode(
        {"csrfmiddlewaretoken": token, "email": "reporter@example.com", "summary": "XSS", "details": "steps"}
    ).encode()
    request = urllib.request.Request(
        f"{base}/security/report/", data=data, headers={"Referer": f"{base}/security/report/"}
    )
    with opener.open(request, timeout=30) as response:
        assert response.status == 200 and "/security/report/done/" in response.url


def test_run_sh_on_a_port_another_program_listens_on_says_so_and_starts_nothing():
    """It printed the ready line (whatever answered there passed for the portal), then failed when
    runserver could not bind, after a second worker and beat had started on the same files."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {**os.environ, "PORT_BIND": f"127.0.0.1:{port}"}
        result = subprocess.run(
            ["bash", "scripts/run.sh"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
        )
    assert result.returncode == 1
    assert f"Cannot serve on 127.0.0.1:{port} (Address already in use)" in result.stderr
    assert "SLA portal:" not in result.stdout and "celery" not in result.stdout + result.stderr
