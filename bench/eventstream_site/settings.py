"""The peer site: the same tracked item served as SSE by django-eventstream 5.3.4.

Set up the way django-eventstream 5.x documents for an ASGI server: ``daphne``
and ``django_eventstream`` in INSTALLED_APPS, ``ASGI_APPLICATION`` pointing at a
plain Django ASGI application (no Channels routing), and the library's own view
mounted with ``include(django_eventstream.urls)``.

No ``EVENTSTREAM_STORAGE_CLASS`` is set, which is the library's default: events
are not persisted and a client only gets events sent while it is connected.
No ``EVENTSTREAM_REDIS`` and no ``GRIP_URL`` either: one process, in memory.
"""

from __future__ import annotations

from pathlib import Path

from bench.sites import database

BASE_DIR = Path(__file__).resolve().parent
SECRET_KEY = "django-eventstream-benchmark-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
USE_TZ = True
INSTALLED_APPS = [
    "daphne",
    "django_eventstream",
    "bench.eventstream_site",
]
MIDDLEWARE: list[str] = []
ROOT_URLCONF = "bench.eventstream_site.urls"
ASGI_APPLICATION = "bench.eventstream_site.asgi.application"
DATABASES = database(BASE_DIR)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
