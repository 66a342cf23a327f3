"""Settings for the demo site that ``make demo`` serves with daphne."""

from __future__ import annotations

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent

# The demo runs on a developer's machine only; never reuse this key.
SECRET_KEY = os.environ.get("DEMO_SECRET_KEY", "reactive-blocks-demo-insecure-key")
DEBUG = os.environ.get("DEMO_DEBUG", "1") == "1"
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "reactive_blocks",
    "demo_project.demo",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "reactive_blocks.middleware.ReactiveMiddleware",
]

ROOT_URLCONF = "demo_project.urls"
ASGI_APPLICATION = "demo_project.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.csrf",
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("DEMO_DATABASE", BASE_DIR / "db.sqlite3"),
        # A transaction takes SQLite's write lock when it begins, so the version
        # check of a save and its write cannot interleave with another
        # process's (make demo-redis); a second writer waits instead of failing.
        "OPTIONS": {"transaction_mode": "IMMEDIATE", "timeout": 20},
    }
}

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "/static/"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "home"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# The default bus, through the database: no Redis needed on a laptop, and a save
# in `manage.py shell` or `demo_activity` reaches every open page. `make demo-redis`
# sets DEMO_REDIS_URL and serves two processes that share one Redis.
BUS: dict[str, object] = {
    "BACKEND": "reactive_blocks.DatabaseBus",
    "OPTIONS": {"maxsize": 256, "presence_path": "presence"},
}
if os.environ.get("DEMO_REDIS_URL"):
    BUS = {
        "BACKEND": "reactive_blocks.RedisBus",
        "OPTIONS": {
            "url": os.environ["DEMO_REDIS_URL"],
            "presence_path": "presence",
            "presence_refresh": 2.0,
        },
    }
REACTIVE_BLOCKS = {
    "BUS": BUS,
    "URLCONF": "demo_project.streams",
    "INDEX_BUILDERS": ["demo_project.demo.live.build_index"],
    "EMITTED_PATHS": ["notifications", "presence"],
    "AUDIENCE_SCOPES": ["doc-*"],
    "CONNECTION_SCOPES": ["doc-*"],
}
