from __future__ import annotations

import gc
import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.site.settings")

from channels.routing import ProtocolTypeRouter
from django.core.asgi import get_asgi_application

django_application = get_asgi_application()

from reactive_blocks.urls import stream_router  # noqa: E402

application = ProtocolTypeRouter({"http": stream_router(django_application)})

# Everything loaded so far lives as long as the process: keep it out of the
# collector's full passes, as docs/performance.md advises every site.
gc.freeze()
