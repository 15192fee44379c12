"""Settings shared by every environment; everything that differs comes from the environment.

Variables (docs/operations.md "Configuration"): DATABASE_URL, CELERY_BROKER_URL, STORAGE_BACKEND, STORAGE_ROOT,
S3_ENDPOINT_URL, S3_ACCESS_KEY_ID, S3_SECRET_ACCESS_KEY, S3_BUCKET, SECRET_KEY, ALLOWED_HOSTS.
With none set, the embedded default (config.embedded) is used.
"""

import ipaddress
import json
import os
from datetime import timedelta

import dj_database_url
from csp import constants as csp_constants

from config import embedded
from config.secret_key import refuse_placeholder_secret_key

BASE_DIR = embedded.BASE_DIR


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value else default


def env_float(name: str, default: float) -> float:
    value = os.environ.get(name)
    return float(value) if value else default


def env_list(name: str, default: list[str]) -> list[str]:
    value = os.environ.get(name)
    if not value:
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


# The address the web server binds (infra/start/web.sh, the launcher): loopback unless a deployment
# opts in (containers set HOST=0.0.0.0 behind their ingress).
HOST = env_str("HOST", "127.0.0.1")
# Unset, the embedded run makes a random key once and keeps it in its data folder.
SECRET_KEY = env_str("SECRET_KEY") or embedded.persistent_secret_key()
refuse_placeholder_secret_key(SECRET_KEY, bind_host=HOST)
DEBUG = env_bool("DEBUG", False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", ".localhost", "127.0.0.1", "testserver"])
# How many reverse proxies in front of the web server append to X-Forwarded-For (docs/security.md,
# "Trusted proxies and client addresses"). 0: the client is REMOTE_ADDR and X-Forwarded-For is ignored;
# N: the client is the Nth address from the right of X-Forwarded-For. apps.core.requests.client_ip
# reads it for the audit trail, throttles and film links alike.
TRUSTED_PROXY_HOPS = env_int("TRUSTED_PROXY_HOPS", 0)

SHARED_APPS = [
    "django_tenants",
    "tenants",
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "corsheaders",
    "apps.core",
    "apps.operations",
    "apps.accounts",
    "apps.audit",
    "apps.consult_routing",
    "apps.film_links",
    "apps.dimse",
    # Sign-in throttling for operators (public schema); listed in TENANT_APPS too, see below.
    "axes",
]
TENANT_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.sessions",
    # Users live in each tenant's schema, so failed sign-ins are counted there too: a lockout of
    # "clinic_admin" in one tenant never locks another tenant's user of the same name.
    "axes",
    "apps.accounts",
    "apps.audit",
    "apps.uploads",
    "apps.archive",
    "apps.ai",
    "apps.consults",
    "apps.films",
    "apps.viewer",
]
INSTALLED_APPS = list(SHARED_APPS) + [app for app in TENANT_APPS if app not in SHARED_APPS]

TENANT_MODEL = "tenants.Tenant"
TENANT_DOMAIN_MODEL = "tenants.Domain"
PUBLIC_SCHEMA_NAME = "public"
PUBLIC_SCHEMA_URLCONF = "config.urls_public"
ROOT_URLCONF = "config.urls_tenant"
# New tenants are cloned from this schema (kept migrated by tenants.services.template_schema_ensure).
TENANT_BASE_SCHEMA = "tenant_template"
TENANT_CREATION_FAKES_MIGRATIONS = True
TENANT_LIMIT_SET_CALLS = True

MIDDLEWARE = [
    "tenants.middleware.TenantRoutingMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Static files (the API docs' Swagger UI) from the platform itself, with or without DEBUG.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "apps.core.middleware.NulInQueryMiddleware",
    "tenants.middleware.SuspendedTenantMiddleware",
    "tenants.middleware.TenantTimeZoneMiddleware",
    "apps.core.middleware.NoStoreJsonMiddleware",
    "csp.middleware.CSPMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # The staff's language: their choice (the header's switch, a cookie), else the browser's.
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "apps.accounts.middleware.SessionIdleTimeoutMiddleware",
    # Last, as django-axes asks: it turns a locked-out sign-in into the lockout answer.
    "axes.middleware.AxesMiddleware",
]

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
                "apps.consults.context_processors.worklist_badge",
            ],
            "builtins": ["apps.core.templatetags.text_safety"],
        },
    },
]

WSGI_APPLICATION = "config.wsgi.application"

DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", embedded.database_url()),
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60),
        # django-tenants' backend, keeping a connection's search_path across requests (tenants/postgresql_backend).
        engine="tenants.postgresql_backend",
    )
}
# Let the archive's index statements (apps.archive.services.indexing, `prepare=True`) be prepared
# once per connection; Django's own queries use client-side binding and are never prepared.
DATABASES["default"].setdefault("OPTIONS", {})["prepare_threshold"] = 5
# A connection broken by a database restart is noticed before a request uses it, not by a 500
# (on a request, its first statement is the check: tenants.selectors.tenant_for_domain).
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
# Bounded waits: no connect, statement or lock wait runs forever, and a process frozen inside a
# transaction loses its locks (the archive's per-study lock among them) after a minute.
DATABASES["default"]["OPTIONS"].setdefault("connect_timeout", env_int("DATABASE_CONNECT_TIMEOUT_SECONDS", 5))
DATABASES["default"]["OPTIONS"].setdefault("options", " ".join([
    f"-c statement_timeout={env_int('DATABASE_STATEMENT_TIMEOUT_SECONDS', 300) * 1000}",
    f"-c lock_timeout={env_int('DATABASE_LOCK_TIMEOUT_SECONDS', 30) * 1000}",
    f"-c idle_in_transaction_session_timeout={env_int('DATABASE_IDLE_IN_TRANSACTION_TIMEOUT_SECONDS', 60) * 1000}",
]))
DATABASE_ROUTERS = ["django_tenants.routers.TenantSyncRouter"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "accounts.User"
# django-axes first: it refuses a locked account or address before the password is checked.
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
# Run by apps.accounts.services.password_check on every path that sets a password (API included).
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
     "OPTIONS": {"min_length": env_int("PASSWORD_MIN_LENGTH", 10)}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "/accounts/login/"
# Sign-in throttling (django-axes, docs/security.md "Sign-in, passwords and sessions"): after
# LOGIN_FAILURE_LIMIT failed sign-ins for one user name (from any address), or from one address
# (for any user name), within LOGIN_LOCKOUT_MINUTES, sign-in is refused until that window has passed.
AXES_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("LOGIN_LOCKOUT_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
# A success must not clear the count: it would clear every failure from the same address, so one
# valid account would let an attacker keep guessing another account's password.
AXES_RESET_ON_SUCCESS = False
AXES_CLIENT_IP_CALLABLE = "apps.core.requests.client_ip"
AXES_LOCKOUT_CALLABLE = "apps.accounts.lockout.sign_in_locked_response"
# Successful sign-ins are not kept in a second log; failures are what the lockout needs.
AXES_DISABLE_ACCESS_LOG = True
# A staff session ends after this long without a request (apps.accounts.middleware).
SESSION_IDLE_TIMEOUT_SECONDS = env_int("SESSION_IDLE_TIMEOUT_SECONDS", 30 * 60)
LOGIN_REDIRECT_URL = "/"
# Without it, LogoutView renders registration/logged_out.html, which no installed app provides (500).
LOGOUT_REDIRECT_URL = "/accounts/login/"

LANGUAGE_CODE = "en"
# The patient film page speaks the browser's language among these (apps.films.patient_views).
LANGUAGES = [("en", "English"), ("zh-hans", "简体中文")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
# Static files are served by WhiteNoise straight from the apps' folders (WHITENOISE_USE_FINDERS), so
# no collectstatic step is needed; STATIC_ROOT only for a deployment that collects them anyway.
STATIC_ROOT = env_str("STATIC_ROOT") or None
WHITENOISE_USE_FINDERS = True
# Browser libraries installed by npm from the root package.json (infra/node.sh; node_modules is not
# committed), served same-origin as /static/vendor/<library>/ so the CSP's script-src 'self' holds.
STATICFILES_DIRS = [("vendor/tus-js-client", BASE_DIR / "node_modules" / "tus-js-client" / "dist")]

# The diagnostic viewer (docs/viewer.md): OHIF's shipped build as pinned in package.json and installed
# by infra/viewer.sh. Its assets are served at the root of every domain (the build names them by
# absolute paths); its page and configuration under /viewer/ on tenant domains (apps.viewer).
VIEWER_PIN = json.loads((BASE_DIR / "package.json").read_text())["viewer"]
VIEWER_DIST_DIR = env_str("VIEWER_DIST_DIR") or str(
    BASE_DIR / ".viewer" / f"{VIEWER_PIN['package'].lstrip('@').replace('/', '-')}-{VIEWER_PIN['version']}" / "dist")
WHITENOISE_ROOT = VIEWER_DIST_DIR if os.path.isdir(VIEWER_DIST_DIR) else None
# Content-hashed names never change content, so they are cached for a year (WhiteNoise's "immutable"):
# OHIF's chunks `<id>.bundle.<16 hex>.js` and wasm `<16 hex>.wasm`, Django's hashed statics' 12 hex.
WHITENOISE_IMMUTABLE_FILE_TEST = r"(?:^|[./])[0-9a-f]{12,}\.[a-z0-9]+$"

# Pages load scripts only from this origin or inline with the response's nonce; nothing may frame
# them. JSON and DICOMweb answers are not documents and get no policy (docs/security.md).
CONTENT_SECURITY_POLICY = {
    "EXCLUDE_URL_PREFIXES": ["/dicomweb/", "/api/v1/"],
    "DIRECTIVES": {
        "default-src": [csp_constants.SELF],
        "script-src": [csp_constants.SELF, csp_constants.NONCE],
        "style-src": [csp_constants.SELF, csp_constants.UNSAFE_INLINE],
        "img-src": [csp_constants.SELF, "data:", "blob:"],
        "connect-src": [csp_constants.SELF],
        "object-src": [csp_constants.NONE],
        "base-uri": [csp_constants.SELF],
        "form-action": [csp_constants.SELF],
        "frame-ancestors": [csp_constants.NONE],
    },
}

# --- API -------------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "apps.accounts.authentication.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["apps.accounts.permissions.HasAllowedRole"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["apps.core.parsers.JSONParser"],
    "DEFAULT_SCHEMA_CLASS": "apps.core.openapi.ApiAutoSchema",
    "DEFAULT_PAGINATION_CLASS": "apps.core.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 100,
    "EXCEPTION_HANDLER": "apps.core.errors.api_exception_handler",
    "UNAUTHENTICATED_USER": None,
    # DRF throttles find the client by the same rule as apps.core.requests.client_ip.
    "NUM_PROXIES": TRUSTED_PROXY_HOPS,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Imaging Cloud API",
    "DESCRIPTION": "Multi-tenant medical imaging: archive, consults, AI, cloud film.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    # Swagger UI and ReDoc from drf-spectacular-sidecar: /api/docs/ works without internet access.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}
API_TOKEN_DEFAULT_LIFETIME = timedelta(days=env_int("API_TOKEN_LIFETIME_DAYS", 90))
# A token issued by a browser session lives at most this long, whatever lifetime was asked for: a
# borrowed or hijacked session must not turn into months of API access.
SESSION_TOKEN_MAX_LIFETIME = timedelta(hours=env_int("SESSION_TOKEN_MAX_LIFETIME_HOURS", 12))

# DICOMweb viewers (OHIF) run on other origins and send Bearer tokens, never cookies.
CORS_ALLOW_ALL_ORIGINS = env_bool("CORS_ALLOW_ALL_ORIGINS", True)
CORS_ALLOW_CREDENTIALS = False
CORS_EXPOSE_HEADERS = ["Content-Type", "Content-Length", "Warning", "Content-Range", "Accept-Ranges", "ETag"]
# Headers DICOMweb viewers send on cross-origin requests, beyond django-cors-headers' defaults.
CORS_ALLOW_HEADERS = [
    "accept", "authorization", "content-type", "user-agent", "x-csrftoken", "x-requested-with",
    "range", "if-none-match", "if-range", "cache-control", "idempotency-key",
]

# --- Storage ----------------------------------------------------------------------------------------
STORAGE_BACKEND = env_str("STORAGE_BACKEND", "filesystem")
STORAGE_ROOT = env_str("STORAGE_ROOT", str(embedded.OBJECTS_DIR))
# Filesystem backend: fsync each object before it is indexed (see FilesystemObjectStore).
STORAGE_FSYNC = env_bool("STORAGE_FSYNC", True)
# Health and outages (apps.operations.health, apps.core.outages).
READINESS_CHECK_TIMEOUT_SECONDS = float(env_str("READINESS_CHECK_TIMEOUT_SECONDS", "2"))
READINESS_MIN_FREE_DISK_PERCENT = float(env_str("READINESS_MIN_FREE_DISK_PERCENT", "5"))
OUTAGE_RETRY_AFTER_SECONDS = env_int("OUTAGE_RETRY_AFTER_SECONDS", 5)
# The longest lifetime a presigned download URL may have, whatever its caller asks for.
STORAGE_PRESIGNED_URL_MAX_SECONDS = env_int("STORAGE_PRESIGNED_URL_MAX_SECONDS", 3600)
S3_ENDPOINT_URL = env_str("S3_ENDPOINT_URL") or None
S3_ACCESS_KEY_ID = env_str("S3_ACCESS_KEY_ID") or None
S3_SECRET_ACCESS_KEY = env_str("S3_SECRET_ACCESS_KEY") or None
S3_BUCKET = env_str("S3_BUCKET", "imaging-cloud")
S3_REGION = env_str("S3_REGION", "us-east-1")
# Dedicated-cloud tenants get their own bucket named <prefix><slug>.
S3_DEDICATED_BUCKET_PREFIX = env_str("S3_DEDICATED_BUCKET_PREFIX", "imaging-cloud-")

# --- Celery -----------------------------------------------------------------------------------------
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", embedded.broker_url())
CELERY_RESULT_BACKEND = env_str("CELERY_RESULT_BACKEND") or None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "workflow"
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
# Longer than any task runs, so a slow task is not delivered twice while still running.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 3 * 3600)}
CELERY_TASK_ALWAYS_EAGER = False
# The hand-off to workers goes through the task outbox (tenants.outbox, docs/architecture.md):
# a request publishes once after its commit; the relay (`manage.py outbox_relay`) publishes again
# what is still unsent OUTBOX_RELAY_AFTER_SECONDS later, with a doubling wait between failed tries
# up to OUTBOX_RELAY_BACKOFF_MAX_SECONDS, and removes sent rows after OUTBOX_KEEP_SENT_HOURS.
OUTBOX_RELAY_AFTER_SECONDS = env_int("OUTBOX_RELAY_AFTER_SECONDS", 10)
OUTBOX_RELAY_INTERVAL_SECONDS = env_int("OUTBOX_RELAY_INTERVAL_SECONDS", 1)
OUTBOX_RELAY_BATCH_SIZE = env_int("OUTBOX_RELAY_BATCH_SIZE", 500)
OUTBOX_RELAY_BACKOFF_MAX_SECONDS = env_int("OUTBOX_RELAY_BACKOFF_MAX_SECONDS", 300)
OUTBOX_KEEP_SENT_HOURS = env_int("OUTBOX_KEEP_SENT_HOURS", 24)

# The DIMSE listener (`manage.py dimse_serve`, process role `dimse`, docs/dimse.md): one port for
# every tenant, which the called AE title picks; DIMSE_BIND_ADDRESS is the interface it listens on.
DIMSE_PORT = env_int("DIMSE_PORT", 11112)
DIMSE_BIND_ADDRESS = env_str("DIMSE_BIND_ADDRESS", "0.0.0.0")
# Seconds an association may wait for the peer's next message (pynetdicom's ACSE, DIMSE and network
# timeouts) before it is aborted, so a modality that vanished does not hold a thread forever.
DIMSE_TIMEOUT_SECONDS = env_int("DIMSE_TIMEOUT_SECONDS", 60)
# Associations served at once (each a thread with a database connection); one more is rejected
# transient, local limit exceeded (PS3.8 §9.3.4), and the modality retries.
DIMSE_MAX_ASSOCIATIONS = env_int("DIMSE_MAX_ASSOCIATIONS", 20)
CELERY_BEAT_SCHEDULE: dict[str, dict] = {
    "audit-heartbeat": {"task": "apps.operations.tasks.beat_heartbeat", "schedule": 300.0},
    # Finds studies that received no instance for STUDY_STABLE_SECONDS, per tenant.
    "archive-stable-studies": {"task": "apps.archive.tasks.stable_studies_dispatch", "schedule": 10.0},
    # Purges deleted studies and series whose retention window has passed, per tenant.
    "archive-deleted-purge": {"task": "apps.archive.tasks.deleted_purge_dispatch", "schedule": 3600.0},
    # Evicts the least recently used rendered images of tenants over RENDERED_CACHE_MAX_BYTES_PER_TENANT.
    "archive-rendered-cache-evict": {"task": "apps.archive.tasks.rendered_cache_evict_dispatch", "schedule": 600.0},
    # Expires upload sessions idle for UPLOAD_SESSION_IDLE_EXPIRY_SECONDS and deletes their staged bytes.
    "uploads-idle-sessions-expire": {"task": "apps.uploads.tasks.upload_sessions_expire_dispatch", "schedule": 900.0},
    # Flags open consults past their SLA due time and tells the hospital's coordinators.
    "consults-flag-overdue": {"task": "apps.consults.tasks.consults_flag_overdue", "schedule": 60.0},
    # Sends again the run messages of AI jobs dispatched AI_UNCLAIMED_RESEND_SECONDS ago and never claimed.
    "ai-unclaimed-jobs-resend": {"task": "apps.ai.tasks.ai_unclaimed_jobs_resend",
                                 "schedule": float(env_int("AI_JOBS_RESEND_EVERY_SECONDS", 300))},
    # Films still queued or running FILM_STALLED_SECONDS after their request: rendered again, or failed.
    "films-reconcile": {"task": "apps.films.tasks.films_reconcile_task",
                        "schedule": float(env_int("FILMS_RECONCILE_EVERY_SECONDS", 120))},
    # Upload sessions processing with no progress for UPLOAD_PROCESSING_STALLED_SECONDS: processed again.
    "uploads-resume-stalled": {"task": "apps.uploads.tasks.upload_sessions_resume_stalled",
                               "schedule": float(env_int("UPLOADS_RESUME_STALLED_EVERY_SECONDS", 120))},
    # Removes stored objects no index row names, older than STORAGE_ORPHAN_MIN_AGE_SECONDS, per tenant.
    "storage-orphans-collect": {
        "task": "apps.archive.tasks.orphaned_objects_collect_dispatch",
        "schedule": float(env_int("STORAGE_ORPHAN_COLLECT_INTERVAL_SECONDS", 6 * 3600)),
    },
}
# AI jobs (docs/ai.md): at most AI_TENANT_MAX_RUNNING_JOBS of one tenant run at once (later ones
# wait AI_DEFER_SECONDS and ask again); a failed run is tried AI_JOB_MAX_ATTEMPTS times; a run
# message nobody claimed for AI_UNCLAIMED_RESEND_SECONDS is sent again. External engines call back on
# AI_PLATFORM_URL_TEMPLATE, where {domain} is the tenant's primary domain.
AI_TENANT_MAX_RUNNING_JOBS = env_int("AI_TENANT_MAX_RUNNING_JOBS", 1)
AI_DEFER_SECONDS = env_float("AI_DEFER_SECONDS", 1.0)
AI_JOB_MAX_ATTEMPTS = env_int("AI_JOB_MAX_ATTEMPTS", 3)
AI_UNCLAIMED_RESEND_SECONDS = env_float("AI_UNCLAIMED_RESEND_SECONDS", 900.0)
AI_PLATFORM_URL_TEMPLATE = env_str("AI_PLATFORM_URL_TEMPLATE", "https://{domain}")
# Reconciliation sweeps (docs/operations.md, "Recovery").
FILM_STALLED_SECONDS = env_int("FILM_STALLED_SECONDS", 300)
FILM_GIVE_UP_SECONDS = env_int("FILM_GIVE_UP_SECONDS", 3600)
UPLOAD_PROCESSING_STALLED_SECONDS = env_int("UPLOAD_PROCESSING_STALLED_SECONDS", 300)
# Storage hygiene (apps.archive.services.storage_recovery): an object no index row names is removed
# only once older than this (an ingest writes its objects before its index commits), and no stored
# instance at all while more than STORAGE_ORPHAN_MAX_UNREFERENCED_INSTANCES are due (a lost index).
STORAGE_ORPHAN_MIN_AGE_SECONDS = env_int("STORAGE_ORPHAN_MIN_AGE_SECONDS", 24 * 3600)
STORAGE_ORPHAN_MAX_UNREFERENCED_INSTANCES = env_int("STORAGE_ORPHAN_MAX_UNREFERENCED_INSTANCES", 1000)
# A running AI job is taken for lost with its worker this long after its engine's time-out.
AI_LOST_ATTEMPT_GRACE_SECONDS = env_int("AI_LOST_ATTEMPT_GRACE_SECONDS", 60)

# --- Consults ---------------------------------------------------------------------------------------
# Minutes from submission to the report being due, per priority (a referral link may override them).
CONSULT_SLA_MINUTES = {"stat": 60, "urgent": 240, "routine": 1440}
# How long the hospital keeps read access to a consult's studies after the consult closes.
CONSULT_GRANT_GRACE_SECONDS = env_int("CONSULT_GRANT_GRACE_SECONDS", 3600)
# Largest file a consult may carry as an attachment (a referral letter, a prior report).
CONSULT_ATTACHMENT_MAX_BYTES = env_int("CONSULT_ATTACHMENT_MAX_BYTES", 20 * 1024 * 1024)
# Webhook deliveries: attempts before a delivery is marked failed, and the first retry delay
# (doubling after each failed attempt).
WEBHOOK_MAX_ATTEMPTS = env_int("WEBHOOK_MAX_ATTEMPTS", 6)
WEBHOOK_RETRY_BASE_SECONDS = env_int("WEBHOOK_RETRY_BASE_SECONDS", 10)
# Webhooks reach only public addresses; an on-premises deployment lists the private networks
# (comma-separated CIDRs, e.g. "10.20.0.0/16,fd12:3456::/48") its tenants' receivers live on.
# Parsed here so a typo stops the process at start rather than failing deliveries later.
WEBHOOK_ALLOWED_NETWORKS = [
    str(ipaddress.ip_network(network, strict=False)) for network in env_list("WEBHOOK_ALLOWED_NETWORKS", [])
]

# --- Logging ----------------------------------------------------------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    # No film token or query value in a log line, e.g. Django's "Forbidden: /film/<token>" warnings.
    "filters": {"redact_urls": {"()": "apps.core.log_redaction.RedactUrlsFilter"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["redact_urls"]}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

# --- Tenancy ----------------------------------------------------------------------------------------
# Tenants without an explicit domain are served on <slug>.<TENANT_BASE_DOMAIN>.
TENANT_BASE_DOMAIN = env_str("TENANT_BASE_DOMAIN", "localhost")
PLATFORM_DOMAIN = env_str("PLATFORM_DOMAIN", "localhost")

# --- Uploads (browser and zip) ---------------------------------------------------------------------
UPLOAD_MAX_FILE_BYTES = env_int("UPLOAD_MAX_FILE_BYTES", 4 * 1024**3)
UPLOAD_ZIP_MAX_MEMBERS = env_int("UPLOAD_ZIP_MAX_MEMBERS", 20_000)
UPLOAD_ZIP_MAX_EXPANDED_BYTES = env_int("UPLOAD_ZIP_MAX_EXPANDED_BYTES", 20 * 1024**3)
# An upload session still open with no file received for this long is expired by a periodic sweep
# and its staged bytes deleted; until then they count toward the storage quota.
UPLOAD_SESSION_IDLE_EXPIRY_SECONDS = env_int("UPLOAD_SESSION_IDLE_EXPIRY_SECONDS", 24 * 3600)

# --- Archive and DICOMweb ----------------------------------------------------------------------------
# STOW-RS: a request body over STOW_MAX_BODY_BYTES is answered 413 (nothing stored); one part over
# STOW_MAX_PART_BYTES fails with 0xA700. Parts up to STOW_SPOOL_MEMORY_BYTES are held in memory while
# being checked, larger ones in a temporary file (so memory stays flat in the request size).
STOW_MAX_BODY_BYTES = env_int("STOW_MAX_BODY_BYTES", 20 * 1024**3)
STOW_MAX_PART_BYTES = env_int("STOW_MAX_PART_BYTES", 4 * 1024**3)
STOW_SPOOL_MEMORY_BYTES = env_int("STOW_SPOOL_MEMORY_BYTES", 16 * 1024**2)
# An instance without Patient ID is refused (0xA900) unless the archive assigns one per study.
ARCHIVE_ASSIGN_MISSING_PATIENT_ID = env_bool("ARCHIVE_ASSIGN_MISSING_PATIENT_ID", False)
# Deleted studies and series stay restorable (hidden) this long before their objects are purged.
DELETE_RETENTION_DAYS = env_int("DELETE_RETENTION_DAYS", 30)
# A study is "stable" once no new instance has arrived for this long (AI routing, auto-consults).
STUDY_STABLE_SECONDS = env_int("STUDY_STABLE_SECONDS", 60)
# QIDO-RS answers at most this many results per request (PS3.18 §8.3.4.4 limit/offset pages).
QIDO_MAX_RESULTS = env_int("QIDO_MAX_RESULTS", 1000)
# Rendered frames and thumbnails are cached in the tenant's storage and in each process's memory.
RENDERED_MEMORY_CACHE_BYTES = env_int("RENDERED_MEMORY_CACHE_BYTES", 64 * 1024**2)
# Canonical renders kept in a tenant's storage are held under this many bytes (least recently used
# evicted first, by a task); 0 keeps none in storage. They count toward the storage quota.
RENDERED_CACHE_MAX_BYTES_PER_TENANT = env_int("RENDERED_CACHE_MAX_BYTES_PER_TENANT", 2 * 1024**3)
# Once a study is stable, an ingest worker renders each image as a plain /rendered request asks for it,
# so a viewer's first look at a frame is a cache hit.
ARCHIVE_WARM_RENDERED_FRAMES = env_bool("ARCHIVE_WARM_RENDERED_FRAMES", True)

# --- Cloud film --------------------------------------------------------------------------------------
FILM_LINK_VALID_DAYS = env_int("FILM_LINK_VALID_DAYS", 30)
FILM_ACCESS_CODE_DIGITS = 6
# Wrong codes are counted per link (docs/films.md): FILM_LINK_MAX_ATTEMPTS of them lock the link for
# FILM_LINK_LOCK_MINUTES, doubling with each lockout; the FILM_LINK_MAX_LOCKOUTS-th lockout is for good
# (the clinic is told and issues a new link).
FILM_LINK_MAX_ATTEMPTS = env_int("FILM_LINK_MAX_ATTEMPTS", 5)
FILM_LINK_LOCK_MINUTES = env_int("FILM_LINK_LOCK_MINUTES", 15)
FILM_LINK_MAX_LOCKOUTS = env_int("FILM_LINK_MAX_LOCKOUTS", 4)
# Per client address, wrong codes only slow answers down, never refuse them (many patients can share
# one address): past FILM_CODE_DELAY_AFTER_FAILURES wrong codes in 15 minutes from one address, each
# further attempt from it waits FILM_CODE_DELAY_STEP_MILLISECONDS more, up to FILM_CODE_MAX_DELAY_MILLISECONDS.
FILM_CODE_DELAY_AFTER_FAILURES = env_int("FILM_CODE_DELAY_AFTER_FAILURES", 10)
FILM_CODE_DELAY_STEP_MILLISECONDS = env_int("FILM_CODE_DELAY_STEP_MILLISECONDS", 250)
FILM_CODE_MAX_DELAY_MILLISECONDS = env_int("FILM_CODE_MAX_DELAY_MILLISECONDS", 3000)
FILM_SESSION_MINUTES = env_int("FILM_SESSION_MINUTES", 120)
# Where patients open links: the platform's public domain. Without a port here, a link carries the
# port the issuing request came in on when it is not the scheme's default (e.g. :8000 in the demo).
FILM_LINK_HOST = env_str("FILM_LINK_HOST", PLATFORM_DOMAIN)
FILM_LINK_HTTPS = env_bool("FILM_LINK_HTTPS", False)
# Dotted path of the SMS sender class; the default logs (masked number, no content) and sends nothing.
FILM_SMS_SENDER = env_str("FILM_SMS_SENDER", "apps.films.services.LoggingSmsSender")
