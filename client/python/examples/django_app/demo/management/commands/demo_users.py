"""``python manage.py demo_users``: creates the demo users alice/alice and bob/bob."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Creates the demo users alice/alice and bob/bob."

    def handle(self, *args: Any, **options: Any) -> None:
        model = get_user_model()
        for name in ("alice", "bob"):
            if not model.objects.filter(username=name).exists():
                model.objects.create_user(username=name, password=name)
                self.stdout.write(f"created {name}/{name}")
