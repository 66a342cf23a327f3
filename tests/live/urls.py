from __future__ import annotations

from django.urls import path

from reactive_blocks.views import metrics
from tests.live import views

urlpatterns = [
    path("docs/<int:pk>/", views.page, name="doc"),
    path("parity/<int:pk>/", views.parity, name="parity"),
    path("logout/", views.sign_out),
    path("flush/", views.flush),
    path("session/", views.anonymous_session),
    path("recheck/<str:scope>/", views.recheck),
    path("rename/<str:old>/<str:new>/", views.rename),
    path("change/", views.change),
    path("login/<str:username>/", views.sign_in),
    path("close-user/<str:user_id>/", views.close_user),
    path("stats/", views.stats),
    path("tasks/", views.tasks),
    path("reset/", views.reset),
    path("metrics/", metrics),
]
