from __future__ import annotations

from django.urls import path

from reactive_blocks.views import metrics
from tests.cluster import views

urlpatterns = [
    path("docs/<int:pk>/", views.page),
    path("save/<int:pk>/", views.save),
    path("notify/<int:pk>/", views.notify),
    path("lock/<int:pk>/", views.lock),
    path("login/<str:username>/", views.sign_in),
    path("presence/<int:pk>/", views.presence),
    path("stats/", views.stats),
    path("metrics/", metrics),
]
