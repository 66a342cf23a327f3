"""A project with live pages and no stream class: ordinary views, get_asgi_application()."""

from __future__ import annotations

import os

from tests.settings import *  # noqa: F403

ROOT_URLCONF = "tests.pages_site.urls"
# The browser tests need the app's scripts, which get_asgi_application() serves
# with DEBUG on.
DEBUG = os.environ.get("PAGES_DEBUG") == "1"
ASGI_APPLICATION = "tests.pages_site.asgi.application"
INSTALLED_APPS = [*INSTALLED_APPS, "django.contrib.messages"]  # noqa: F405
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "tests.pages_site.middleware.GuardMiddleware",
]
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("PAGES_DATABASE", ":memory:"),
    }
}
LOGIN_URL = "/login/"
MESSAGE_STORAGE = "django.contrib.messages.storage.session.SessionStorage"
REACTIVE_BLOCKS = {
    "SCAN_INCLUDE": ["pages_site/*"],
    "URLCONF": "tests.pages_site.streams",
    "INDEX_BUILDERS": ["tests.pages_site.streams.derive_notes"],
    "MAX_STREAMS_PER_ADDRESS": 10000,
    "MAX_STREAMS_PER_VISITOR": 10000,
    "STREAM_OPENS_BURST": int(os.environ.get("PAGES_OPENS_BURST", "100000")),
    "STREAM_MAX_SECONDS": float(os.environ.get("PAGES_STREAM_MAX_SECONDS", "3600")),
}
if os.environ.get("PAGES_BUS") == "memory":
    REACTIVE_BLOCKS["BUS"] = {"BACKEND": "reactive_blocks.ReactiveBus"}
# else: the default bus, through the database, as a new project has it.

TEMPLATES[0]["OPTIONS"]["context_processors"] = [  # type: ignore[index]  # noqa: F405
    "django.template.context_processors.request",
    "django.contrib.auth.context_processors.auth",
    "django.contrib.messages.context_processors.messages",
]
