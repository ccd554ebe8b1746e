"""URLs of the Django integration; include them with
``path("account/", include("sessync.django.urls"))`` (namespace ``sessync``)."""

from __future__ import annotations

from django.urls import path

from . import views

app_name = "sessync"

urlpatterns = [
    path("sessions/", views.sessions, name="sessions"),
    path("sessions/<str:session_id>/end/", views.end, name="end"),
    path("sessions/end-others/", views.end_others, name="end_others"),
    path("sessions/end-all/", views.end_all, name="end_all"),
    path("limit/", views.limit, name="limit"),
    path("blocked/", views.blocked, name="blocked"),
    path("status/", views.status, name="status"),
    path("logout/", views.logout_view, name="logout"),
]
