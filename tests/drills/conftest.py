"""The crash drills' harness: real processes, each a small class with start / kill / restart.

- `PgCluster`: a throwaway PostgreSQL cluster of its own (initdb in a temp directory, run as the
  unix user `postgres` when we are root, on a free port, its socket in the temp directory), never
  the machine's shared server. The schema is migrated once per session into a template database;
  each drill gets a fresh copy (CREATE DATABASE ... TEMPLATE), so drills never see each other's rows.
- `RedisServer`: `redis-server --save "" --appendonly no` on a free port: its own broker, which a
  drill may shut down without saving (everything queued is gone) and start again, empty.
- `Worker` / `Beat`: `python -m celery -A portal worker` (prefork unless told otherwise) and beat,
  each in its own process group (`kill()` is SIGKILL to the whole group), logging to a file.
- `Sink`: the aiosmtpd sink of tests/conftest.py, keeping every message's Message-ID and recipient.

The pytest process never opens the drill database through Django (pytest-django's own test
database stays where DATABASE_URL points): it seeds through `python -m tests.drills.scenario`
subprocesses (the product's own services, pointed at the drill database) and reads the drill
database with plain psycopg SQL. A missing binary (PostgreSQL, redis-server) skips a drill on a
laptop and fails it under CI=true.
"""

from __future__ import annotations

import glob
import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest

from tests.conftest import SmtpSink, free_port, pg_bindir

ROOT = Path(__file__).resolve().parents[2]
PY = sys.executable
HOST = "drill"  # worker node names: <queue>@drill


def need(what: str, ok: bool) -> None:
    """A drill that starts servers carries the `servers` marker: tests/conftest.py skips it on a
    laptop without them and fails it in CI. Reaching here without them is a missing marker."""
    if not ok:
        pytest.fail(f"the crash drills need {what}; mark the test @pytest.mark.servers")


def wait_until(predicate, timeout: float, what: str, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


# --- PostgreSQL -------------------------------------------------------------------------------
class PgCluster:
    """A PostgreSQL cluster of our own in `base`/pg, on a free port."""

    def __init__(self, base: Path):
        self.bindir = pg_bindir()
        self.dir = base / "pg"
        self.data = self.dir / "data"
        self.sock = self.dir / "sock"
        self.log = self.dir / "server.log"
        self.port = free_port()
        self.as_postgres = os.geteuid() == 0  # initdb refuses to run as root

    def _run(self, *cmd: str, timeout: float = 120) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if self.as_postgres else []
        subprocess.run([*prefix, *cmd], check=True, timeout=timeout, capture_output=True)

    def init(self) -> None:
        self.sock.mkdir(parents=True)
        if self.as_postgres:
            pw = pwd.getpwnam("postgres")
            for p in (self.dir, self.sock):
                os.chown(p, pw.pw_uid, pw.pw_gid)
        self._run(str(self.bindir / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres",
                  "-E", "UTF8", "--locale=C", "--no-sync")  # fmt: skip

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.sock} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c full_page_writes=off -c max_connections=200"
        )
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60",
                  "-o", options, "start")  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")

    def restart(self, mode: str = "fast") -> None:
        self.stop(mode)
        self.start()

    def url(self, db: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{db}"

    def connect(self, db: str = "postgres"):
        import psycopg

        return psycopg.connect(host="127.0.0.1", port=self.port, user="postgres", dbname=db, autocommit=True)

    def execute(self, sql: str, db: str = "postgres") -> None:
        with self.connect(db) as conn:
            conn.execute(sql)


class DrillDb:
    """One drill's database: its URL for subprocesses and plain SQL reads for the test."""

    def __init__(self, cluster: PgCluster, name: str):
        self.cluster, self.name = cluster, name
        self.url = cluster.url(name)

    def rows(self, sql: str, params=()) -> list[tuple]:
        with self.cluster.connect(self.name) as conn:
            return conn.execute(sql, params).fetchall()

    def value(self, sql: str, params=()):
        return self.rows(sql, params)[0][0]


# --- Redis ------------------------------------------------------------------------------------
class RedisServer:
    def __init__(self, base: Path):
        self.binary = shutil.which("redis-server")
        self.dir = base / f"redis-{uuid.uuid4().hex[:6]}"
        self.dir.mkdir()
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen | None = None

    def client(self):
        import redis

        return redis.Redis(host="127.0.0.1", port=self.port, socket_connect_timeout=1, socket_timeout=5)

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.dir), "--logfile", str(self.dir / "redis.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        wait_until(self._up, 10, "redis-server to answer PING")

    def _up(self) -> bool:
        import redis

        try:
            return bool(self.client().ping())
        except redis.RedisError:
            return False

    def shutdown_nosave(self) -> None:
        """SHUTDOWN NOSAVE: the server exits and everything queued in it is gone."""
        import redis

        try:
            self.client().shutdown(nosave=True)
        except redis.ConnectionError:
            pass  # the server closes the connection as it exits
        self.proc.wait(timeout=10)

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    restart = start


# --- Celery -----------------------------------------------------------------------------------
class Celeryproc:
    """A celery process in its own process group, its output appended to `log`."""

    def __init__(self, env: dict, log: Path):
        self.env, self.log = env, log
        self.proc: subprocess.Popen | None = None
        self._offset = 0

    def args(self) -> list[str]:
        raise NotImplementedError

    def start(self) -> None:
        self._offset = self.log.stat().st_size if self.log.exists() else 0
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(self.args(), cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT,
                                         start_new_session=True)  # fmt: skip

    def text(self, since_start: bool = False) -> str:
        data = self.log.read_bytes() if self.log.exists() else b""
        return data[self._offset :].decode(errors="replace") if since_start else data.decode(errors="replace")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL to the whole process group: the main process and every pool child at once."""
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=10)

    def stop(self, timeout: float = 20) -> None:
        if not self.alive():
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def restart(self) -> None:
        self.start()


class Worker(Celeryproc):
    def __init__(self, env: dict, log: Path, *, queue: str, pool: str = "prefork", concurrency: int = 2):
        super().__init__(env, log)
        self.queue, self.pool, self.concurrency = queue, pool, concurrency
        self.name = f"{queue}-{uuid.uuid4().hex[:4]}@{HOST}"

    def args(self) -> list[str]:
        return [PY, "-m", "celery", "-A", "portal", "worker", f"--pool={self.pool}", f"--concurrency={self.concurrency}",
                "-Q", f"{self.queue},{self.queue}-clocks", "-n", self.name, "--without-gossip", "--without-mingle", "--without-heartbeat",
                "--loglevel=INFO"]  # fmt: skip

    def start(self, wait: bool = True) -> None:
        super().start()
        if wait:
            self.wait_ready()

    def wait_ready(self, timeout: float = 60) -> None:
        def ready():
            if not self.alive():
                raise AssertionError(f"the worker exited with {self.proc.returncode}:\n{self.text(True)[-3000:]}")
            return " ready." in self.text(since_start=True)

        wait_until(ready, timeout, "the worker to be ready")

    def children(self) -> list[int]:
        """The pool's child processes (their parent is the worker's main process)."""
        kids = []
        for stat in glob.glob("/proc/[0-9]*/stat"):
            try:
                fields = Path(stat).read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == self.proc.pid:
                kids.append(int(stat.split("/")[2]))
        return kids


class Beat(Celeryproc):
    """The product's beat schedule, compressed by `scale` (tests/drills/fastbeat.py)."""

    def __init__(self, env: dict, log: Path, *, schedule: Path, scale: float):
        super().__init__({**env, "DRILL_BEAT_SCALE": str(scale)}, log)
        self.schedule = schedule

    def args(self) -> list[str]:
        return [PY, "-m", "celery", "-A", "tests.drills.fastbeat", "beat", "-s", str(self.schedule), "--pidfile=",
                "--loglevel=INFO"]  # fmt: skip

    def start(self, wait: bool = True) -> None:
        super().start()
        if wait:
            self.wait_ready()

    def wait_ready(self, timeout: float = 60) -> None:
        wait_until(lambda: "beat: Starting" in self.text(since_start=True) or not self.alive(), timeout, "beat")
        assert self.alive(), self.text(True)[-3000:]


# --- SMTP -------------------------------------------------------------------------------------
class Sink(SmtpSink):
    """Every message received: (Message-ID, To, Subject). `stall` makes the first DATA wait for
    `release` and then refuse the message (a mail server hanging mid-delivery)."""

    def __init__(self):
        super().__init__()
        self.received: list[tuple[str, str, str]] = []
        self.stall = False
        self.stalled = None
        self.release = None

    async def handle_DATA(self, server, session, envelope):
        import asyncio
        import email

        msg = email.message_from_bytes(envelope.content)
        if self.stall:
            self.stall = False
            self.stalled = msg["Message-ID"]
            while not self.release.is_set():
                await asyncio.sleep(0.05)
            return "451 try again later"
        self.received.append((msg["Message-ID"], msg["To"], msg["Subject"]))
        return "250 OK"

    def message_ids(self) -> list[str]:
        return [m for m, _, _ in list(self.received)]


# --- Fixtures ---------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def drill_dir():
    base = Path(tempfile.mkdtemp(prefix="sla-drill-"))
    base.chmod(0o755)  # the postgres user must reach its data directory
    yield base
    shutil.rmtree(base, ignore_errors=True)


def base_env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CELERY_", "DJANGO_ENV"))}
    env.update(DJANGO_SETTINGS_MODULE="portal.settings", PYTHONUNBUFFERED="1", TZ="UTC", **extra)
    return env


@pytest.fixture(scope="session")
def pg_cluster(drill_dir):
    bindir = pg_bindir()
    need("PostgreSQL server binaries (initdb, pg_ctl)", bindir is not None and (bindir / "pg_ctl").exists())
    if os.geteuid() == 0:
        need("the unix user postgres (initdb cannot run as root)", _user_exists("postgres"))
    cluster = PgCluster(drill_dir)
    cluster.init()
    cluster.start()
    try:
        cluster.execute("CREATE DATABASE drill_template")
        subprocess.run([PY, "manage.py", "migrate", "--noinput"], cwd=ROOT, check=True, capture_output=True,
                       env=base_env(DATABASE_URL=cluster.url("drill_template")), timeout=300)  # fmt: skip
        yield cluster
    finally:
        try:
            cluster.stop("immediate")
        except subprocess.CalledProcessError:
            pass


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


@pytest.fixture
def drill_db(pg_cluster):
    name = f"drill_{uuid.uuid4().hex[:10]}"
    pg_cluster.execute(f"CREATE DATABASE {name} TEMPLATE drill_template")
    yield DrillDb(pg_cluster, name)
    try:
        pg_cluster.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    except Exception:  # noqa: BLE001 - the cluster may be down after a failed drill
        pass


@pytest.fixture
def redis_server(drill_dir):
    need("redis-server", shutil.which("redis-server") is not None)
    server = RedisServer(drill_dir)
    server.start()
    yield server
    server.kill()


@pytest.fixture
def sink():
    s = Sink()
    s.controller.start()
    yield s
    s.controller.stop()


class Drill:
    """Everything one drill runs: its database, broker, SMTP sink, queue, and the processes it
    starts (stopped at the end, whatever happened)."""

    def __init__(self, db: DrillDb, redis: RedisServer, sink: Sink, directory: Path):
        self.db, self.redis, self.sink, self.dir = db, redis, sink, directory
        self.queue = f"drill-{uuid.uuid4().hex[:8]}"
        self.procs: list[Celeryproc] = []
        self.lease_seconds = 5

    def env(self, **extra) -> dict:
        return base_env(
            DATABASE_URL=self.db.url,
            REDIS_URL=self.redis.url,
            CELERY_QUEUE=self.queue,
            EMAIL_URL=f"smtp://127.0.0.1:{self.sink.port}",
            OUTBOX_LEASE_SECONDS=str(self.lease_seconds),
            MEDIA_ROOT=str(self.dir / "media"),  # beat's housekeeping sweeps it: never the checkout's var/media
            **extra,
        )

    def worker(self, *, pool: str = "prefork", concurrency: int = 2, wait: bool = True) -> Worker:
        """A worker on the drill's queue, started (wait=False: launched; call wait_ready() later, so
        that its start-up overlaps the seeding)."""
        w = Worker(self.env(), self.dir / f"worker-{len(self.procs)}.log", queue=self.queue, pool=pool,
                   concurrency=concurrency)  # fmt: skip
        self.procs.append(w)
        w.start(wait=wait)
        return w

    def beat(self, *, scale: float = 0.05, wait: bool = True) -> Beat:
        n = len(self.procs)
        b = Beat(self.env(), self.dir / f"beat-{n}.log", schedule=self.dir / f"beat-{n}-schedule", scale=scale)
        self.procs.append(b)
        b.start(wait=wait)
        return b

    def seed(self, *steps: tuple[str, dict]) -> list[dict]:
        """Seed through the product's services (tests/drills/scenario.py) in one subprocess on the
        drill database: seed(("customers", {...}), ("window", {...})) -> one result per step."""
        done = subprocess.run(
            [PY, "-m", "tests.drills.scenario", json.dumps(steps)], cwd=ROOT, env=self.env(),
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-4000:]
        return json.loads(done.stdout.strip().splitlines()[-1])

    def send_task(self, name: str, *args) -> str:
        """Publish a task on the drill's queue, as beat or the web would."""
        from celery import Celery

        app = Celery("drill", broker=self.redis.url, set_as_current=False)
        app.conf.task_serializer = "json"
        app.conf.broker_connection_retry_on_startup = True
        try:
            return app.send_task(name, args=list(args), queue=self.queue).id
        finally:
            app.close()

    # -- reading the drill database --
    def outbox(self) -> dict[str, tuple[str, str, str, int]]:
        """{key: (message_id, to, status, attempts)}"""
        rows = self.db.rows('SELECT key, message_id, "to", status, attempts FROM portal_outboxmessage')
        return {k: (m, t, s, a) for k, m, t, s, a in rows}

    def queued(self) -> int:
        """Messages waiting in the drill's queue plus those a worker holds unacknowledged."""
        r = self.redis.client()
        return r.llen(self.queue) + r.hlen("unacked")

    def wait_idle(self, timeout: float = 60) -> None:
        wait_until(lambda: self.queued() == 0, timeout, "the worker to finish every queued task", 0.2)

    def heartbeat_runs(self) -> dict[str, int]:
        return dict(self.db.rows("SELECT name, runs FROM portal_sweepheartbeat"))

    def logs(self) -> str:
        return "\n".join(f"--- {p.log.name}\n{p.text()[-6000:]}" for p in self.procs)

    def close(self) -> None:
        for p in self.procs:
            p.kill()


@pytest.fixture
def drill(drill_db, redis_server, sink, drill_dir, request):
    d = Drill(drill_db, redis_server, sink, Path(tempfile.mkdtemp(dir=drill_dir)))
    yield d
    d.close()
    if getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed:
        print(d.logs())


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    rep = yield
    setattr(item, f"rep_{rep.when}", rep)
    return rep
