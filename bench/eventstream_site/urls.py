from __future__ import annotations

import django_eventstream
from django.urls import include, path

from bench.eventstream_site import views

urlpatterns = [
    # The documented "client selects a single channel using a path component"
    # route: /events/item-1/ streams channel "item-1".
    path("events/<channel>/", include(django_eventstream.urls)),
    path("save/<int:pk>/", views.save),
    path("stats/", views.stats),
]
