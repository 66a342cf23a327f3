"""``daphne bench.eventstream_site.asgi:application``.

django-eventstream 5.x needs no Channels routing: its view returns a
StreamingHttpResponse over an async generator, which Django's own ASGI handler
streams.
"""

from __future__ import annotations

import gc
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.eventstream_site.settings")

application = get_asgi_application()

# Everything loaded so far lives as long as the process: keep it out of the
# collector's full passes, as docs/performance.md advises every site.
gc.freeze()
