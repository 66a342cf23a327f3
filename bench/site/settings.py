"""The benchmark site: one tracked model and one live page, served by daphne.

Configured from the environment, so the benchmark scripts can run it with either
bus: BENCH_BUS (memory|redis), BENCH_REDIS_URL, BENCH_DATABASE, BENCH_HEARTBEAT;
BENCH_DIRECT=0 sends every fragment through daphne (DIRECT_WRITES off).
"""

from __future__ import annotations

import os
from pathlib import Path

from bench.sites import database

BASE_DIR = Path(__file__).resolve().parent
SECRET_KEY = "reactive-blocks-benchmark-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
USE_TZ = True
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "reactive_blocks",
    "bench.site",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "reactive_blocks.middleware.ReactiveMiddleware",
]
ROOT_URLCONF = "bench.site.urls"
ASGI_APPLICATION = "bench.site.asgi.application"
DATABASES = database(BASE_DIR)
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "OPTIONS": {
            "context_processors": ["django.template.context_processors.request"]
        },
    }
]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
SILENCED_SYSTEM_CHECKS = ["reactive_blocks.W012"]

if os.environ.get("BENCH_BUS", "memory") == "redis":
    BUS = {
        "BACKEND": "reactive_blocks.RedisBus",
        "OPTIONS": {
            "url": os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0"),
            "prefix": os.environ.get("BENCH_PREFIX", "bench"),
            "maxsize": 1024,
        },
    }
else:
    BUS = {"BACKEND": "reactive_blocks.ReactiveBus", "OPTIONS": {"maxsize": 1024}}
REACTIVE_BLOCKS = {
    "URLCONF": "bench.site.streams",
    "BUS": BUS,
    "HEARTBEAT_SECONDS": float(os.environ.get("BENCH_HEARTBEAT", "15")),
    "DIRECT_WRITES": os.environ.get("BENCH_DIRECT", "1") == "1",
    # The load generator is one client address opening thousands of streams.
    "MAX_STREAMS_PER_ADDRESS": 100_000,
    # bench/pages.py: a thousand tabs of one session.
    "MAX_STREAMS_PER_VISITOR": 100_000,
    "STREAM_OPENS_BURST": 100_000,
}
