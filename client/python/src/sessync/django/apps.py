"""The Django app config of ``sessync.django``: connects the login/logout signal handlers and
registers the settings checks."""

from __future__ import annotations

from django.apps import AppConfig


class SessyncConfig(AppConfig):
    name = "sessync.django"
    label = "sessync"
    verbose_name = "sessync sessions"

    def ready(self) -> None:
        from . import checks, signals

        signals.connect()
        del checks  # imported for its @register
