from __future__ import annotations

from django.contrib import admin
from django.urls import path

from demo_project.demo import views

urlpatterns = [
    path("", views.document_list, name="home"),
    path("docs/<int:pk>/", views.document_detail, name="document"),
    path("docs/<int:pk>/edit/", views.document_edit, name="document-edit"),
    path("admin/", admin.site.urls),
]
