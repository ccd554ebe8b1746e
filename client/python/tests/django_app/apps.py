"""The test project's app: a login form and a page that needs a login."""

from __future__ import annotations

from django.apps import AppConfig


class DemoConfig(AppConfig):
    name = "tests.django_app"
    label = "demo"
