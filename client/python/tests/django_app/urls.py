"""URLs of the test project."""

from __future__ import annotations

from django.urls import include, path

from . import views

urlpatterns = [
    path("login/", views.login_view, name="login"),
    path("", views.home, name="home"),
    path("account/", include("sessync.django.urls")),
]
