import glob
import os
import pwd
import shutil
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from django.conf import settings

from portal.core.roles import StaffRole

from .factories import ContractFactory, OrganisationFactory, ServiceFactory, StaffFactory, UserFactory

ROOT = Path(__file__).resolve().parent.parent
IN_CI = os.environ.get("CI") == "true"


# --- `make test` runs the suite on two processes (pytest-xdist) ---------------------------------
def _worker_redis_url(url: str, worker: str) -> str:
    """Worker gwN's own Redis database: REDIS_URL's number plus 4N (redis://host:6379/5 -> /9 for
    gw1). Each test flushes the cache, and the cache is that database (so is the broker of the
    real-worker tests): two processes sharing one would wipe each other's."""
    from urllib.parse import urlsplit, urlunsplit

    n = int(worker.removeprefix("gw"))
    parts = urlsplit(url)
    db = int(parts.path.strip("/") or 0)
    return urlunsplit(parts._replace(path=f"/{(db + 4 * n) % 16}"))


def _per_worker_redis() -> None:
    """pytest-django reads the settings before this file is imported, but nothing has used the
    cache or the broker yet: point both, and the subprocesses' environment, at the worker's own
    database. pytest-django gives each worker its own test database (test_<name>_gwN)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if not worker or not REDIS_URL_GIVEN:
        return
    url = _worker_redis_url(REDIS_URL_GIVEN, worker)
    os.environ["REDIS_URL"] = settings.REDIS_URL = settings.CELERY_BROKER_URL = url
    settings.CACHES = {**settings.CACHES, "default": {**settings.CACHES["default"], "LOCATION": url}}


REDIS_URL_GIVEN = settings.REDIS_URL
_per_worker_redis()


# --- Services a test may need: skipped on a developer's laptop without them, failed in CI ------
def _postgres_available() -> bool:
    return settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"


def _redis_available() -> bool:
    if not settings.REDIS_URL:
        return False
    import redis

    try:
        return bool(redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


def _browser_available() -> bool:
    return Path("/usr/bin/chromium").exists()


def pg_bindir() -> Path | None:
    """The newest PostgreSQL server binaries (initdb, pg_ctl) on the machine."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _servers_available() -> bool:
    """The crash drills start their own PostgreSQL and Redis: the binaries, and (as root) the unix
    user postgres that initdb runs as."""
    bindir = pg_bindir()
    if bindir is None or not (bindir / "pg_ctl").exists() or shutil.which("redis-server") is None:
        return False
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return False
    return True


def _dovecot_available() -> bool:
    from .dovecot import dovecot_binary

    return dovecot_binary() is not None


NEEDS = {
    "postgres": (_postgres_available, "PostgreSQL (set DATABASE_URL=postgres://...)"),
    "redis": (_redis_available, "Redis (set REDIS_URL=redis://...)"),
    "browser": (_browser_available, "Chromium at /usr/bin/chromium"),
    "servers": (_servers_available, "PostgreSQL server binaries, the unix user postgres and redis-server"),
    "dovecot": (_dovecot_available, "Dovecot (apt-get install -y dovecot-imapd)"),
    "mailclient": (lambda: shutil.which("notmuch") is not None, "notmuch (apt-get install -y notmuch)"),
}


# Tests that `make test`'s two processes keep on one (pytest-xdist's --dist loadgroup): those that
# share a session fixture too costly to make twice, and each browser module's tests (one Chromium).
XDIST_GROUPS = {"pg_cluster": "servers", "migrated_sqlite": "embedded"}


def _xdist_group(item) -> str | None:
    for fixture, group in XDIST_GROUPS.items():
        if fixture in item.fixturenames:
            return group
    if "browser" in item.keywords:
        return item.module.__name__
    return None


def pytest_collection_modifyitems(config, items):
    missing = {name: what for name, (check, what) in NEEDS.items() if not check()}
    for item in items:
        for name, what in missing.items():
            if name in item.keywords and not IN_CI:
                item.add_marker(pytest.mark.skipif(True, reason=f"needs {what}"))
        if (group := _xdist_group(item)) and not item.get_closest_marker("xdist_group"):
            item.add_marker(pytest.mark.xdist_group(group))


@pytest.fixture(autouse=True)
def _services_required_in_ci(request):
    """In CI a missing service is a failure, never a skip."""
    if IN_CI:
        for name, (check, what) in NEEDS.items():
            if request.node.get_closest_marker(name) and not check():
                pytest.fail(f"CI: this test needs {what}, which is not available")


@pytest.fixture(autouse=True, scope="session")
def _sessions_in_the_database():
    """With Redis, production reads sessions from the cache (settings.SESSION_ENGINE): tests count
    the same queries with or without Redis by keeping them in the database; test_accounts checks
    the cached engine."""
    from django.test import override_settings

    with override_settings(SESSION_ENGINE="django.contrib.sessions.backends.db"):
        yield


@pytest.fixture(autouse=True, scope="session")
def _media_of_the_tests(tmp_path_factory):
    """Uploaded files go to a folder of the test run's own, not the checkout's var/media: the files
    of a developer's `make run` are never mixed with the tests', nor removed by the housekeeping a
    test runs (it removes files that no row of the test database names)."""
    from django.test import override_settings

    with override_settings(MEDIA_ROOT=str(tmp_path_factory.mktemp("media"))):
        yield


@pytest.fixture(autouse=True, scope="session")
def _staff_second_factor_optional():
    """Staff test clients sign in with force_login, without a device: the second factor is optional
    in tests, as in the embedded default, whatever STAFF_OTP_REQUIRED the environment sets.
    tests/test_staff_otp.py and test_browser_otp.py turn it on where they test it."""
    from django.test import override_settings

    with override_settings(STAFF_OTP_REQUIRED=False):
        yield


@pytest.fixture(autouse=True)
def _fast_password_hasher(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Throttle counters live in the cache, SLA terms in the process (tickets.terms_cache): each test
    starts with neither, so its query counts are a cold process's."""
    from django.core.cache import cache

    from tickets import mail_thread, terms_cache

    cache.clear()
    terms_cache.forget()
    mail_thread.forget()
    yield


@pytest.fixture(autouse=True)
def _celery_eager():
    """Tasks run inline, in the test process, unless a test asks for the real worker: nothing a
    test enqueues ever lands in a broker queue that a developer's worker would later consume."""
    from portal.celery import app

    app.conf.task_always_eager = True
    app.conf.task_eager_propagates = True
    yield
    app.conf.task_always_eager = False


@pytest.fixture
def dovecot():
    """A throwaway Dovecot IMAP server on a free port (tests/dovecot.py), stopped after the test.
    Mark the test `dovecot`: skipped without dovecot-imapd, failed in CI."""
    from .dovecot import dovecot_server

    with dovecot_server() as server:
        yield server


# --- People ---------------------------------------------------------------------------------
@pytest.fixture
def acme(db):
    return OrganisationFactory(name="Acme Savings", slug="acme")


@pytest.fixture
def globex(db):
    return OrganisationFactory(name="Globex Retail", slug="globex")


@pytest.fixture
def alice(acme):
    return UserFactory(email="alice@acme.example", name="Alice Achieng", organisation=acme, customer_role="admin")


@pytest.fixture
def bob(acme):
    return UserFactory(email="bob@acme.example", name="Bob Barasa", organisation=acme)


@pytest.fixture
def charlie(globex):
    return UserFactory(
        email="charlie@globex.example", name="Charlie Carlsson", organisation=globex, customer_role="admin"
    )


@pytest.fixture
def sam(db):
    """A support agent: works tickets (docs/decisions.md, "Staff roles are permissions")."""
    return StaffFactory(email="sam@vendor.example", name="Sam Support", phone="+254 728 999 222")


@pytest.fixture
def lena(db):
    """A support lead: also exclusions, priorities, escalations, outages, maintenance, compliance."""
    return StaffFactory(email="lena@vendor.example", name="Lena Lead", staff_role=StaffRole.SUPPORT_LEAD)


@pytest.fixture
def ayo(db):
    """An account manager: also contracts, contacts, SLA drafts, outage causes, claims."""
    return StaffFactory(email="ayo@vendor.example", name="Ayo AM", staff_role=StaffRole.ACCOUNT_MANAGER)


@pytest.fixture
def sol(db):
    """Security staff: vulnerability reports, the audit log, lockouts, API tokens."""
    return StaffFactory(email="sol@vendor.example", name="Sol Security", staff_role=StaffRole.SECURITY)


@pytest.fixture
def ada(db):
    """The superuser: staff, roles, publishing SLA terms."""
    return StaffFactory(email="admin@vendor.example", name="Ada Admin", staff_role="", is_superuser=True)


@pytest.fixture
def backup(db):
    """The Cloud Backup service (Kaluari's); some test files define their own."""
    return ServiceFactory(name="Cloud Backup", slug="cloud-backup")


@pytest.fixture
def assistant(db):
    """The AI Assistant service (Klart's)."""
    return ServiceFactory(name="AI Assistant", slug="ai-assistant")


@pytest.fixture
def acme_contract(acme, alice, bob):
    return ContractFactory(organisation=acme, reference="KAL-0001", name="Cloud Backup for Acme", contacts=[alice, bob])


@pytest.fixture
def globex_contract(globex, charlie):
    return ContractFactory(
        organisation=globex, reference="KLA-0001", name="AI Assistant for Globex", contacts=[charlie]
    )


# --- A real SMTP server and a real Celery worker --------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SmtpSink:
    """aiosmtpd on 127.0.0.1: every message it receives, parsed."""

    def __init__(self):
        from aiosmtpd.controller import Controller

        self.messages = []
        self.port = free_port()
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)

    async def handle_DATA(self, server, session, envelope):
        import email

        self.messages.append(email.message_from_bytes(envelope.content))
        return "250 OK"

    def wait_for(self, count: int, timeout: float = 20.0):
        deadline = time.monotonic() + timeout
        while len(self.messages) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.messages


@pytest.fixture
def smtp_sink():
    sink = SmtpSink()
    sink.controller.start()
    yield sink
    sink.controller.stop()


@pytest.fixture
def smtp_settings(settings, smtp_sink):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = smtp_sink.port
    settings.EMAIL_USE_TLS = False
    return smtp_sink


@pytest.fixture
def real_worker(django_db_setup, smtp_sink):
    """A real Celery worker process consuming from Redis, on this test run's own queue, against
    the test database, sending email to the SMTP sink. Needs PostgreSQL (a worker cannot see an
    in-memory SQLite database) and Redis."""
    from portal.celery import app

    db = settings.DATABASES["default"]
    queue = f"test-{uuid.uuid4().hex[:10]}"
    database_url = f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": settings.REDIS_URL,
        "CELERY_QUEUE": queue,
        "EMAIL_URL": f"smtp://127.0.0.1:{smtp_sink.port}",
        "DJANGO_SETTINGS_MODULE": "portal.settings",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "portal", "worker", "--pool=solo", "-Q", f"{queue},{queue}-clocks", "-n", f"{queue}@%h",
         "--without-gossip", "--without-mingle", "--loglevel=INFO"],
        cwd=ROOT, env=env, start_new_session=True,
    )  # fmt: skip
    old_queue = app.conf.task_default_queue
    app.conf.task_default_queue = queue
    app.conf.task_always_eager = False
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"the Celery worker exited with {proc.returncode}")
            if app.control.ping(destination=[f"{queue}@{socket.gethostname()}"], timeout=0.5):
                break
        else:
            raise RuntimeError("the Celery worker did not answer a ping within 30 s")
        yield proc
    finally:
        app.conf.task_default_queue = old_queue
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


# --- Browser tests (Playwright driving Debian's Chromium against pytest-django's live_server) ----
SCREENSHOTS = ROOT / "var" / "screenshots"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    """Debian's Chromium, never a browser downloaded by `playwright install`."""
    return {**browser_type_launch_args, "executable_path": "/usr/bin/chromium", "args": CHROMIUM_ARGS}


@pytest.fixture(scope="module")
def _allow_async_unsafe():
    """Playwright's sync API keeps an event loop running in the test's thread for as long as it
    lives, and Django then refuses every ORM call made from that thread (the live server answers
    from its own). DJANGO_ALLOW_ASYNC_UNSAFE is set only while the browser tests' module runs: set
    for the whole session, it would leak into the rest of the suite (a subprocess running
    `check --deploy` fails on it)."""
    old = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    yield
    if old is None:
        del os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"]
    else:
        os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = old


# pytest-playwright's playwright, browser_type and browser, per module instead of per session, so
# that the event loop (and the flag above) end with the browser tests.
@pytest.fixture(scope="module")
def playwright(_allow_async_unsafe):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        yield pw


@pytest.fixture(scope="module")
def browser_type(playwright, browser_name):
    return getattr(playwright, browser_name)


@pytest.fixture(scope="module")
def browser(browser_type, browser_type_launch_args):
    browser = browser_type.launch(**browser_type_launch_args)
    yield browser
    browser.close()


def csp_refusal(message) -> bool:
    """A console message in which Chromium reports a Content-Security-Policy violation: "Refused to
    load the script ... because it violates ...", or "Executing inline script violates the following
    Content Security Policy directive ... The action has been blocked." """
    text = message.text
    return message.type == "error" and ("Refused to" in text or "Content Security Policy" in text)


@pytest.fixture
def csp_violations():
    """Every CSP refusal seen by the pages of logged_in_page, as "url: message"."""
    return []


@pytest.fixture
def logged_in_page(browser, live_server, csp_violations):
    """logged_in_page(user, viewport=...) -> a Page in a fresh browser context (its own cookies),
    logged in through the login page by typing the user's email and password (None: logged out).
    Every page listens to its console: a CSP refusal fails the test."""
    from .factories import PASSWORD

    contexts = []

    def open_page(user=None, *, viewport=None, password=PASSWORD):
        context = browser.new_context(base_url=live_server.url, viewport=viewport or {"width": 1280, "height": 900})
        context.set_default_timeout(10_000)
        contexts.append(context)
        page = context.new_page()
        page.on("console", lambda m: csp_refusal(m) and csp_violations.append(f"{page.url}: {m.text}"))
        if user is not None:
            page.goto("/accounts/login/")
            page.get_by_label("Email").fill(user.email)
            page.get_by_label("Password").fill(password)
            page.get_by_role("button", name="Log in").click()
            page.wait_for_url(lambda url: "/accounts/login/" not in url)
        return page

    yield open_page
    for context in contexts:
        context.close()
    assert csp_violations == [], "the Content-Security-Policy refused something:\n" + "\n".join(csp_violations)


@pytest.fixture
def screenshot():
    """screenshot(page, "name") saves var/screenshots/name.png (the full page) and returns its path."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def take(page, name: str) -> Path:
        path = SCREENSHOTS / f"{name}.png"
        page.screenshot(path=path, full_page=True)
        return path

    return take


# --- A real HTTPS receiver for webhook deliveries (tests/webhook_receiver.py) ------------------
@pytest.fixture
def receiver(tmp_path, settings):
    from . import webhook_receiver

    r, server = webhook_receiver.start(tmp_path)
    settings.WEBHOOK_ALLOWED_HOSTS = ["localhost"]
    settings.WEBHOOK_CA_FILE = str(r.cert)
    yield r
    webhook_receiver.stop(r, server)
