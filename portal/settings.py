"""One settings module, driven by the environment (django-environ).

The embedded default needs no server: SQLite, kombu's filesystem broker, emails written to
files under var/mail/. DATABASE_URL / REDIS_URL / EMAIL_URL switch to PostgreSQL, Redis and SMTP.
DJANGO_ENV=production turns on the production profile, whose secrets have no default.
"""

from datetime import timedelta
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

from portal.domain.mail_urls import imap_url

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()
# The embedded default keeps its state here (SQLite file, broker queue, mail, uploads).
for _sub in ("mail", "broker/queue", "broker/processed", "broker/control", "media", "staticfiles"):
    (VAR_DIR / _sub).mkdir(parents=True, exist_ok=True)
DJANGO_ENV = env.str("DJANGO_ENV", default="development")
PRODUCTION = DJANGO_ENV == "production"

# --- Core -------------------------------------------------------------------------------------
DEVELOPMENT_SECRET_KEY = "dev-only-insecure-key-do-not-use-in-production"
if PRODUCTION:
    SECRET_KEY = env.str("SECRET_KEY")  # no default: production must set it
    ALLOWED_HOSTS = env.list("ALLOWED_HOSTS")
    DEBUG = False
    # A known or guessable key signs sessions, reply addresses and one-click links anyone could forge
    # (Django's deploy check W009 only warns): refused, as a missing one is.
    if (
        SECRET_KEY == DEVELOPMENT_SECRET_KEY
        or SECRET_KEY.startswith("django-insecure")
        or len(SECRET_KEY) < 50
        or len(set(SECRET_KEY)) < 5
    ):
        raise ImproperlyConfigured(
            "SECRET_KEY must be a secret of at least 50 characters of your own: "
            "python -c 'import secrets; print(secrets.token_urlsafe(50))'"
        )
    if not ALLOWED_HOSTS:
        raise ImproperlyConfigured("ALLOWED_HOSTS names the portal's host names (ALLOWED_HOSTS=portal.example.com).")
else:
    SECRET_KEY = env.str("SECRET_KEY", default=DEVELOPMENT_SECRET_KEY)
    ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver"])
    DEBUG = env.bool("DEBUG", default=True)

INSTALLED_APPS = [
    "portal.site.apps.StaffAdminConfig",  # django.contrib.admin with the staff site
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "knox",  # hashed API tokens; before "portal", whose admin replaces knox's (portal/admin.py)
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "csp",
    "axes",
    "anymail",
    "portal",
    "contracts",
    "tickets",
    "credits",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",  # request.user.is_verified(): the staff site's second factor
    "portal.core.staff_time.StaffTimezoneMiddleware",  # staff work in their own timezone
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "portal.core.audit.AuditContextMiddleware",
    # Last, as django-axes asks: it answers a locked-out login with its lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "portal.site.urls"
WSGI_APPLICATION = "portal.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "portal.site.context_processors.portal",
            ],
        },
    },
]

# --- Database ---------------------------------------------------------------------------------
DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'var' / 'db.sqlite3'}"),
}
# Persistent connections: a new PostgreSQL connection per request cost a third of a ticket page's
# requests per second (bench/RESULTS.md). Checked before reuse, so a restarted server is survived.
DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=60))
DATABASES["default"].setdefault("CONN_HEALTH_CHECKS", True)
if DATABASES["default"]["ENGINE"].endswith("postgresql") and env.bool("DB_PREPARED_STATEMENTS", default=True):
    # Parameters bound by the server, and a statement run 5 times on a connection kept prepared:
    # PostgreSQL then skips planning it (the ticket page's ticket query: 2.0 ms -> 0.3 ms at 1M
    # tickets, bench/RESULTS.md). Off behind a pooler that cannot carry prepared statements.
    DATABASES["default"].setdefault("OPTIONS", {}).update(server_side_binding=True, prepare_threshold=5)
if DATABASES["default"]["ENGINE"].endswith("postgresql") and env.str("DB_STATEMENT_TIMEOUT", default=""):
    # The server ends a statement running longer (PostgreSQL's units: "30s", "500ms"). The web
    # server's entry point (portal/wsgi.py) sets 30s: a page's query that runs away (a filter count
    # over a million tickets once ran 42 minutes after its client had gone) ends with its request.
    # Workers, beat and management commands have none: a month's statement may take its time.
    DATABASES["default"].setdefault("OPTIONS", {})["options"] = (
        f"-c statement_timeout={env.str('DB_STATEMENT_TIMEOUT')}"
    )
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # Web, worker and beat share the file. A deferred transaction (SQLite's default) reads under a
    # shared lock and upgrades when it first writes; when another connection holds or has taken the
    # write lock meanwhile, SQLite cannot wait (waiting would deadlock, or the snapshot is stale) and
    # fails at once with "database is locked", whatever the timeout. So every transaction takes the
    # write lock as it begins (IMMEDIATE): a second writer waits up to `timeout` seconds for it
    # instead. WAL lets readers go on beside the writer; synchronous=NORMAL is WAL's safe setting
    # (a power cut may lose the last commits, never corrupt the file). tests/test_embedded_sqlite.py
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        timeout=20,
        transaction_mode="IMMEDIATE",
        init_command="PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL",
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Accounts ---------------------------------------------------------------------------------
AUTH_USER_MODEL = "portal.User"
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # refuses a locked-out account or address first
    "portal.core.backends.PortalBackend",  # ModelBackend, with the organisation read with the user
]
# Login throttling: 5 failures lock the account, and separately the address, for 30 minutes.
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=30)
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = True
# The login form posts the email as "username" (Django's AuthenticationForm); axes would look for "email".
AXES_USERNAME_FORM_FIELD = "username"
# Failures are counted, and locks kept, under the address as the login matches it (case-folded):
# BOB@ACME.EXAMPLE is bob@acme.example's account, so it is bob's lock that refuses it.
AXES_USERNAME_CALLABLE = "portal.core.backends.lockout_username"
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
# How many reverse proxies stand in front of the portal (each appends its peer to X-Forwarded-For).
# Behind one, REMOTE_ADDR is the proxy for everyone: the lockout per address would lock every
# customer out after five strangers' failures. The client's address is read the same way for the
# lockout, the audit log and the per-address limits (portal.core.client_ip).
TRUSTED_PROXIES = env.int("TRUSTED_PROXIES", default=1 if PRODUCTION else 0)
AXES_CLIENT_IP_CALLABLE = "portal.core.client_ip.client_ip"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "login"
AUTH_PASSWORD_VALIDATORS = [
    {
        # The person's name is in `name` (Django's default looks for first_name and last_name).
        "NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator",
        "OPTIONS": {"user_attributes": ("email", "name")},
    },
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
SESSION_COOKIE_AGE = env.int("SESSION_COOKIE_AGE", default=60 * 60 * 12)
SESSION_COOKIE_HTTPONLY = True

# --- I18N / time ------------------------------------------------------------------------------
LANGUAGE_CODE = "en-gb"
TIME_ZONE = "UTC"  # everything is stored in UTC; pages convert to the contract's timezone
USE_I18N = False
USE_TZ = True

# --- Static and media -------------------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = env.path("STATIC_ROOT", default=str(VAR_DIR / "staticfiles"))
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if PRODUCTION
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
# Uploaded files live outside static/ and are served only through authorised views.
MEDIA_ROOT = env.path("MEDIA_ROOT", default=str(VAR_DIR / "media"))

# --- Email ------------------------------------------------------------------------------------
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="SLA Portal <sla-portal@vendor.example>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
# Where emails, the iCal feed and security.txt link to, and the domain of the Message-IDs the
# outbox fixes when a row is written. In production both are required (links in a sent email
# cannot be corrected later); in the embedded default scripts/run.sh sets PORTAL_BASE_URL to where
# the server listens (PORT_BIND).
if PRODUCTION:
    from django.core.exceptions import ImproperlyConfigured

    PORTAL_BASE_URL = env.str("PORTAL_BASE_URL", default="").rstrip("/")
    MESSAGE_ID_DOMAIN = env.str("MESSAGE_ID_DOMAIN", default="")
    if not PORTAL_BASE_URL.startswith("https://") or len(PORTAL_BASE_URL) <= len("https://"):
        raise ImproperlyConfigured(
            "PORTAL_BASE_URL is required in production: the portal's public https:// address, e.g. "
            f"https://portal.example.com (got {PORTAL_BASE_URL!r})"
        )
    if not MESSAGE_ID_DOMAIN:
        raise ImproperlyConfigured("MESSAGE_ID_DOMAIN is required in production: e.g. portal.example.com")
else:
    PORTAL_BASE_URL = env.str("PORTAL_BASE_URL", default="http://127.0.0.1:8000").rstrip("/")
    MESSAGE_ID_DOMAIN = env.str("MESSAGE_ID_DOMAIN", default="sla-portal.local")
if env.str("EMAIL_URL", default=""):
    vars().update(env.email_url("EMAIL_URL"))
elif PRODUCTION:
    # Without it every email would be written to files on this machine and marked sent: nobody
    # would get one, and nothing would say so.
    raise ImproperlyConfigured(
        "EMAIL_URL is required in production: the mail server the portal sends its emails through, e.g. "
        "smtp+tls://user:password@smtp.example.com:587"
    )
else:
    # One .eml file per message under var/mail/ and a line on the console (portal/core/mail.py).
    EMAIL_BACKEND = "portal.core.mail.FileAndConsoleBackend"
    EMAIL_FILE_PATH = env.str("EMAIL_FILE_PATH", default=str(VAR_DIR / "mail"))
EMAIL_TIMEOUT = 30
# The envelope sender (return path) of every email: BOUNCE_ADDRESS with the outbox row in a signed
# token after a "+" (VERP: bounces+<token>@domain, portal.core.bounces), so a bounce names its
# email. Route that address's plus-addresses to the ingest. Default: bounces@ the From's domain.
BOUNCE_ADDRESS = env.str("BOUNCE_ADDRESS", default="") or (
    "bounces@" + DEFAULT_FROM_EMAIL.rsplit("@", 1)[-1].rstrip(">").strip()
)
# DKIM: every email is signed when a private key (PEM text, or a file) is configured; the public
# key is published at <selector>._domainkey.<domain> (portal.core.dkim_signing).
DKIM_PRIVATE_KEY = env.str("DKIM_PRIVATE_KEY", default="", multiline=True)
DKIM_PRIVATE_KEY_FILE = env.str("DKIM_PRIVATE_KEY_FILE", default="")
DKIM_SELECTOR = env.str("DKIM_SELECTOR", default="portal")
DKIM_DOMAIN = env.str("DKIM_DOMAIN", default="") or DEFAULT_FROM_EMAIL.rsplit("@", 1)[-1].rstrip(">").strip()

# Outbox: how long a sender holds a claimed row, and how often a row is tried.
OUTBOX_LEASE = timedelta(seconds=env.int("OUTBOX_LEASE_SECONDS", default=120))
OUTBOX_MAX_ATTEMPTS = env.int("OUTBOX_MAX_ATTEMPTS", default=8)
OUTBOX_BATCH = 100
# A sent email's context and bodies are emptied this many days after it was sent (the daily
# housekeeping, portal.core.housekeeping); its row stays with its key (what keeps an email from
# going twice), its Message-ID (what threads a reply), its recipient, subject and times. 0: kept for good.
OUTBOX_KEEP_BODIES_DAYS = env.int("OUTBOX_KEEP_BODIES_DAYS", default=180)
# Outbound webhooks (portal.core.webhooks, docs/webhooks.md). Every delivery goes to a public
# address checked after resolution (no private, loopback, link-local, multicast or reserved one),
# over HTTPS, with bounded time and response size; redirects are not followed.
# WEBHOOK_ALLOWED_HOSTS names hosts exempt from the address check (tests, a local receiver in
# development); production refuses it. WEBHOOK_CA_FILE: a CA bundle to trust instead of the system's.
WEBHOOK_ALLOWED_HOSTS = [h.lower() for h in env.list("WEBHOOK_ALLOWED_HOSTS", default=[])]
if PRODUCTION and WEBHOOK_ALLOWED_HOSTS:
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured("WEBHOOK_ALLOWED_HOSTS is for tests and development: production checks every address")
WEBHOOK_CA_FILE = env.str("WEBHOOK_CA_FILE", default="") or None
WEBHOOK_CONNECT_TIMEOUT = 5.0  # seconds to open the connection (TLS handshake included)
WEBHOOK_READ_TIMEOUT = 10.0  # seconds of silence while waiting for the response
WEBHOOK_TOTAL_TIMEOUT = 20.0  # seconds for the whole exchange, however the receiver drips it
WEBHOOK_MAX_RESPONSE_BYTES = 64 * 1024  # read at most this much of a response; the rest is dropped
WEBHOOK_LEASE = timedelta(seconds=60)  # longer than the total timeout: a live sender never loses its row
# A delivery's attempts (1+2+...+60 min: about 2 h); then it is parked, or, if the endpoint accepted
# nothing since it was recorded, the endpoint is disabled and the delivery waits for it.
WEBHOOK_MAX_ATTEMPTS = env.int("WEBHOOK_MAX_ATTEMPTS", default=8)
WEBHOOK_SECRET_GRACE = timedelta(hours=24)  # the previous secret still signs this long after a rotation
WEBHOOK_BATCH = 50
# Where notices for the support queue go (new tickets, unassigned tickets).
SECURITY_CONTACT_EMAIL = env.str("SECURITY_CONTACT_EMAIL", default="security@vendor.example")
SUPPORT_QUEUE_EMAIL = env.str("SUPPORT_QUEUE_EMAIL", default="support-queue@vendor.example")
# Attachments: at most this many bytes each, of these types (checked on content).
ATTACHMENT_MAX_BYTES = env.int("ATTACHMENT_MAX_BYTES", default=10 * 1024 * 1024)

# --- Email in (tickets.inbound; README, "Email in") -------------------------------------------
# A larger message is refused (its header kept, the sender told why) rather than stored.
INBOUND_MAX_BYTES = env.int("INBOUND_MAX_BYTES", default=25 * 1024 * 1024)
# The authserv-id of our own receiving MTA: only its Authentication-Results header is believed
# (DMARC). Empty: no header is believed, and held senders get no polite answer.
INBOUND_AUTHSERV_ID = env.str("INBOUND_AUTHSERV_ID", default="")
# At most this many tickets and replies per sender in the window; more is held for staff.
INBOUND_RATE_LIMIT = (env.int("INBOUND_RATE_PER_HOUR", default=20), timedelta(hours=1))
# INBOUND_IMAP_URL: the mailbox beat polls every minute (tickets.mailbox_poll), imap:// or
# imaps://user:password@host:port/Folder (portal.domain.mail_urls). Unset: no mailbox is polled.
# A message is moved to INBOUND_IMAP_PROCESSED_FOLDER once the ingest service has stored it; at most
# INBOUND_IMAP_BATCH messages are read per run (the next minute takes the rest).
try:
    INBOUND_IMAP = imap_url(env.str("INBOUND_IMAP_URL", default=""))
except ValueError as _exc:
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured(f"INBOUND_IMAP_URL: {_exc}") from None
INBOUND_IMAP_PROCESSED_FOLDER = env.str("INBOUND_IMAP_PROCESSED_FOLDER", default="Processed")
INBOUND_IMAP_BATCH = env.int("INBOUND_IMAP_BATCH", default=200)
INBOUND_IMAP_TIMEOUT = 60.0  # seconds the server may stay silent before a run gives up
# A provider's inbound webhook (django-anymail; Postmark at /anymail/postmark/inbound/), protected by
# HTTP basic auth with this "user:password". Unset: the webhook answers 404.
ANYMAIL = {"WEBHOOK_SECRET": env.str("ANYMAIL_WEBHOOK_SECRET", default="")}

# --- Celery -----------------------------------------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    # Never schedule anything longer than this: timers live in the database (see STACK notes).
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
else:
    # kombu's filesystem transport: a broker that needs no server, shared by web, worker, beat.
    _broker_dir = VAR_DIR / "broker"
    CELERY_BROKER_URL = "filesystem://"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),  # else kombu writes ./control/ wherever it runs
        "store_processed": False,
        "polling_interval": 0.5,
    }
CELERY_TASK_DEFAULT_QUEUE = env.str("CELERY_QUEUE", default="portal")
# The clock sweeps go to "<CELERY_QUEUE>-clocks", for a worker of their own (portal/celery.py).
# No task holds a worker process for good: SoftTimeLimitExceeded is raised in it after the soft
# limit, the process is killed after the hard one (month close and recomputes have longer ones).
CELERY_TASK_SOFT_TIME_LIMIT = 600
CELERY_TASK_TIME_LIMIT = 660
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)

# --- SLA clocks --------------------------------------------------------------------------------
# "At risk": a ticket from the moment less than this share of its nearest clock's allowance is left,
# per priority. The vendor's rule, not the SLA's terms; one rule for the staff queue, the staff
# dashboard and the customer's pages (tickets.deadlines). Each ticket stores its at-risk moment:
# after changing a share, `manage.py recompute_deadlines` recomputes the open tickets.
SLA_AT_RISK_SHARE = {"P1": 0.25, "P2": 0.25, "P3": 0.25, "P4": 0.25, "STD": 0.25}

# --- Cache (DRF throttles; Redis in production so that every process counts together) -------------
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
    if REDIS_URL
    else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
}
# With Redis (shared by every process) sessions are read from the cache and written through to the
# database: a query less on every page. Without it, the database alone (a per-process cache would
# keep a logged-out session alive in the other processes).
SESSION_ENGINE = "django.contrib.sessions.backends." + ("cached_db" if REDIS_URL else "db")

# --- REST framework ---------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "portal.core.api_tokens.CustomerTokenAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 50,
    # Writes are throttled per user (reads are not: they are scoped and cheap).
    "DEFAULT_THROTTLE_CLASSES": ["portal.core.throttles.WriteRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {"writes": env.str("API_WRITE_RATE", default="120/minute")},
}
SPECTACULAR_SETTINGS = {
    "TITLE": "SLA Portal API",
    "VERSION": "1.0.0",
    "DESCRIPTION": "Your organisation's contracts (with the SLA terms in force), services, maintenance windows, "
    "outages, months (uptime and credit), tickets and claims. Authenticate with an API token from the Account "
    "page: `Authorization: Token <token>`. Every list takes `limit` and `offset` (the answer is `{count, next, "
    "previous, results}`), its own filters and `ordering` (a field, `-` first for descending).",
    "SERVERS": [{"url": PORTAL_BASE_URL, "description": "This portal"}],
    "SERVE_INCLUDE_SCHEMA": False,  # the schema endpoint is not an operation of the API
    "COMPONENT_SPLIT_REQUEST": True,
    # Every enum is a named component (portal.core.api_schema names query parameters' too): a client
    # generated from the schema gets one type per choice set, named for what it is.
    "ENUM_NAME_OVERRIDES": {
        "TicketStatus": "tickets.models.Ticket.Status",
        "SlaState": "tickets.models.Ticket.SLAState",
        "TicketChannel": "tickets.models.Ticket.Channel",
        "Priority": "contracts.choices.Priority",
        "Cause": "contracts.choices.Cause",
        "CreditKind": "contracts.choices.CreditKind",
        "EscalationChannel": "contracts.choices.Channel",
        "MaintenanceImpact": "contracts.models.MaintenanceWindow.Impact",
        "MaintenanceStatus": "contracts.models.MaintenanceWindow.Status",
        "IncidentStatus": "contracts.models.IncidentStatus",
        "IncidentImpact": "contracts.choices.Impact",
        "ClaimStatus": "credits.models.Claim.Status",
        "MonthStatus": "credits.models.MonthlyUptime.Status",
        "EmailChoiceKind": "portal.core.notify_rules.Choice",
        "MonthState": "credits.api.MONTH_STATES",
        "BreakdownKind": "credits.api.BREAKDOWN_KINDS",
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "portal.core.api_schema.postprocess_api",
    ],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# --- security.txt (RFC 9116) ----------------------------------------------------------------------
# Its Expires: the date the file's contacts are promised until, renewed deliberately (RFC 9116 asks
# for less than a year ahead), never "a year from now" on every request. An ISO 8601 date-time with
# its offset, e.g. 2027-06-30T00:00:00Z. Required in production; the embedded default is a year from
# when the process starts. A system check (portal/site/checks.py) warns 30 days before it passes
# and is an error once it has.
if PRODUCTION:
    SECURITY_TXT_EXPIRES = env.str("SECURITY_TXT_EXPIRES", default="")
    if not SECURITY_TXT_EXPIRES:
        from django.core.exceptions import ImproperlyConfigured

        raise ImproperlyConfigured(
            "SECURITY_TXT_EXPIRES is required in production: when /.well-known/security.txt expires, an ISO "
            "8601 date-time under a year ahead, e.g. 2027-06-30T00:00:00Z"
        )
else:
    from datetime import UTC, datetime

    SECURITY_TXT_EXPIRES = env.str(
        "SECURITY_TXT_EXPIRES", default=f"{datetime.now(UTC) + timedelta(days=365):%Y-%m-%dT%H:%M:%SZ}"
    )

# --- API tokens (django-rest-knox) -----------------------------------------------------------------
# Stored as a SHA-512 digest and a 15-character lookup key; the secret is shown once, on the Account
# page. Every token starts with API_TOKEN_PREFIX so that it can be recognised (in a leak, by a
# secret scanner). A new token expires after API_TOKEN_TTL_DAYS unless its owner chooses otherwise
# (0: no expiry by default). Staff hold none (portal/core/api_tokens.py).
API_TOKEN_PREFIX = "slap_"
API_TOKEN_TTL_DAYS = env.int("API_TOKEN_TTL_DAYS", default=90)
API_TOKENS_PER_USER = 5
REST_KNOX = {
    "SECURE_HASH_ALGORITHM": "hashlib.sha512",  # what portal/migrations/0005 hashed the DRF tokens with
    "AUTH_TOKEN_CHARACTER_LENGTH": 64,
    "TOKEN_TTL": timedelta(days=API_TOKEN_TTL_DAYS) if API_TOKEN_TTL_DAYS else None,
    "TOKEN_PREFIX": API_TOKEN_PREFIX,
    "AUTH_HEADER_PREFIX": "Token",
    "AUTO_REFRESH": False,
}

# --- Staff second factor (django-otp) ---------------------------------------------------------------
# The staff site asks for a TOTP code (or a recovery code) after the password. Required in
# production: a staff member without a device is sent to enrolment and cannot use the admin until
# enrolled. Optional in the embedded default: a staff member with a device must use it, one without
# signs in with the password alone.
STAFF_OTP_REQUIRED = env.bool("STAFF_OTP_REQUIRED", default=PRODUCTION)
STAFF_OTP_RECOVERY_CODES = 10
OTP_TOTP_ISSUER = env.str("OTP_TOTP_ISSUER", default="SLA Portal")
OTP_ADMIN_HIDE_SENSITIVE_DATA = True  # the device admins never show a key, a QR code or a recovery code

# --- Logging ----------------------------------------------------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "loggers": {
        "portal": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
        "contracts": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
        "tickets": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
        "credits": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
        "axes": {"handlers": ["console"], "level": "WARNING"},  # lockouts and failed logins
    },
}

# --- Content-Security-Policy (every environment, so tests see what production does) --------------
# Scripts and styles come from our own static files only: no inline script, no other host.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        # Django's admin sets a few style attributes from its own scripts; inline *styles* cannot run code.
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

# --- Production profile -----------------------------------------------------------------------
if PRODUCTION:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    # A load balancer probes the workers over plain HTTP: /healthz answers it, not a redirect.
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=60 * 60 * 24 * 365)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
