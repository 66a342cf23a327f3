from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import path

from demo_project.demo import views

urlpatterns = [
    path("", views.document_list, name="home"),
    path("docs/new/", views.document_create, name="document-create"),
    path("docs/<int:pk>/", views.document_detail, name="document"),
    path("docs/<int:pk>/delete/", views.document_delete, name="document-delete"),
    path("docs/<int:pk>/edit/", views.document_edit, name="document-edit"),
    path("docs/<int:pk>/comment/", views.comment_create, name="comment-create"),
    path("docs/<int:pk>/mentions/seen/", views.mentions_seen, name="mentions-seen"),
    path("demo/activity/", views.activity, name="activity"),
    path(
        "login/",
        auth_views.LoginView.as_view(template_name="login.html"),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
]
