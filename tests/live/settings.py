"""Settings of the end-to-end project; knobs come from the environment per server."""

from __future__ import annotations

import os

from tests.settings import *  # noqa: F403

DEBUG = False
ROOT_URLCONF = "tests.live.urls"
ASGI_APPLICATION = "tests.live.asgi.application"
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "reactive_blocks.middleware.ReactiveMiddleware",
]
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("LIVE_DATABASE", ":memory:"),
    }
}
REACTIVE_BLOCKS = {
    "URLCONF": "tests.live.streams",
    "METRICS_TOKEN": "scraper-token-of-the-tests",
    # The test templates of other projects use their own stream routes.
    "SCAN_INCLUDE": ["live/*"],
    "BUS": {
        "BACKEND": "reactive_blocks.ReactiveBus",
        "OPTIONS": {"maxsize": int(os.environ.get("LIVE_MAXSIZE", "256"))},
    },
    "HEARTBEAT_SECONDS": float(os.environ.get("LIVE_HEARTBEAT", "15")),
    "STREAM_MAX_SECONDS": float(os.environ.get("LIVE_MAX_SECONDS", "3600")),
    "MAX_BUFFERED_BYTES": int(os.environ.get("LIVE_MAX_BUFFERED", str(1 << 20))),
    "MAX_STREAMS_PER_VISITOR": int(os.environ.get("LIVE_PER_VISITOR", "20")),
    "MAX_STREAMS_PER_PROCESS": int(os.environ.get("LIVE_PER_PROCESS", "10000")),
    # Every test client is one address: only the tests of the limits meet them.
    "MAX_STREAMS_PER_ADDRESS": int(os.environ.get("LIVE_PER_ADDRESS", "10000")),
    "STREAM_OPENS_BURST": int(os.environ.get("LIVE_OPENS_BURST", "100000")),
    "STREAM_OPENS_PER_SECOND": float(os.environ.get("LIVE_OPENS_RATE", "2")),
}

TEMPLATES[0]["OPTIONS"]["context_processors"] = [  # type: ignore[index]  # noqa: F405
    "django.template.context_processors.csrf",
    "django.template.context_processors.request",
    "django.contrib.auth.context_processors.auth",
]
