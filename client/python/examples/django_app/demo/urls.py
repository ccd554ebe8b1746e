"""URLs of the example: Django's login/logout views, sessync's views, a home page."""

from __future__ import annotations

from django.contrib.auth import views as auth_views
from django.urls import include, path

from . import views

urlpatterns = [
    path("", views.home, name="home"),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/", include("sessync.django.urls")),
]
