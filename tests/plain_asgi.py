"""An asgi.py that serves Django alone: no streams of live pages (W015)."""

from __future__ import annotations

from django.core.asgi import get_asgi_application

application = get_asgi_application()
