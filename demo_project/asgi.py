"""ASGI entry point of the demo site (served by daphne): Django plus the streams."""

from __future__ import annotations

import gc
import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "demo_project.settings")

from reactive_blocks.asgi import get_asgi_application

# Django, the live pages' streams and the demo's stream routes (URLCONF), and the
# static files (DEBUG): a real deployment lets a web server serve those.
application = get_asgi_application()

# Everything loaded so far lives as long as the process: keep it out of the
# collector's full passes (docs/performance.md).
gc.freeze()
