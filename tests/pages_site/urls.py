from __future__ import annotations

from django.urls import path

from tests.pages_site import views

urlpatterns = [
    path("notes/", views.NoteList.as_view(), name="notes"),
    path("notes/<int:pk>/", views.note, name="note"),
    path("mine/<int:pk>/", views.MyNote.as_view(), name="mine"),
    path("side-effect/<int:pk>/", views.side_effect, name="side-effect"),
    path("save/<int:pk>/", views.save),
    path("remark/<int:pk>/", views.remark),
    path("create/", views.create),
    path("login/<str:username>/", views.sign_in),
    path("flash/", views.flash),
    path("guarded/<int:pk>/", views.guarded),
    path("drop-session/", views.drop_session),
    path("flush/", views.flush),
    path("morph/<int:pk>/", views.morph),
    path("stats/", views.stats),
    path("logout/", views.sign_out),
    path("views/", views.views_counted),
    path("broken/<int:pk>/", views.broken),
    path("keyed/", views.keyed),
    path("keyed-stream/", views.keyed_stream),
    path("greeting/", views.greeting),
    path("delete/<int:pk>/", views.delete),
]
