"""Runboard settings: one file, configured by environment variables (see .env.example)."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.utils.csp import CSP

BASE_DIR = Path(__file__).resolve().parent.parent


TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
FALSE_WORDS = frozenset({"0", "false", "no", "off"})


def env_bool(name: str, default: bool) -> bool:
    """A yes/no variable; a word that is neither (a typo) stops the start, never reads as no."""
    value = os.environ.get(name, "").strip().lower()
    if not value:
        return default
    if value not in TRUE_WORDS | FALSE_WORDS:
        raise ImproperlyConfigured(
            f"{name}={os.environ[name]!r} is neither yes nor no: use one of "
            f"{', '.join(sorted(TRUE_WORDS | FALSE_WORDS))}."
        )
    return value in TRUE_WORDS


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_bool("DEBUG", False)

SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off.")
    SECRET_KEY = "django-insecure-runboard-development-only"

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost" if DEBUG else "")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.postgres",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_htmx",
    "django_tasks_db",
    "axes",
    # django-ninja: the API under /api/v1/; installed so its docs use its bundled static files.
    "ninja",
    "runs",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Last, as django-axes asks: it turns a locked-out login into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "dashboard.urls"
WSGI_APPLICATION = "dashboard.wsgi.application"

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
            ],
        },
    },
]

# The embedded default is an SQLite file that a web process and a worker share: WAL lets
# readers run beside the writer, IMMEDIATE takes the write lock up front (no deadlock on
# upgrade), and the busy timeout waits for it instead of answering "database is locked".
SQLITE_OPTIONS = {
    "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    "transaction_mode": "IMMEDIATE",
    "timeout": 20,
}
DATA_DIR = Path(os.environ.get("RUNBOARD_DATA_DIR", BASE_DIR / "var"))
DATABASES = {
    "default": dj_database_url.config(
        default=f"sqlite:///{DATA_DIR / 'runboard.sqlite3'}", conn_health_checks=True
    )
}
# A server database keeps its connection between requests (opening one costs more than most
# pages); the health check replaces one the server dropped. SQLite opens for free.
DATABASES["default"]["CONN_MAX_AGE"] = int(
    os.environ.get("CONN_MAX_AGE", "0" if "sqlite3" in DATABASES["default"]["ENGINE"] else "60")
)
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"].setdefault("OPTIONS", {}).update(SQLITE_OPTIONS)
    DATABASES["default"].setdefault("TEST", {})
    DATA_DIR.mkdir(parents=True, exist_ok=True)

# Per process, in memory: history pages drawn once per revision of the history (runs.views.
# history), about 50 KB each: 500 of them hold a process to about 25 MB. The page frame's head
# and links (templates/base.html) are kept here too: per process, so each deploy's processes
# name their own static files.
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
        "OPTIONS": {"MAX_ENTRIES": 500},
    }
}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# Mail leaves only through a server named by EMAIL_HOST; without one there is no mailer, so
# no password reset either (dashboard.urls), and nothing tries localhost:25.
MAILERS = {}
SILENCED_SYSTEM_CHECKS = []
if not os.environ.get("EMAIL_HOST"):
    SILENCED_SYSTEM_CHECKS.append("mail.W001")  # no default mailer: that is the intent
else:
    MAILERS["default"] = {
        "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "OPTIONS": {
            "host": os.environ["EMAIL_HOST"],
            "port": int(os.environ.get("EMAIL_PORT", "587")),
            "username": os.environ.get("EMAIL_HOST_USER", ""),
            "password": os.environ.get("EMAIL_HOST_PASSWORD", ""),
            "use_tls": env_bool("EMAIL_USE_TLS", True),
        },
    }
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "runboard@localhost")

# Login throttling (django-axes): after AXES_FAILURE_LIMIT failed logins for one user name, or
# from one address, that user or address is refused for the cool-off (each new try while locked
# starts it again). A success resets the count; `manage.py axes_reset` unlocks everyone now.
# The address is REMOTE_ADDR: behind a proxy that is the proxy's (see README).
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = int(os.environ.get("LOGIN_FAILURE_LIMIT", "5"))
AXES_COOLOFF_TIME = timedelta(minutes=int(os.environ.get("LOGIN_COOLOFF_MINUTES", "15")))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/lockout.html"

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "runs:overview"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = os.environ.get("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

# A queue and a worker each (`make run` starts them): reruns never wait behind a sync pass,
# and nothing waits for a webhook receiver.
TASKS = {
    "default": {
        "BACKEND": "django_tasks_db.DatabaseBackend",
        "QUEUES": ["default", "reruns", "webhooks"],
    }
}

# Everything goes to stderr. With DEBUG off each record is one JSON line (traceback included),
# and Django's own loggers are ours: without them Django sends an unhandled error's traceback
# to ADMINS by mail only, so a production 500 would leave no trace.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "json": {"()": "dashboard.logs.JsonLineFormatter"},
        "text": {"format": "%(levelname)s %(name)s: %(message)s"},
    },
    "handlers": {
        "stderr": {
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stderr",
            "formatter": "text" if DEBUG else "json",
        }
    },
    "loggers": {
        "django": {"handlers": ["stderr"], "level": os.environ.get("DJANGO_LOG_LEVEL", "INFO")},
        "runs": {"handlers": ["stderr"], "level": os.environ.get("LOG_LEVEL", "INFO")},
        "httpx": {"handlers": ["stderr"], "level": "WARNING"},
        "axes": {"handlers": ["stderr"], "level": "WARNING"},
    },
}

# Content-Security-Policy: scripts, styles, images and forms only from this site, nothing
# inline (the templates have no inline script, style or handler; htmx is told not to inject
# its indicator style and never to eval, in base.html), no plugins, no framing.
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF],
    "style-src": [CSP.SELF],
    "img-src": [CSP.SELF, "data:"],
    "connect-src": [CSP.SELF],
    "object-src": [CSP.NONE],
    "base-uri": [CSP.NONE],
    "form-action": [CSP.SELF],
    "frame-ancestors": [CSP.NONE],
}

# Error reports (mailed to ADMINS, and the debug page once DEBUG is off) mask credentials.
DEFAULT_EXCEPTION_REPORTER_FILTER = "dashboard.reporting.CredentialFilter"

# The deployment checklist, on whenever DEBUG is off.
if not DEBUG:
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    if env_bool("TRUST_X_FORWARDED_PROTO", False):
        # Behind a TLS-terminating proxy that sets X-Forwarded-Proto.
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    if not SECURE_SSL_REDIRECT:
        # The proxy in front redirects to HTTPS; Django need not.
        SILENCED_SYSTEM_CHECKS.append("security.W008")
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", str(60 * 60 * 24 * 365)))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", True)
    SECURE_REFERRER_POLICY = "same-origin"

# Runboard's own knobs.
RUNBOARD_SYNC_INTERVAL = int(os.environ.get("RUNBOARD_SYNC_INTERVAL", "60"))
RUNBOARD_POLL_INTERVAL = int(os.environ.get("RUNBOARD_POLL_INTERVAL", "5"))
# A chain link that has not said it is alive for this long died with its worker (runs.services.
# queue); the watch chain looks this often and starts such a chain again.
RUNBOARD_CHAIN_LEASE = int(os.environ.get("RUNBOARD_CHAIN_LEASE", "120"))
# A rerun's worker renews its lease before every call; one silent this long died, and the
# watch chain hands its request to another worker (it must outlast the slowest call).
RUNBOARD_RERUN_LEASE = int(os.environ.get("RUNBOARD_RERUN_LEASE", "120"))
# How far back each sync looks again for what unknown rerun calls started.
RUNBOARD_RECONCILE_HOURS = int(os.environ.get("RUNBOARD_RECONCILE_HOURS", "24"))
RUNBOARD_HISTORY_DAYS = int(os.environ.get("RUNBOARD_HISTORY_DAYS", "30"))
RUNBOARD_HISTORY_RUNS = int(os.environ.get("RUNBOARD_HISTORY_RUNS", "200"))
RUNBOARD_HTTP_TIMEOUT = float(os.environ.get("RUNBOARD_HTTP_TIMEOUT", "10"))
# A history page drawn at one revision is served again for at most this long (runs.services.revision).
RUNBOARD_PAGE_CACHE_SECONDS = int(os.environ.get("RUNBOARD_PAGE_CACHE_SECONDS", "60"))
# Runs a sync pass or a poll fetches at once from one orchestrator; on Leapwork also the run
# items fetched at once, in one pool per client (so at most twice this many calls in flight).
RUNBOARD_FETCH_CONCURRENCY = max(1, int(os.environ.get("RUNBOARD_FETCH_CONCURRENCY", "8")))
# Calls of one rerun sent at once (Leapwork's failed-only and picked reruns: one Run Flow by Id
# per flow), and the runs they started read at once (runs.services.rerun_delivery).
RUNBOARD_RERUN_CONCURRENCY = max(1, int(os.environ.get("RUNBOARD_RERUN_CONCURRENCY", "8")))
# Writes (reruns, run-nows) one API token may send per minute; more are answered 429.
RUNBOARD_API_WRITES_PER_MINUTE = int(os.environ.get("RUNBOARD_API_WRITES_PER_MINUTE", "60"))
# Where this site is reached from outside: the links in webhook notifications start with it.
RUNBOARD_BASE_URL = os.environ.get("RUNBOARD_BASE_URL", "http://127.0.0.1:8000")
# Seconds one webhook delivery may take before it counts as failed (and is tried again later).
RUNBOARD_WEBHOOK_TIMEOUT = float(os.environ.get("RUNBOARD_WEBHOOK_TIMEOUT", "5"))
