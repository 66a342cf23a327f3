"""Views a project includes in its URLconf."""

from __future__ import annotations

import hmac

from django.http import HttpRequest, HttpResponse
from prometheus_client import CONTENT_TYPE_LATEST

from reactive_blocks.conf import conf
from reactive_blocks.metrics import collect

__all__ = ["metrics"]


def metrics(request: HttpRequest) -> HttpResponse:
    """The Prometheus figures of this process, or of every process of the machine
    (``PROMETHEUS_MULTIPROC_DIR``): for staff, a scraper that sends
    ``METRICS_TOKEN``, or anyone with ``METRICS_PUBLIC``."""
    if not _may_read(request):
        return HttpResponse(
            "Metrics are for staff, or a scraper that sends "
            "REACTIVE_BLOCKS['METRICS_TOKEN'] as a bearer token.",
            status=403,
            content_type="text/plain; charset=utf-8",
        )
    return HttpResponse(collect(), content_type=CONTENT_TYPE_LATEST)


def _may_read(request: HttpRequest) -> bool:
    if conf.METRICS_PUBLIC:
        return True
    token = conf.METRICS_TOKEN
    given = request.headers.get("Authorization", "")
    if token and hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
        return True
    user = getattr(request, "user", None)
    return bool(user is not None and user.is_active and user.is_staff)
