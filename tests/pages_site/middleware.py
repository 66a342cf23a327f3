"""An access check in middleware, as LoginRequiredMiddleware makes one."""

from __future__ import annotations

from django.http import HttpResponseRedirect


class GuardMiddleware:
    """Pages under /guarded/ are for signed-in visitors: a process_view check."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_view(self, request, view, args, kwargs):
        if request.path.startswith("/guarded/") and not request.user.is_authenticated:
            return HttpResponseRedirect("/login/")
        return None
