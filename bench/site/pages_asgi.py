"""The benchmark site served as a user's asgi.py would be: live pages and the
stream classes of REACTIVE_BLOCKS["URLCONF"], through sessions and auth."""

from __future__ import annotations

import gc
import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.site.settings")

from reactive_blocks.asgi import get_asgi_application  # noqa: E402

application = get_asgi_application()
gc.freeze()  # as bench/site/asgi.py, and docs/performance.md advises
