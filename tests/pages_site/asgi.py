"""The whole asgi.py of a project with live pages."""

from __future__ import annotations

import os

from reactive_blocks.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.pages_site.settings")
application = get_asgi_application()
