from __future__ import annotations

from django.urls import path

from bench.site import views

urlpatterns = [
    path("items/<int:pk>/", views.page),
    path("items5/<int:pk>/", views.page5),
    path("page/items/<int:pk>/", views.live_page),
    path("page/list/", views.item_list),
    path("page/list-whole/", views.item_list_whole),
    path("session/", views.session),
    path("save/<int:pk>/", views.save),
    path("stats/", views.stats),
]
