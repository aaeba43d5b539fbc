"""CareHub settings, read from the environment.

Every variable is listed in `.env.example` and the README. The tiny typed helpers below fail
loudly on a value they cannot parse instead of silently falling back to a default.
"""

import os
from pathlib import Path

import csp.constants as csp
import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_str(name: str, default: str | None = None) -> str:
    value = os.environ.get(name, default)
    if value is None:
        raise ImproperlyConfigured(f"Environment variable {name} is required")
    return value


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    lowered = raw.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name}={raw!r} is not a boolean (use true/false)")


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not an integer") from None


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_bool("DEBUG", False)

_DEV_SECRET = "carehub-insecure-development-key-never-use-in-production"  # noqa: S105
if not DEBUG and not os.environ.get("SECRET_KEY"):
    raise ImproperlyConfigured(
        "Environment variable SECRET_KEY is required when DEBUG is off "
        "(for development run through make, or set DEBUG=true)"
    )
SECRET_KEY = env_str("SECRET_KEY", _DEV_SECRET)
if not DEBUG and SECRET_KEY == _DEV_SECRET:
    raise ImproperlyConfigured("SECRET_KEY must be set to a real secret when DEBUG is off")

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost" if DEBUG else "")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "carehub.admin_apps.CareHubAdminConfig",  # Django's admin with a second factor at sign-in
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "simple_history",
    "guardian",
    "axes",
    "django_q",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "carehub",
    "patients",
    "audit",
    "gaps",
    "consent",
    "outreach",
    "worklists",
    "metrics",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "carehub.middleware.PermissionsPolicyMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "carehub.middleware.SessionLifetimeMiddleware",
    "carehub.middleware.SecondFactorRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",
    "carehub.middleware.NoStoreForAuthenticatedMiddleware",
    # Axes must be last: it turns a lockout raised by the backend into a response.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "carehub.urls"
WSGI_APPLICATION = "carehub.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "carehub" / "templates"],
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

DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 0),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The django-q2 cluster and the web server write to the same file; wait instead of failing.
    DATABASES["default"].setdefault("OPTIONS", {})["timeout"] = 20

# Two PostgreSQL roles (README "Two database roles"): DATABASE_URL is the application's
# restricted role; MIGRATION_DATABASE_URL the owner's login to the same database, used by
# `migrate`, `flush` and `create_app_role` (carehub/db_roles.py).
MIGRATION_DATABASE = None
if env_str("MIGRATION_DATABASE_URL", ""):
    MIGRATION_DATABASE = dj_database_url.parse(env_str("MIGRATION_DATABASE_URL"))
    _app_database = DATABASES["default"]
    if not all("postgresql" in db["ENGINE"] for db in (MIGRATION_DATABASE, _app_database)):
        raise ImproperlyConfigured(
            "MIGRATION_DATABASE_URL is for PostgreSQL: DATABASE_URL and MIGRATION_DATABASE_URL "
            "must both be postgres:// URLs"
        )
    if MIGRATION_DATABASE["NAME"] != _app_database["NAME"]:
        raise ImproperlyConfigured(
            "MIGRATION_DATABASE_URL must name the same database as DATABASE_URL "
            f"({MIGRATION_DATABASE['NAME']!r} is not {_app_database['NAME']!r})"
        )
    # The application's login, kept apart: the owner's replaces it while migrate runs.
    APP_DATABASE_CREDENTIALS = {
        key: _app_database.get(key) for key in ("USER", "PASSWORD", "HOST", "PORT")
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "carehub.User"

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
    "guardian.backends.ObjectPermissionBackend",
]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 12},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "var" / "static"
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(BASE_DIR / "var" / "media")))

# HIPAA automatic logoff: the session expires after 15 idle minutes; every request renews it.
SESSION_COOKIE_AGE = env_int("SESSION_IDLE_SECONDS", 15 * 60)
SESSION_SAVE_EVERY_REQUEST = True
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
SESSION_COOKIE_HTTPONLY = True
# Whatever the activity, a session ends 12 hours after sign-in (carehub.sessions).
CAREHUB_SESSION_MAX_SECONDS = env_int("SESSION_MAX_SECONDS", 12 * 60 * 60)

# Second factor for staff (carehub.two_factor): the name authenticator apps show, and device
# secrets never shown in admin after enrolment.
OTP_TOTP_ISSUER = "CareHub"
OTP_ADMIN_HIDE_SENSITIVE_DATA = True

# Login throttling: five failures for a username from one address lock it for 15 minutes.
AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = 0.25  # hours
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_ENABLED = env_bool("AXES_ENABLED", True)
# Axes logs usernames and addresses only; keep it quiet about request bodies.
AXES_VERBOSE = False

# Client address for the PHI access log. Behind a reverse proxy set CAREHUB_TRUSTED_PROXY=true so
# the first X-Forwarded-For hop is used; otherwise the header is client-controlled and ignored.
CAREHUB_TRUSTED_PROXY = env_bool("CAREHUB_TRUSTED_PROXY", False)

# Reverting from history would bypass services and reasons; corrections are new changes.
SIMPLE_HISTORY_REVERT_DISABLED = True
SIMPLE_HISTORY_EDIT = False
# Reasons are what auditors read; simple-history would cut them at 100 characters (and on
# PostgreSQL refuse a longer one with an error), so they are stored whole.
SIMPLE_HISTORY_HISTORY_CHANGE_REASON_USE_TEXT_FIELD = True

GUARDIAN_RAISE_403 = True
ANONYMOUS_USER_NAME = None  # no anonymous object permissions: PHI needs a real user

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": [
        "rest_framework.permissions.IsAuthenticated",
        "carehub.permissions.ModelPermissions",
    ],
    "DEFAULT_PAGINATION_CLASS": "carehub.pagination.IdCursorPagination",
    "EXCEPTION_HANDLER": "carehub.api.exception_handler",
    "DEFAULT_PARSER_CLASSES": [
        "carehub.api.SafeJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
}

Q_CLUSTER = {
    "name": "carehub",
    "orm": "default",
    "workers": env_int("Q_WORKERS", 2),
    "timeout": env_int("Q_TIMEOUT", 600),
    "retry": env_int("Q_RETRY", 900),
    "max_attempts": 1,
    "catch_up": False,
    # Off on worker-only machines of a scale-out: they take queued tasks (evaluation chunks)
    # and leave the schedules (sealing, sweeps, the nightly) to the main cluster.
    "scheduler": env_bool("Q_SCHEDULER", True),
    "label": "Background tasks",
}

# Production hardening: `manage.py check --deploy` reports nothing when DEBUG is off.
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_HTTPONLY = True
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31_536_000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = not DEBUG
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
# Content-Security-Policy (django-csp), in development too so the browser tests run under it:
# scripts only from our own static files (the admin has no inline script), nothing framed,
# forms post only here. Styles allow inline: Django's admin templates carry style attributes
# and a <style> block, and inline CSS cannot run code.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [csp.NONE],
        "script-src": [csp.SELF],
        "style-src": [csp.SELF, csp.UNSAFE_INLINE],
        "img-src": [csp.SELF, "data:"],
        "font-src": [csp.SELF],
        "connect-src": [csp.SELF],
        "form-action": [csp.SELF],
        "frame-ancestors": [csp.NONE],
        "base-uri": [csp.NONE],
        "object-src": [csp.NONE],
    }
}
# Browser features a back office never uses, refused for the page and anything it embeds.
PERMISSIONS_POLICY = (
    "accelerometer=(), camera=(), display-capture=(), geolocation=(), gyroscope=(), "
    "magnetometer=(), microphone=(), midi=(), payment=(), usb=()"
)
X_FRAME_OPTIONS = "DENY"
if CAREHUB_TRUSTED_PROXY:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# Error reports must not carry PHI: no request bodies, no local variables.
DEFAULT_EXCEPTION_REPORTER_FILTER = "carehub.logging.PhiSafeExceptionReporterFilter"
ADMINS = [("Operations", addr) for addr in env_list("ADMIN_EMAILS")]
EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {
        # Request logs would print query strings, which can hold names or MRNs typed in search.
        "django.server": {"level": "WARNING"},
        "django.request": {"level": "ERROR"},
    },
}

# DEQM has no "excluded" gap status; clients take excluded patients as one of these two.
CAREHUB_DEQM_EXCLUDED_AS = env_str("CAREHUB_DEQM_EXCLUDED_AS", "not-applicable")
if CAREHUB_DEQM_EXCLUDED_AS not in {"not-applicable", "closed-gap"}:
    raise ImproperlyConfigured(
        f"CAREHUB_DEQM_EXCLUDED_AS={CAREHUB_DEQM_EXCLUDED_AS!r}: use not-applicable or closed-gap"
    )

# Country assumed for phone numbers written without a country code (ISO 3166 alpha-2).
CAREHUB_PHONE_REGION = env_str("CAREHUB_PHONE_REGION", "US")
# How long a patient's self-service preferences link stays valid.
CAREHUB_SELF_SERVICE_LINK_HOURS = env_int("CAREHUB_SELF_SERVICE_LINK_HOURS", 168)

# Evidence attachments (PDF, PNG, JPEG, text) and uploaded gap lists: largest accepted size.
CAREHUB_EVIDENCE_MAX_BYTES = env_int("CAREHUB_EVIDENCE_MAX_BYTES", 10 * 1024 * 1024)
CAREHUB_GAP_LIST_MAX_BYTES = env_int("CAREHUB_GAP_LIST_MAX_BYTES", 20 * 1024 * 1024)

CAREHUB_SYSTEM_USERNAME = "carehub-system"
CAREHUB_DEMO_PASSWORD = env_str("CAREHUB_DEMO_PASSWORD", "carehub-demo")

# Outreach: the backend of each channel (outreach.backends); the defaults store and log.
CAREHUB_OUTREACH_BACKENDS = {
    "portal": env_str("CAREHUB_PORTAL_BACKEND", "outreach.backends.store.PortalStoreBackend"),
    "sms": env_str("CAREHUB_SMS_BACKEND", "outreach.backends.store.SmsStoreBackend"),
    "email": env_str(
        "CAREHUB_EMAIL_OUTREACH_BACKEND", "outreach.backends.email.DjangoEmailBackend"
    ),
    "voice": env_str("CAREHUB_VOICE_BACKEND", "outreach.backends.store.VoiceStoreBackend"),
    "letter": env_str("CAREHUB_LETTER_BACKEND", "outreach.backends.store.LetterBatchBackend"),
}
CAREHUB_OUTREACH_FROM_EMAIL = env_str("CAREHUB_OUTREACH_FROM_EMAIL", "outreach@carehub.local")
CAREHUB_SMTP_TIMEOUT = env_int("CAREHUB_SMTP_TIMEOUT", 30)
# An attempt still `sending` this long after it was claimed becomes `unknown` (a person checks).
CAREHUB_OUTREACH_SENDING_TIMEOUT_SECONDS = env_int("CAREHUB_OUTREACH_SENDING_TIMEOUT_SECONDS", 900)
# The SMS gateway signs its webhooks with this secret (HMAC-SHA256 of the body); empty refuses all.
CAREHUB_SMS_WEBHOOK_SECRET = env_str("CAREHUB_SMS_WEBHOOK_SECRET", "")
# The address patients reach CareHub at (for the self-service link sent in a message).
CAREHUB_PUBLIC_URL = env_str("CAREHUB_PUBLIC_URL", "http://127.0.0.1:8000")
