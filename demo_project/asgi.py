"""ASGI entry point of the demo site (served by daphne): Django plus the streams."""

from __future__ import annotations

import gc
import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "demo_project.settings")

from channels.auth import AuthMiddlewareStack
from channels.routing import ProtocolTypeRouter
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler
from django.core.asgi import get_asgi_application

django_application = get_asgi_application()

from reactive_blocks.urls import stream_router  # noqa: E402

# The demo serves its static files itself; a real deployment lets a web server do it.
application = ProtocolTypeRouter(
    {
        "http": AuthMiddlewareStack(
            stream_router(ASGIStaticFilesHandler(django_application))
        )
    }
)

# Everything loaded so far lives as long as the process: keep it out of the
# collector's full passes (docs/performance.md).
gc.freeze()
