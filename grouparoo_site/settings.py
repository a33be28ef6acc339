"""Settings for the Grouparoo successor, read from the environment (django-environ).

Every knob is typed. `SECRET_KEY` and `FIELD_ENCRYPTION_KEYS` have no default: a missing one
raises ImproperlyConfigured. `make run` writes a `.env` with freshly generated keys for a
newcomer; production sets them in the environment. See `.env.example`.
"""
from __future__ import annotations

from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
if (BASE_DIR / ".env").exists():
    environ.Env.read_env(BASE_DIR / ".env")

SECRET_KEY = env("SECRET_KEY")
DEBUG = env.bool("DEBUG", default=False)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

# Fernet keys, newest first, comma separated. Older keys still decrypt (rotation).
FIELD_ENCRYPTION_KEYS = env.list("FIELD_ENCRYPTION_KEYS")
# Pepper for API key hashes (HMAC-SHA256). Defaults to SECRET_KEY.
API_KEY_PEPPER = env("API_KEY_PEPPER", default=SECRET_KEY)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI's files served from here, not from a CDN
    "django_q",
    "connectors.apps.ConnectorsConfig",
    "core.apps.CoreConfig",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "grouparoo_site.urls"

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

WSGI_APPLICATION = "grouparoo_site.wsgi.application"

DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'var' / 'grouparoo.sqlite3'}"),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The default file lives under var/ (git-ignored); make sure its folder exists.
    _name = str(DATABASES["default"].get("NAME", ""))
    if _name and _name != ":memory:" and not _name.startswith("file:"):
        Path(_name).parent.mkdir(parents=True, exist_ok=True)
    # WAL lets the admin read while a worker writes; a busy timeout instead of "database is locked".
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "timeout": 30,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = env("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "var" / "static"
MEDIA_URL = "media/"
MEDIA_ROOT = env.path("MEDIA_ROOT", default=BASE_DIR / "var" / "media")

REST_FRAMEWORK = {
    # An API key (Authorization: Bearer grp_...) first; without one, an admin session (with CSRF).
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "core.api.authentication.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    # Every view declares its api_topic; keys need the topic's read/write, sessions staff.
    "DEFAULT_PERMISSION_CLASSES": ["core.api.permissions.HasTopicPermission"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 100,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "core.api.exceptions.exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Grouparoo API",
    "DESCRIPTION": (
        "Every concept of Grouparoo over REST. Authenticate with an API key: "
        "`Authorization: Bearer grp_<prefix>.<secret>`. Each key has per-topic read/write "
        "permissions. Errors are JSON: `{\"message\": ..., \"errors\": {field: [...]}}`."
    ),
    "VERSION": "1",
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "SERVE_INCLUDE_SCHEMA": False,
    # A self-hosted server's API docs load nothing from other hosts (air-gapped installs, CSP).
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "ObjectStateEnum": "core.choices.ObjectState",
        "RunStateEnum": "core.choices.RunState",
        "ExportStateEnum": "core.choices.ExportState",
        "RecordStateEnum": "core.choices.RecordState",
        "FilterOpEnum": "core.choices.FilterOp",
        "RuleOpEnum": "core.choices.RuleOp",
    },
}

# django-q2: the clock and the workers. Work state lives in our own tables; tasks take ids.
Q_CLUSTER = {
    "name": "grouparoo",
    "orm": "default",
    "workers": env.int("Q_WORKERS", default=2),
    "timeout": env.int("Q_TIMEOUT", default=600),
    "retry": env.int("Q_RETRY", default=900),
    "max_attempts": 3,
    "catch_up": False,
    "save_limit": 1000,
    "ack_failures": True,
    "sync": env.bool("Q_SYNC", default=False),
    "label": "Task queue",
}

# Engine knobs.
GROUPAROO_BATCH_SIZE = env.int("GROUPAROO_BATCH_SIZE", default=5000)
GROUPAROO_EXPORT_BATCH_SIZE = env.int("GROUPAROO_EXPORT_BATCH_SIZE", default=5000)
# PostgreSQL: a run reading at least this many rows sends from a separate process while it
# imports (smaller runs send from a thread); 0 never starts the process.
GROUPAROO_SENDER_PROCESS_MIN_ROWS = env.int("GROUPAROO_SENDER_PROCESS_MIN_ROWS", default=50_000)
# Directories whose files connectors may use when a path is given through the admin or the API
# (a SQLite/DuckDB app's path, a CSV app's base directory, a CSV source's or destination's path,
# a logger's file); config files are trusted. Relative entries are relative to the project.
GROUPAROO_FILE_DIRECTORIES = env.list(
    "GROUPAROO_FILE_DIRECTORIES", default=[str(BASE_DIR / "var"), str(MEDIA_ROOT)]
)
# Webhook destinations may target private/loopback addresses only when this is set.
GROUPAROO_ALLOW_PRIVATE_WEBHOOKS = env.bool("GROUPAROO_ALLOW_PRIVATE_WEBHOOKS", default=False)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
