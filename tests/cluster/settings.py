"""A project served by several daphne processes that share one Redis and one
database, as a deployment behind a proxy would be."""

from __future__ import annotations

import os

from tests.live.settings import *  # noqa: F403

ROOT_URLCONF = "tests.cluster.urls"
# Its views take JSON posts from the tests, not forms.
MIDDLEWARE = [m for m in MIDDLEWARE if not m.endswith("CsrfViewMiddleware")]  # noqa: F405
ASGI_APPLICATION = "tests.cluster.asgi.application"
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("LIVE_DATABASE", ":memory:"),
        # Several processes write to one SQLite file: wait for the lock.
        "OPTIONS": {"timeout": 20},
    }
}
REACTIVE_BLOCKS = {
    "URLCONF": "tests.cluster.streams",
    "METRICS_TOKEN": "scraper-token-of-the-tests",
    "SCAN_INCLUDE": ["cluster/*"],
    # Every test client is one address: only test_hardening meets these limits.
    "MAX_STREAMS_PER_ADDRESS": 10_000,
    "STREAM_OPENS_BURST": 100_000,
    "BUS": {
        "BACKEND": "reactive_blocks.RedisBus",
        "OPTIONS": {
            "url": os.environ.get("CLUSTER_REDIS_URL", "redis://127.0.0.1:6379/0"),
            "prefix": os.environ.get("CLUSTER_PREFIX", "cluster"),
            "presence_refresh": float(os.environ.get("CLUSTER_PRESENCE_REFRESH", "5")),
            "presence_path": "presence",
            "presence_grace": 1.0,
        },
    },
    "HEARTBEAT_SECONDS": float(os.environ.get("LIVE_HEARTBEAT", "15")),
}

# Warnings and errors with their level and logger, so that the chaos soak
# (bench/soak.py) can tell an error from a warning in a process's output.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(levelname)s %(name)s: %(message)s"}},
    "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["stderr"], "level": "WARNING"},
}
