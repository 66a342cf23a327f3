"""Create the demo's sample data; safe to run again."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Create the demo user (demo / demo) if missing."

    def handle(self, *args: Any, **options: Any) -> None:
        user_model = get_user_model()
        if not user_model.objects.filter(username="demo").exists():
            user_model.objects.create_superuser("demo", "demo@example.com", "demo")
            self.stdout.write("Created user demo (password: demo).")
        else:
            self.stdout.write("User demo already exists.")
